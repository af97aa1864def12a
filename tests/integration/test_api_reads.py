"""The API's reads over real HTTP (uvicorn, the session's Postgres and Redis): every search and record, cursor
pages against the database's own answer, bad input refused naming the field, problem+json everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from cidadao.settings import Settings
from deployments.api.services import StoreUrls
from tests.helpers import exposition_samples, promtool_check_metrics
from tests.integration.api_support import ApiServer, api_settings, ingest_demo, serve_api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def api(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApiServer]:
    settings = api_settings(store_settings)
    await ingest_demo(database_url, redis_url, settings, tmp_path_factory.mktemp("api-reads"), 3000)
    async with serve_api(settings, StoreUrls(database_url, redis_url)) as server:
        yield server


@pytest.fixture(scope="module")
async def pg(database_url: str, api: ApiServer) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def _all_pages(api: ApiServer, path: str, params: dict[str, Any], item: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with api.client() as client:
        cursor = None
        for _ in range(1000):
            r = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200, r.text
            body = r.json()
            out += body[item]
            cursor = body["next"]
            if cursor is None:
                return out
    raise AssertionError("pages never ended")


async def test_health_openapi_and_docs(api: ApiServer) -> None:
    async with api.client() as client:
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        ready = (await client.get("/health/ready")).json()
        assert ready["checks"]["postgres"] == "ok" and ready["checks"]["redis"] == "ok"
        spec = (await client.get("/openapi.json")).json()
        for path in ("/api/v1/contracts", "/api/v1/contracts/{contract_id}", "/api/v1/organs/{codigo}",
                     "/api/v1/suppliers/{document}", "/api/v1/flags", "/api/v1/investigations",
                     "/api/v1/investigations/{investigation_id}/events", "/api/v1/batch"):  # fmt: skip
            assert path in spec["paths"], path
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_contract_search_pages_through_every_match_once_newest_first(
    api: ApiServer, pg: asyncpg.Connection
) -> None:
    organ = await pg.fetchval("SELECT orgao_codigo FROM contracts GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    got = await _all_pages(api, "/api/v1/contracts", {"orgao": organ, "limit": 37}, "contracts")
    want = await pg.fetch("SELECT id FROM contracts WHERE orgao_codigo = $1 ORDER BY signed_on DESC, id DESC", organ)
    assert [c["id"] for c in got] == [r["id"] for r in want] and len(got) > 37


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"ug": "$ug"}, "ug_codigo = $1"),
        ({"supplier": "$supplier"}, "supplier_document = $1"),
        ({"object_class": "$object_class"}, "object_class = $1"),
        ({"date_from": "2023-01-01", "date_to": "2023-06-30"}, "signed_on BETWEEN '2023-01-01' AND '2023-06-30'"),
        ({"value_min": 100000, "value_max": 500000}, "final_value BETWEEN 100000 AND 500000"),
    ],
)
async def test_each_contract_filter_matches_the_database(
    api: ApiServer, pg: asyncpg.Connection, params: dict[str, Any], where: str
) -> None:
    sample = await pg.fetchrow(
        "SELECT ug_codigo AS ug, supplier_document AS supplier, object_class FROM contracts "
        "GROUP BY 1, 2, 3 ORDER BY count(*) DESC LIMIT 1"
    )
    args = []
    for name, value in list(params.items()):
        if isinstance(value, str) and value.startswith("$"):
            params[name] = sample[value[1:]]
            args.append(sample[value[1:]])
    got = await _all_pages(api, "/api/v1/contracts", {**params, "limit": 200}, "contracts")
    want = await pg.fetch(f"SELECT id FROM contracts WHERE {where} ORDER BY signed_on DESC, id DESC", *args)
    assert [c["id"] for c in got] == [r["id"] for r in want] and got


async def test_one_page_size_limit_stated_and_enforced_with_one_message(api: ApiServer) -> None:
    most = api.app.state.settings.api_max_page_size
    async with api.client() as client:
        spec = (await client.get("/openapi.json")).json()
        stated = {p["name"]: p["schema"] for p in spec["paths"]["/api/v1/organs"]["get"]["parameters"]}["limit"]
        assert (stated["minimum"], stated["maximum"]) == (1, most)
        assert (await client.get(f"/api/v1/organs?limit={most}")).status_code == 200
        refused = [(await client.get(f"/api/v1/organs?limit={n}")).json() for n in (0, most + 1, 100_000)]
    assert {(r["field"], r["detail"]) for r in refused} == {("query.limit", f"limit must be between 1 and {most}")}


async def test_a_wrong_method_is_a_405_listing_every_method_of_the_path(api: ApiServer) -> None:
    async with api.client() as client:
        r = await client.put("/api/v1/investigations/00000000-0000-0000-0000-000000000000")
        assert r.status_code == 405 and r.headers["allow"] == "GET"
        assert r.headers["content-type"] == "application/problem+json" and "allowed: GET" in r.json()["detail"]
        r = await client.get("/api/v1/investigations")
        assert r.status_code == 405 and r.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "query.limit"),
        ("limit=100000", "query.limit"),
        ("limit=abc", "query.limit"),
        ("orgao=12", "query.orgao"),
        ("supplier=123", "query.supplier"),
        ("date_from=2024-13-01", "query.date_from"),
        ("date_to=0", "query.date_to"),  # a date is YYYY-MM-DD, not a number of seconds
        ("orgao_codigo=26000", "query.orgao_codigo"),  # not a parameter of the search: refused, not ignored
        ("date_from=2024-05-01&date_to=2024-01-01", "date_to"),
        ("date_from=1990-01-01&date_to=2024-01-01", "date_to"),
        ("value_min=10&value_max=5", "value_max"),
        ("value_min=-1", "query.value_min"),
        ("cursor=not-ours", "cursor"),
        ("cursor=WyJ4Il0", "cursor"),
        ("flag=DROP%20TABLE", "query.flag"),
    ],
)
async def test_bad_search_input_is_a_422_naming_the_field(api: ApiServer, query: str, field: str) -> None:
    async with api.client() as client:
        r = await client.get(f"/api/v1/contracts?{query}")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 422 and body["field"] == field and body["detail"] and "Traceback" not in r.text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/organs?limit=0", "query.limit"),
        ("/api/v1/organs?cursor=bm9wZQ", "cursor"),
        ("/api/v1/suppliers?sanctioned=maybe", "query.sanctioned"),
        ("/api/v1/suppliers?cursor=WzFd", "cursor"),
        ("/api/v1/flags?cursor=WyJ4Il0", "cursor"),
        ("/api/v1/flags/by-organ-month?until=24-01", "query.until"),
        ("/api/v1/contracts/" + "9" * 121, "path.contract_id"),  # longer than any id (a number may be a source's)
    ],
)
async def test_bad_input_to_every_list_is_a_422_naming_the_field(api: ApiServer, path: str, field: str) -> None:
    async with api.client() as client:
        r = await client.get(path)
    assert r.status_code == 422 and r.json()["field"] == field, r.text


async def test_a_contract_with_its_flags_and_the_records_around_it(api: ApiServer, pg: asyncpg.Connection) -> None:
    row = await pg.fetchrow("SELECT id, orgao_codigo, supplier_document FROM contracts ORDER BY id LIMIT 1")
    async with api.client() as client:
        c = (await client.get(f"/api/v1/contracts/{row['id']}")).json()
        assert c["id"] == row["id"] and c["orgao_codigo"] == row["orgao_codigo"] and c["flags"] == []
        organ = (await client.get(f"/api/v1/organs/{row['orgao_codigo']}")).json()
        assert organ["contracts"] == await pg.fetchval(
            "SELECT count(*) FROM contracts WHERE orgao_codigo = $1", row["orgao_codigo"]
        )
        sanctioned = await pg.fetchval("SELECT document FROM sanctions WHERE document IN (SELECT document FROM "
                                       "suppliers) ORDER BY document LIMIT 1")  # fmt: skip
        s = (await client.get(f"/api/v1/suppliers/{sanctioned}")).json()
        assert (
            s["document"] == sanctioned
            and s["sanctions"]
            and s["totals"]["contracts"]
            == len(await pg.fetch("SELECT 1 FROM contracts WHERE supplier_document = $1", sanctioned))
        )
        for path, detail in (("/api/v1/contracts/999999999", "no contract"), ("/api/v1/organs/00000", "no organ"),
                             ("/api/v1/suppliers/00000000000000", "no supplier"),
                             ("/api/v1/contracts/abc", "no contract abc: it is neither a contract's id nor a source's"),
                             ("/api/v1/contracts/0", "no contract 0")):  # fmt: skip  # might have been source ids
            r = await client.get(path)
            assert r.status_code == 404 and r.json()["detail"].startswith(detail)
        for path in ("/api/v1/organs/1", "/api/v1/suppliers/12"):
            r = await client.get(path)
            assert r.status_code == 422 and r.json()["field"].startswith("path."), path


async def test_organ_and_supplier_lists_page_by_code(api: ApiServer, pg: asyncpg.Connection) -> None:
    organs = await _all_pages(api, "/api/v1/organs", {"limit": 7}, "organs")
    assert [o["codigo"] for o in organs] == [
        r["codigo"] for r in await pg.fetch("SELECT codigo FROM organs ORDER BY 1")
    ]
    sanctioned = await _all_pages(api, "/api/v1/suppliers", {"limit": 50, "sanctioned": "true"}, "suppliers")
    want = await pg.fetch("SELECT document FROM suppliers s WHERE EXISTS (SELECT 1 FROM sanctions x WHERE "
                          "x.document = s.document) ORDER BY 1")  # fmt: skip
    assert [s["document"] for s in sanctioned] == [r["document"] for r in want] and want


async def test_unknown_paths_and_methods_are_problems(api: ApiServer) -> None:
    async with api.client() as client:
        r = await client.get("/api/v1/nothing-here")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        r = await client.put("/api/v1/contracts")
        assert r.status_code == 405 and r.json()["status"] == 405


async def test_every_request_is_timed_by_route_template(api: ApiServer, pg: asyncpg.Connection) -> None:
    contract_id = await pg.fetchval("SELECT min(id) FROM contracts")
    async with api.client() as client:
        await client.get(f"/api/v1/contracts/{contract_id}")
        await client.get(f"/api/v1/contracts/{contract_id}?by=router")  # a query string: the route, not HotReads
        text = (await client.get("/metrics")).text
    samples = exposition_samples(text)
    routes = {labels["route"] for labels, _ in samples["cidadao_ai_request_duration_seconds_count"]}
    assert "/api/v1/contracts/{contract_id}" in routes and not any(r.endswith(f"/{contract_id}") for r in routes)
    assert not any(":path}" in r for r in routes)  # the template as documented, not the router's convertor
    if (checked := promtool_check_metrics(text)) is not None:
        code, problems = checked
        assert code == 0, problems
