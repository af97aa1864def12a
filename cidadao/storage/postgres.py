"""Postgres, the system of record: the asyncpg pool and the versioned migrations.

Migrations are the numbered ``migrations/NNNN_name.sql`` files shipped with the package. Each is applied
once, in its own transaction, and recorded in ``schema_migrations`` with a checksum; a changed file that
was already applied is an error, never silently re-run. A Postgres advisory lock serialises concurrent
migrators (two ``cidadao`` processes starting at once).

Every query in the runtime is parameterised. asyncpg prepares each statement text once per connection
and reuses it from its statement cache, so the hot statements (the ingest upserts) are prepared once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg

from cidadao.errors import MigrationError, StoreError
from cidadao.observability import record_query
from cidadao.settings import Settings

__all__ = ["Migration", "apply_migrations", "connect", "create_pool", "load_migrations"]

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ADVISORY_LOCK_KEY = 0x0C1DADA0  # any fixed 64-bit key, unique to this application


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found: list[Migration] = []
    for entry in resources.files("cidadao.storage").joinpath("migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """One connection, with a clear error when the server cannot be reached; its queries timed
    (``cidadao_ai_db_query_duration_seconds``)."""
    try:
        conn = await asyncpg.connect(dsn, **kwargs)
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"cannot connect to Postgres: {exc}") from exc
    conn.add_query_logger(record_query)
    return conn


async def _timed(conn: asyncpg.Connection) -> None:
    conn.add_query_logger(record_query)


async def create_pool(
    dsn: str, settings: Settings, *, min_size: int | None = None, max_size: int | None = None, **kwargs: Any
) -> asyncpg.Pool:
    """The asyncpg pool, sized by ``DB_POOL_SIZE`` unless ``max_size`` says otherwise (one agent's small pool);
    its queries timed (``cidadao_ai_db_query_duration_seconds``)."""
    high = settings.db_pool_size if max_size is None else max_size
    low = min(settings.db_pool_min_size if min_size is None else min_size, high)
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=low,
            max_size=high,
            command_timeout=settings.db_command_timeout,
            init=_timed,
            **kwargs,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"cannot connect to Postgres: {exc}") from exc
    assert pool is not None
    return pool


async def apply_migrations(conn: asyncpg.Connection) -> list[Migration]:
    """Apply every migration not yet recorded; return those applied now (empty when up to date)."""
    migrations = load_migrations()
    await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        applied = {r["version"]: r for r in rows}
        known = {m.version for m in migrations}
        unknown = sorted(set(applied) - known)
        if unknown:
            raise MigrationError(
                f"the database has migrations {unknown} that this version of the runtime does not know; "
                "upgrade the runtime"
            )
        done: list[Migration] = []
        for mig in migrations:
            row = applied.get(mig.version)
            if row is not None:
                if row["checksum"] != mig.checksum:
                    raise MigrationError(
                        f"migration {mig.version:04d}_{mig.name} changed after it was applied "
                        f"(recorded checksum {row['checksum'][:12]}, file {mig.checksum[:12]})"
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(mig.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        mig.version,
                        mig.name,
                        mig.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {mig.version:04d}_{mig.name} failed: {exc}") from exc
            done.append(mig)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)
