"""Open the system of record: start or reach the stores, then bring the schema up to date."""

from __future__ import annotations

from dataclasses import dataclass

from cidadao.settings import Settings
from cidadao.storage.postgres import Migration, apply_migrations, connect
from cidadao.storage.servers import StoreEndpoints, ensure_stores

__all__ = ["PreparedStores", "prepare_stores"]


@dataclass(frozen=True)
class PreparedStores:
    endpoints: StoreEndpoints
    migrations_applied: list[Migration]


async def prepare_stores(settings: Settings, *, migrate: bool = True) -> PreparedStores:
    """Start (or reach) Postgres and Redis and apply pending migrations. Idempotent."""
    endpoints = ensure_stores(settings)
    applied: list[Migration] = []
    if migrate:
        conn = await connect(endpoints.database_url)
        try:
            applied = await apply_migrations(conn)
        finally:
            await conn.close()
    return PreparedStores(endpoints, applied)
