"""One id per contract across the API: a real investigation's flags name contracts by the id ``GET
/api/v1/contracts/{id}`` answers — in its result, in ``/flags`` and in GraphQL alike — with the source's own id
beside it; a source's own id (the Portal's number, PNCP's id with its ``/``) is redirected to the contract it
names, searched with ``source_id``, and an id that names nothing is a 404 saying what a contract's id is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import orjson
import pytest

from cidadao.cache.redis_tier import cache_client
from cidadao.cache.service import Caches
from cidadao.commands import IngestFiles, detect_files, ingest_files
from cidadao.contracts.synthetic import generate
from cidadao.settings import Settings
from deployments.api.services import StoreUrls
from tests.integration.api_support import ApiServer, api_settings, ingest_demo, make_key, serve_api
from tests.integration.test_api_investigations import _agents

pytestmark = pytest.mark.integration

FLAG_KEYS = ("contract_id", "source", "source_id", "flag", "severity", "score")


async def _ingest_pncp(database_url: str, redis_url: str, settings: Settings, out: Path, n: int) -> None:
    """``n`` PNCP contracts added to what is stored (their ids hold a ``/``)."""
    contracts = generate(out, n, 5, "pncp").files["contracts"]
    conn = await asyncpg.connect(database_url)
    client = cache_client(redis_url)
    caches = Caches.local(settings, client)
    try:
        await ingest_files(conn, detect_files(IngestFiles(paths=[Path(contracts)])), settings, caches=caches)
    finally:
        await caches.close()
        await client.aclose()
        await conn.close()


@pytest.fixture(scope="module")
async def investigated(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[ApiServer, dict[str, Any]]]:
    """Portal and PNCP contracts, one investigation of all of them run by real agents, and its result."""
    settings = api_settings(store_settings, api_max_page_size=10_000, graphql_max_complexity=100_000)  # one page
    await ingest_demo(database_url, redis_url, settings, tmp_path_factory.mktemp("ids-portal"), 1500)
    await _ingest_pncp(database_url, redis_url, settings, tmp_path_factory.mktemp("ids-pncp"), 400)
    key = await make_key(database_url, "investigate", "read")
    async with serve_api(settings, StoreUrls(database_url, redis_url)) as api:
        async with _agents(settings) as runtime, api.client(headers={"X-API-Key": key}) as client:
            started = (await client.post("/api/v1/investigations", json={"split": "none"})).json()
            assert (await runtime.wait(started["id"], 120))["status"] == "completed"
            r = await client.get(f"/api/v1/investigations/{started['id']}/result")
            assert r.status_code == 200, r.text
        yield api, r.json()


async def test_every_flag_of_a_result_gets_the_contract_it_names(
    investigated: tuple[ApiServer, dict[str, Any]], database_url: str
) -> None:
    api, result = investigated
    flags = result["flags"]
    assert not result["truncated"] and {f["source"] for f in flags} == {"portal", "pncp"}
    async with api.client() as client:
        for contract_id in sorted({f["contract_id"] for f in flags}):
            r = await client.get(f"/api/v1/contracts/{contract_id}")
            assert r.status_code == 200, (contract_id, r.text)
            c = r.json()
            named = [f for f in flags if f["contract_id"] == contract_id]
            assert c["id"] == contract_id and isinstance(contract_id, int)
            assert {(f["source"], f["source_id"]) for f in named} == {(c["source"], c["source_id"])}
            assert {f["flag"] for f in named} <= {f["flag"] for f in c["flags"]}
    conn = await asyncpg.connect(database_url)
    try:  # the stored flags, read straight from the table: the same contracts, by the same id
        stored = await conn.fetch(
            """SELECT f.contract_id, c.source_id, f.flag FROM flags f JOIN contracts c ON c.id = f.contract_id
                WHERE f.investigation_id = $1::uuid""",
            result["investigation_id"],
        )
    finally:
        await conn.close()
    assert sorted((r["contract_id"], r["source_id"], r["flag"]) for r in stored) == sorted(
        (f["contract_id"], f["source_id"], f["flag"]) for f in flags
    )


async def test_flags_and_graphql_name_contracts_as_the_result_does(
    investigated: tuple[ApiServer, dict[str, Any]],
) -> None:
    api, result = investigated
    want = sorted(tuple(f[k] for k in FLAG_KEYS) for f in result["flags"])
    inv = result["investigation_id"]
    async with api.client() as client:
        page = (await client.get("/api/v1/flags", params={"investigation_id": inv, "limit": 5000})).json()
        assert page["next"] is None
        rest = [f for f in page["flags"] if f["level"] == "contract"]
        assert sorted(tuple(f[k] for k in FLAG_KEYS) for f in rest) == want
        agency = [f for f in page["flags"] if f["level"] == "agency"]
        assert agency and all(f["contract_id"] is f["source"] is f["source_id"] is None for f in agency)

        query = """query($inv: String!) { flags(investigationId: $inv, first: 5000) { next items {
                     contractId source sourceId flag severity score contract { id source sourceId } } } }"""
        body = (await client.post("/graphql", json={"query": query, "variables": {"inv": inv}})).json()
        assert "errors" not in body, body
        items = [i for i in body["data"]["flags"]["items"] if i["contractId"] is not None]
        got = sorted((i["contractId"], i["source"], i["sourceId"], i["flag"], i["severity"], i["score"]) for i in items)
        assert got == want
        assert all(
            (i["contract"]["id"], i["contract"]["source"], i["contract"]["sourceId"])
            == (i["contractId"], i["source"], i["sourceId"])
            for i in items
        )
        one = result["flags"][0]
        nested = """query($id: Int!) { contract(id: $id) { id flags { contractId sourceId flag } } }"""
        body = (await client.post("/graphql", json={"query": nested, "variables": {"id": one["contract_id"]}})).json()
        assert {(f["contractId"], f["sourceId"]) for f in body["data"]["contract"]["flags"]} == {
            (one["contract_id"], one["source_id"])
        }


async def test_a_source_id_redirects_to_its_contract(investigated: tuple[ApiServer, dict[str, Any]]) -> None:
    api, result = investigated
    portal = next(f for f in result["flags"] if f["source"] == "portal")
    pncp = next(f for f in result["flags"] if f["source"] == "pncp")
    assert portal["source_id"].isdigit() and "/" in pncp["source_id"]
    async with api.client() as client:
        for flag, path in (
            (portal, f"/api/v1/contracts/{portal['source_id']}"),  # the form results gave before
            (pncp, f"/api/v1/contracts/{quote(pncp['source_id'], safe='')}"),  # its "/" as %2F
            (pncp, f"/api/v1/contracts/{pncp['source_id']}"),  # or sent as it is
        ):
            r = await client.get(path)
            assert r.status_code == 308, (path, r.text)
            assert r.headers["location"] == f"/api/v1/contracts/{flag['contract_id']}"
            assert r.json()["id"] == flag["contract_id"] and r.json()["source_id"] == flag["source_id"]
            followed = await client.get(path, follow_redirects=True)
            assert followed.status_code == 200 and followed.json()["id"] == flag["contract_id"]
        batch = await client.post("/api/v1/batch", json={"operations": [{"method": "GET", "path": path}]})
        assert batch.json()["results"][0]["location"] == f"/api/v1/contracts/{pncp['contract_id']}"


async def test_source_id_search_finds_one_contract_per_source(
    investigated: tuple[ApiServer, dict[str, Any]],
) -> None:
    api, result = investigated
    async with api.client() as client:
        for f in (next(f for f in result["flags"] if f["source"] == s) for s in ("portal", "pncp")):
            r = await client.get("/api/v1/contracts", params={"source_id": f["source_id"]})
            assert r.status_code == 200, r.text
            assert [(c["id"], c["source"]) for c in r.json()["contracts"]] == [(f["contract_id"], f["source"])]
        assert (await client.get("/api/v1/contracts", params={"source_id": "no-such-id"})).json()["contracts"] == []
        r = await client.get("/api/v1/contracts", params={"source_id": "9" * 121})
        assert r.status_code == 422 and r.json()["field"] == "query.source_id"
        gql = "query($sid: String!) { contracts(sourceId: $sid) { items { id source } } }"
        body = (
            await client.post("/graphql", json={"query": gql, "variables": {"sid": result["flags"][0]["source_id"]}})
        ).json()
        assert [c["id"] for c in body["data"]["contracts"]["items"]] == [result["flags"][0]["contract_id"]]


async def test_an_id_that_names_nothing_says_what_an_id_is(investigated: tuple[ApiServer, dict[str, Any]]) -> None:
    api, _ = investigated
    async with api.client() as client:
        for ref in ("999999999", "99999999999999999999", "abc", "0", "00394460000141-2-999999%2F2024"):
            r = await client.get(f"/api/v1/contracts/{ref}")
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", (ref, r.text)
            body = r.json()
            assert body["field"] == "path.contract_id" and body["detail"].startswith("no contract ")
            assert "integer `id`" in body["detail"] and "/api/v1/contracts?source_id=" in body["detail"]
        r = await client.get("/api/v1/contracts/" + "9" * 121)
        assert r.status_code == 422 and r.json()["field"] == "path.contract_id"


async def test_a_contract_id_wins_over_a_source_id_and_a_shared_source_id_lists_both(
    investigated: tuple[ApiServer, dict[str, Any]], database_url: str
) -> None:
    api, result = investigated
    portal = [f for f in result["flags"] if f["source"] == "portal"][-1]  # one no other test looked up
    assert portal["contract_id"] != result["flags"][0]["contract_id"]
    conn = await asyncpg.connect(database_url)
    try:  # CSV contracts whose own ids are a contract's id, and the Portal contract's id
        first = await conn.fetchval("SELECT min(id) FROM contracts")
        added = await conn.fetch(
            """INSERT INTO contracts (source, source_id, signed_on, orgao_codigo, raw)
               SELECT 'csv', s, '2024-01-02', '26000', '{}'::jsonb FROM unnest($1::text[]) AS s RETURNING id""",
            [str(first), portal["source_id"]],
        )
    finally:
        await conn.close()
    async with api.client() as client:
        r = await client.get(f"/api/v1/contracts/{first}")  # a contract's id, and also a CSV contract's own id
        assert r.status_code == 200 and r.json()["id"] == first and r.json()["source"] == "portal"
        r = await client.get(f"/api/v1/contracts/{portal['source_id']}")  # the Portal's and the CSV's
        assert r.status_code == 300, r.text
        choices = r.json()["contracts"]
        assert sorted((c["source"], c["id"]) for c in choices) == [
            ("csv", added[1]["id"]),
            ("portal", portal["contract_id"]),
        ]
        assert all(c["location"] == f"/api/v1/contracts/{c['id']}" for c in choices)
        assert orjson.loads(r.content)["detail"].startswith("2 contracts have the source id")
