"""Investigations over real HTTP with real agents working the queue: 202 + Location, Idempotency-Key, status,
cancel, server-sent events to completion, a WebSocket sending progress in batches, and the batch endpoint."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from actors import Investigator, Orchestrator
from actors.pool import LocalBackend, PoolConfig
from actors.runtime import AgentRuntime
from cidadao.settings import Settings
from deployments.api.services import StoreUrls
from tests.helpers import eventually
from tests.integration.api_support import ApiServer, api_settings, ingest_demo, make_key, serve_api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def seeded(
    store_settings: Settings, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> StoreUrls:
    await ingest_demo(database_url, redis_url, api_settings(store_settings), tmp_path_factory.mktemp("api-inv"), 1500)
    return StoreUrls(database_url, redis_url)


@pytest.fixture
async def api(store_settings: Settings, seeded: StoreUrls) -> AsyncIterator[ApiServer]:
    settings = api_settings(store_settings, ws_batch_size=3, ws_batch_window=30.0)
    async with serve_api(settings, seeded) as server:
        yield server


@pytest.fixture
async def key(seeded: StoreUrls) -> str:
    return await make_key(seeded.database_url, "investigate", "read")


@contextlib.asynccontextmanager
async def _agents(settings: Settings) -> AsyncIterator[AgentRuntime]:
    """Agents working the queue in this process, relaying events to Redis as ``cidadao up`` does."""
    backend = LocalBackend({
        "investigator": lambda name: Investigator(settings, name),
        "orchestrator": lambda name: Orchestrator(settings, name),
    })  # fmt: skip
    one = PoolConfig(min=1, max=1)
    runtime = AgentRuntime(settings, backend, {"investigator": one, "orchestrator": one}, poll_s=0.2,
                           relay_events=True)  # fmt: skip
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def _organ(api: ApiServer) -> str:
    async with api.client() as client:
        return str((await client.get("/api/v1/contracts", params={"limit": 1})).json()["contracts"][0]["orgao_codigo"])


async def test_start_read_replay_conflict_and_cancel(api: ApiServer, key: str) -> None:
    organ = await _organ(api)
    auth = {"X-API-Key": key}
    async with api.client(headers=auth) as client:
        r = await client.post("/api/v1/investigations", json={"orgao": organ}, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 202 and r.headers["location"] == f"/api/v1/investigations/{r.json()['id']}"
        first = r.json()
        assert first["created"] and first["status"] == "queued" and first["contracts"] > 0
        r = await client.post("/api/v1/investigations", json={"orgao": organ}, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 202 and r.json()["id"] == first["id"] and r.headers["idempotent-replayed"] == "true"
        r = await client.post("/api/v1/investigations", json={"orgao": organ, "year": 2024},
                              headers={"Idempotency-Key": "k-1"})  # fmt: skip
        assert r.status_code == 409 and r.json()["field"] == "header.Idempotency-Key"
        status = (await client.get(r.headers.get("location") or first["location"])).json()
        assert status["status"] == "queued" and status["scope"]["orgao"] == organ
        early = await client.get(f"{first['location']}/result")
        assert early.status_code == 409 and early.json()["investigation_status"] == "queued"
        r = await client.delete(first["location"])  # cancelling is not deleting: the investigation stays readable
        assert r.status_code == 405 and r.headers["allow"] == "GET" and r.json()["status"] == 405
        r = await client.post(f"{first['location']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        assert (await client.get(first["location"])).json()["status"] == "cancelled"
        again = await client.post(f"{first['location']}/cancel")  # cancelled already: says so, changes nothing
        assert again.status_code == 200 and again.json()["status"] == "cancelled"
        for body, field in (({"orgao": "1"}, "body.orgao"), ({"year": 1500}, "body.year"),
                            ({"colour": "red"}, "body.colour"), ({"orgao": "99999"}, "scope")):  # fmt: skip
            r = await client.post("/api/v1/investigations", json=body)
            assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
        r = await client.post(
            "/api/v1/investigations", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        missing = "/api/v1/investigations/00000000-0000-0000-0000-000000000000"
        assert (await client.get(missing)).status_code == 404
        assert (await client.post(f"{missing}/cancel")).status_code == 404
        r = await client.get("/api/v1/investigations/not-a-uuid")
        assert r.status_code == 422 and r.json()["field"] == "path.investigation_id"


async def test_server_sent_events_follow_an_investigation_to_completion(
    api: ApiServer, key: str, store_settings: Settings
) -> None:
    organ = await _organ(api)
    # the agents, and the relay and consumers that keep the projection, run until the test has read it
    async with contextlib.AsyncExitStack() as agents:
        async with api.client(headers={"X-API-Key": key}) as client:
            started = (await client.post("/api/v1/investigations", json={"orgao": organ})).json()
            events: list[tuple[str, dict[str, Any]]] = []
            async with contextlib.AsyncExitStack() as stack:
                r = await stack.enter_async_context(
                    client.stream("GET", f"{started['location']}/events", headers={"accept-encoding": "br"})
                )
                assert r.headers["content-type"].startswith("text/event-stream")
                assert r.headers["content-encoding"] == "br"  # compressed, yet each event arrives as it is sent
                kind = ""
                async for line in r.aiter_lines():  # ends by itself after the final event
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        events.append((kind, orjson.loads(line[6:])))
                        if len(events) == 1:  # the agents start only once we listen
                            await agents.enter_async_context(_agents(api_settings(store_settings)))
            final = (await client.get(started["location"])).json()
        assert events[0][1]["status"] == "queued" and events[-1][0] == "completed"
        assert events[-1][1]["status"] == "completed" and events[-1][1]["progress"] == 1.0
        progress = [e["progress"] for _, e in events]
        assert progress == sorted(progress)
        assert final["status"] == "completed" and final["flags"] == events[-1][1]["flags"]
        async with api.client(headers={"X-API-Key": key}) as client:
            result = (await client.get(f"{started['location']}/result")).json()
            late = await client.post(f"{started['location']}/cancel")
            assert late.status_code == 409 and late.json()["investigation_status"] == "completed"
        assert len(result["flags"]) + len(result["agency_flags"]) == final["flags"] and not result["truncated"]
        assert all(f["evidence"] and f["basis"] for f in result["flags"])
        async with api.client() as client:  # the flags, searched; the monthly projection the events keep
            flags = (await client.get("/api/v1/flags", params={"investigation_id": started["id"], "limit": 500})).json()
            assert len(flags["flags"]) == final["flags"] and {f["investigation_id"] for f in flags["flags"]} == {
                started["id"]
            }
            severe = await client.get("/api/v1/flags", params={"investigation_id": started["id"], "severity": "low"})
            assert all(f["severity"] == "low" for f in severe.json()["flags"])

            async def projected() -> bool:
                r = await client.get("/api/v1/flags/by-organ-month", params={"orgao": organ})
                return r.status_code == 200 and bool(r.json())

            await eventually(projected, "the projection to hold the organ's flags", timeout_s=30)
            bad = (("severity=extreme", "query.severity"), ("investigation_id=x", "query.investigation_id"),
                   ("orgao=1", "query.orgao"))  # fmt: skip
            for query, field in bad:
                r = await client.get(f"/api/v1/flags?{query}")
                assert r.status_code == 422 and r.json()["field"] == field
            r = await client.get("/api/v1/flags/by-organ-month?since=2024-13")
            assert r.status_code == 422 and r.json()["field"] == "query.since"


async def test_a_websocket_sends_progress_in_batches(api: ApiServer, key: str, store_settings: Settings) -> None:
    async with api.client(headers={"X-API-Key": key}) as client:
        r = await client.post("/api/v1/investigations", json={"split": "organ"})
        started = r.json()
    assert started["partitions"] > 3
    ws_url = api.url.replace("http", "ws") + f"/api/v1/ws/investigations/{started['id']}"
    messages: list[dict[str, Any]] = []
    async with connect(ws_url, compression="deflate") as ws:
        assert "permessage-deflate" in (ws.response.headers.get("sec-websocket-extensions") or "")
        async with _agents(api_settings(store_settings)):
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    messages.append(orjson.loads(raw))
        assert ws.close_code == 1000
    assert messages and messages[-1]["final"] and messages[-1]["events"][-1]["status"] == "completed"
    assert all(len(m["events"]) == 3 for m in messages[:-1])  # batches of WS_BATCH_SIZE until the final one
    assert 1 <= len(messages[-1]["events"]) <= 3
    progress = [e["progress"] for m in messages for e in m["events"]]
    assert progress == sorted(progress) and len(progress) >= 2


async def test_a_websocket_closes_with_a_reason_on_bad_ids(api: ApiServer) -> None:
    base = api.url.replace("http", "ws") + "/api/v1/ws/investigations/"
    for suffix, code in (("00000000-0000-0000-0000-000000000000", 4404), ("nope", 4422)):
        async with connect(base + suffix) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == code


async def test_a_batch_runs_each_operation_as_its_own_request(api: ApiServer, key: str) -> None:
    organ = await _organ(api)
    ops = [
        {"method": "GET", "path": f"/api/v1/organs/{organ}"},
        {"method": "GET", "path": "/api/v1/contracts/999999999"},
        {"method": "GET", "path": "/api/v1/contracts?limit=0"},
        {"method": "POST", "path": "/api/v1/investigations", "body": {"orgao": organ}},
    ]
    async with api.client() as client:
        anonymous = (await client.post("/api/v1/batch", json={"operations": ops})).json()["results"]
        assert [r["status"] for r in anonymous] == [200, 404, 422, 401]  # the POST needs a key: refused alone
        assert anonymous[0]["body"]["codigo"] == organ and anonymous[2]["body"]["field"] == "query.limit"
        keyed = (await client.post("/api/v1/batch", json={"operations": ops}, headers={"X-API-Key": key})).json()
        assert keyed["results"][3]["status"] == 202 and keyed["results"][3]["location"].startswith("/api/v1/inv")
        too_many = {"operations": [ops[0]] * 101}  # BATCH_SIZE is 100
        r = await client.post("/api/v1/batch", json=too_many)
        assert r.status_code == 422 and r.json()["field"] == "body.operations"
        for bad in ({"method": "GET", "path": "/api/v1/batch"}, {"method": "GET", "path": "https://elsewhere.example/"},
                    {"method": "PATCH", "path": "/api/v1/organs"}):  # fmt: skip
            r = await client.post("/api/v1/batch", json={"operations": [bad]})
            assert r.status_code == 422 and r.json()["field"].startswith("body.operations.0"), bad
