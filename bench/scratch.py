"""A database of its own for one benchmark run, on the configured (or embedded) Postgres, dropped after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from cidadao.settings import Settings
from cidadao.storage.database import prepare_stores
from cidadao.storage.postgres import connect

__all__ = ["scratch_database"]


async def _admin(dsn: str, sql: str) -> None:
    """One statement on its own connection (CREATE/DROP DATABASE cannot run inside a transaction)."""
    conn = await connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(settings: Settings) -> Iterator[str]:
    """Create ``cidadao_bench_<random>`` and yield its URL; drop it (forcing out sessions) at the end."""
    admin = asyncio.run(prepare_stores(settings)).endpoints.database_url
    name = f"cidadao_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(admin)._replace(path="/" + name))
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
