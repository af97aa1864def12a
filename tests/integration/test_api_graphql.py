"""GraphQL over real HTTP: nested fields cost one query per level whatever their width (DataLoaders), depth and
complexity refused before anything runs, root fields read through the tiered cache shared with REST, errors
that name the argument or are masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from cidadao.settings import Settings
from deployments.api.services import StoreUrls
from tests.integration.api_support import ApiServer, api_settings, ingest_demo, serve_api

pytestmark = pytest.mark.integration

NESTED = """query($n: Int!) { organs(first: $n) { items { codigo
  contracts(first: 5) { id flags { flag } supplier { document sanctions { registry } } } } } }"""


@pytest.fixture(scope="module")
async def api(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiServer]:
    settings = api_settings(store_settings)
    await ingest_demo(database_url, redis_url, settings, tmp_path_factory.mktemp("api-gql"), 2000)
    async with serve_api(settings, StoreUrls(database_url, redis_url)) as server:
        yield server


async def _query(api: ApiServer, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    async with api.client() as client:
        r = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_nested_lists_cost_one_query_per_level_whatever_their_width(api: ApiServer) -> None:
    costs = {}
    for n in (2, 6):
        body = await _query(api, NESTED, {"n": n})
        assert "errors" not in body, body
        organs = body["data"]["organs"]["items"]
        assert len(organs) == n and all(o["contracts"] for o in organs)
        costs[n] = body["extensions"]["cost"]["queries"]
    # organs (root, 1) + contracts (1) + flags (1) + suppliers (1) + sanctions (1), for 2 organs as for 6
    assert costs[2] == costs[6] == 5


async def test_nested_values_match_the_database(api: ApiServer, database_url: str) -> None:
    body = await _query(api, NESTED, {"n": 3})
    conn = await asyncpg.connect(database_url)
    try:
        for organ in body["data"]["organs"]["items"]:
            want = await conn.fetch(
                "SELECT id, supplier_document FROM contracts WHERE orgao_codigo = $1 "
                "ORDER BY signed_on DESC, id DESC LIMIT 5",
                organ["codigo"],
            )
            assert [c["id"] for c in organ["contracts"]] == [r["id"] for r in want]
            for contract, row in zip(organ["contracts"], want, strict=True):
                assert contract["supplier"] is None or contract["supplier"]["document"] == row["supplier_document"]
    finally:
        await conn.close()


async def test_root_fields_are_cached_and_shared_with_rest(api: ApiServer) -> None:
    async with api.client() as client:
        contract_id = (await client.get("/api/v1/contracts", params={"limit": 1})).json()["contracts"][0]["id"]
        rest = (await client.get(f"/api/v1/contracts/{contract_id}")).json()  # cached by REST
    body = await _query(api, "query($id: Int!) { contract(id: $id) { id objeto finalValue flags { flag } } }",
                        {"id": contract_id})  # fmt: skip
    assert body["data"]["contract"]["objeto"] == rest["objeto"]
    assert body["extensions"]["cost"]["queries"] == 0  # the entry REST cached, and its flags with it


async def test_depth_and_complexity_are_refused_before_anything_runs(api: ApiServer) -> None:
    deep = "{ contract(id: 1) { organ { contracts { organ { contracts { organ { contracts { organ { contracts {" \
           " organ { contracts { id } } } } } } } } } } } }"  # fmt: skip
    body = await _query(api, deep)
    assert body["extensions"]["cost"]["queries"] == 0
    assert body["data"] is None and any("exceeds maximum operation depth of 10" in e["message"] for e in body["errors"])
    wide = "{ organs(first: 500) { items { contracts(first: 100) { id } } } }"
    body = await _query(api, wide)
    assert body["data"] is None and "complexity 51001 exceeds the limit of 1000" in body["errors"][0]["message"]
    variable = "query($n: Int!) { organs(first: $n) { items { contracts(first: $n) { id } } } }"
    body = await _query(api, variable, {"n": 40})  # the variables' values count
    assert body["data"] is None and "complexity 1681 exceeds" in body["errors"][0]["message"]
    assert body["extensions"]["cost"]["queries"] == 0
    fine = await _query(api, "{ organs(first: 10) { items { contracts(first: 10) { id } } } }")
    assert "errors" not in fine


async def test_bad_arguments_name_the_argument_and_unknown_fields_are_refused(api: ApiServer) -> None:
    for query, field in (("{ contracts(first: 0) { next } }", "first"),
                         ('{ contracts(after: "nope") { next } }', "cursor"),
                         ('{ contracts(dateFrom: "2024-99-01") { next } }', "date_from"),
                         ('{ investigation(id: "x") { status } }', "id")):  # fmt: skip
        body = await _query(api, query)
        assert body["errors"][0]["extensions"]["field"] == field, body
        assert body["errors"][0]["message"].startswith(f"{field}: ")
    body = await _query(api, "{ nope }")
    assert "Cannot query field 'nope'" in body["errors"][0]["message"]
    assert (await _query(api, '{ investigation(id: "00000000-0000-0000-0000-000000000000") { status } }'))["data"] == {
        "investigation": None
    }


async def test_a_query_is_one_cache_entry_and_an_investigation_is_never_kept(
    api: ApiServer, store_settings: Settings, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    from cidadao.cache.service import deployment

    base = f"cidadao:cache:v1:{deployment(api_settings(store_settings))}:records:graphql:"
    redis = aioredis.from_url(redis_url)

    async def kept() -> int:
        return len([k async for k in redis.scan_iter(match=base + "*", count=1000)])

    query = "{ organs(first: 4) { items { codigo sigla contracts(first: 2) { id } } } }"
    live = '{ investigation(id: "00000000-0000-0000-0000-000000000000") { status } }'
    try:
        before = await kept()
        async with api.client() as client:
            first = await client.post("/graphql", json={"query": query}, headers={"accept-encoding": "identity"})
            again = await client.post("/graphql", json={"query": query}, headers={"accept-encoding": "identity"})
            assert first.content == again.content and "errors" not in first.json()
            assert await kept() == before + 1  # one entry for the query, read back the second time
            assert (await client.post("/graphql", json={"query": live})).json()["data"] == {"investigation": None}
            assert await kept() == before + 1  # an investigation's state is never kept
            bad = await client.post("/graphql", content=b"{", headers={"content-type": "application/json"})
            assert bad.status_code == 400 and bad.json()["field"] == "body"
    finally:
        await redis.aclose()
