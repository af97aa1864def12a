"""The API deployed on Ray Serve (the session's Ray) and driven over real HTTP through Serve's proxy: health,
a precompressed cache hit, GraphQL, server-sent events, a WebSocket, problems, the replica's metrics."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import brotli
import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from cidadao.settings import Settings
from deployments.ingress import DEPLOYMENT_NAME, IngressArgs
from deployments.serving import deploy, undeploy
from tests.helpers import exposition_samples
from tests.integration.api_support import api_settings, ingest_demo, make_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(local_ray: None, store_settings: Settings, database_url: str, redis_url: str) -> Iterator[str]:
    settings = api_settings(store_settings, port=_free_port())
    url = deploy(settings, IngressArgs(database_url=database_url, redis_url=redis_url))
    yield url
    undeploy()


@pytest.fixture(scope="module")
async def seeded(
    served: str, store_settings: Settings, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    await ingest_demo(database_url, redis_url, api_settings(store_settings), tmp_path_factory.mktemp("serve"), 800)
    yield served


async def test_serve_answers_reads_precompressed_with_problems_and_metrics(seeded: str) -> None:
    async with httpx.AsyncClient(base_url=seeded, timeout=30) as client:
        ready = (await client.get("/health/ready")).json()
        assert ready["checks"]["postgres"] == "ok" and ready["checks"]["redis"] == "ok"
        identity = (await client.get("/api/v1/contracts?limit=30", headers={"accept-encoding": "identity"})).content
        for _ in range(2):
            async with client.stream("GET", "/api/v1/contracts?limit=30", headers={"accept-encoding": "br"}) as r:
                raw = b"".join([c async for c in r.aiter_raw()])
            assert r.headers["content-encoding"] == "br" and raw == brotli.compress(identity, quality=11)
        r = await client.get("/api/v1/contracts/999999999")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        r = await client.get("/api/v1/contracts?limit=0")
        assert r.status_code == 422 and r.json()["field"] == "query.limit"
        gql = await client.post("/graphql", json={"query": "{ organs(first: 2) { items { codigo contracts(first: 2)"
                                                           " { id } } } }"})  # fmt: skip
        assert len(gql.json()["data"]["organs"]["items"]) == 2 and gql.json()["extensions"]["cost"]["queries"] <= 2
        metrics = exposition_samples((await client.get("/metrics")).text)
    routes = {labels["route"] for labels, _ in metrics["cidadao_ai_request_duration_seconds_count"]}
    assert "/api/v1/contracts" in routes  # the replica's own registry


async def test_serve_streams_events_and_websocket_progress(seeded: str, database_url: str) -> None:
    key = await make_key(database_url, "investigate", "read")
    async with httpx.AsyncClient(base_url=seeded, timeout=30, headers={"X-API-Key": key}) as client:
        organ = (await client.get("/api/v1/contracts?limit=1")).json()["contracts"][0]["orgao_codigo"]
        started = (await client.post("/api/v1/investigations", json={"orgao": organ})).json()
        assert (await client.post(f"{started['location']}/cancel")).json()["status"] == "cancelled"
        async with client.stream("GET", f"{started['location']}/events") as r:
            text = "".join([chunk async for chunk in r.aiter_text()])
    assert r.headers["content-type"].startswith("text/event-stream") and "event: cancelled" in text
    ws_url = seeded.replace("http", "ws") + f"/api/v1/ws/investigations/{started['id']}"
    async with connect(ws_url, compression="deflate") as ws:
        message = orjson.loads(await ws.recv())
        assert message["final"] and message["events"][-1]["status"] == "cancelled"


def test_the_deployment_runs_healthy_with_its_minimum_replicas(served: str) -> None:
    from ray import serve

    app = serve.status().applications["cidadao"]
    deployment = app.deployments[DEPLOYMENT_NAME]
    assert app.status == "RUNNING" and deployment.status == "HEALTHY"
    assert deployment.replica_states.get("RUNNING") == 1  # CIDADAO_SERVE_MIN_REPLICAS
