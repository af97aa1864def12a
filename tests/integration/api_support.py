"""The API served for real in the test's event loop: uvicorn on a free loopback port, the session's stores."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from cidadao.cache.redis_tier import cache_client
from cidadao.cache.service import Caches
from cidadao.commands import IngestFiles, detect_files, ingest_files
from cidadao.contracts.synthetic import generate
from cidadao.settings import Settings, load_settings
from cidadao.web.keys import create_key
from deployments.api.app import create_app
from deployments.api.services import StoreUrls
from tests.helpers import eventually

__all__ = ["ApiServer", "api_settings", "ingest_demo", "make_key", "serve_api", "serve_asgi"]


def api_settings(base: Settings, **overrides: Any) -> Settings:
    """The session's settings with the API's knobs changed (rate limits off unless a test sets them)."""
    values: dict[str, Any] = {"data_home": base.data_home, "rate_limit_per_minute": 0, "rate_limit_key_per_minute": 0}
    for name in ("database_url", "redis_url"):
        secret = getattr(base, name)
        if secret is not None:
            values[name] = secret.get_secret_value()
    values.update(overrides)
    return load_settings(**values)


class ApiServer:
    def __init__(self, url: str, app: Any) -> None:
        self.url, self.app = url, app

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30.0, **kwargs)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """``app`` under uvicorn (lifespan on, as in production) on a free loopback port until the block ends."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: server.started or task.done(), "uvicorn to start")
        if task.done():
            task.result()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def serve_api(settings: Settings, urls: StoreUrls) -> AsyncIterator[ApiServer]:
    """The API app served by :func:`serve_asgi`: its stores open and close with it."""
    app = create_app(settings, urls)
    async with serve_asgi(app) as url:
        yield ApiServer(url, app)


async def ingest_demo(database_url: str, redis_url: str, settings: Settings, out: Path, n: int, seed: int = 11) -> None:
    """An empty database, then ``n`` synthetic contracts in the Portal's format (organs, suppliers, CEIS)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "TRUNCATE flags, investigations, contracts, sanctions, suppliers, management_units, organs, "
            "projection_flags_by_organ_month RESTART IDENTITY"
        )
        summary = generate(out, n, seed, "portal")
        paths = [Path(p) for name, p in summary.files.items() if name not in ("labels", "manifest")]
        client = cache_client(redis_url)
        caches = Caches.local(settings, client)
        try:  # the API's cached answers of an earlier test forgotten, as a running runtime would
            await ingest_files(conn, detect_files(IngestFiles(paths=paths)), settings, caches=caches)
        finally:
            await caches.close()
            await client.aclose()
    finally:
        await conn.close()


async def make_key(database_url: str, *scopes: str, name: str = "test") -> str:
    conn = await asyncpg.connect(database_url)
    try:
        raw, _ = await create_key(conn, name, list(scopes))
        return raw
    finally:
        await conn.close()
