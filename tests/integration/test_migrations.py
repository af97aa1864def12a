from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from cidadao.errors import MigrationError
from cidadao.storage.postgres import apply_migrations, load_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_schema(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose search_path is a brand-new, empty schema (so migrations start from nothing)."""
    conn = await asyncpg.connect(database_url)
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE SCHEMA {schema}")
    await conn.execute(f"SET search_path TO {schema}")
    yield conn
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()


async def test_from_empty_then_rerun_is_a_no_op(empty_schema: asyncpg.Connection) -> None:
    applied = await apply_migrations(empty_schema)
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    assert await apply_migrations(empty_schema) == []
    rows = await empty_schema.fetch("SELECT version, checksum FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["checksum"]) for r in rows] == [(m.version, m.checksum) for m in load_migrations()]
    tables = {
        r["tablename"]
        for r in await empty_schema.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    }
    expected = {"organs", "management_units", "suppliers", "contracts", "sanctions", "investigations", "flags"}
    assert expected <= tables


async def test_the_seed_indexes_exist(empty_schema: asyncpg.Connection) -> None:
    await apply_migrations(empty_schema)
    defs = {
        r["indexname"]: r["indexdef"]
        for r in await empty_schema.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        )
    }
    assert "(status, user_id, created_at DESC)" in defs["investigations_status_user_created_idx"]
    assert "WHERE (status = ANY" in defs["investigations_active_idx"]
    assert "USING gin (raw jsonb_path_ops)" in defs["contracts_raw_gin"]
    # the seed's (orgao_codigo, signed_on), (supplier_document) and (object_class, signed_on), widened by 0008 with
    # the columns the API's keyset pages sort on
    assert "(orgao_codigo, signed_on, id)" in defs["contracts_orgao_signed_id_idx"]
    assert "(supplier_document, signed_on, id)" in defs["contracts_supplier_signed_id_idx"]
    assert "(object_class, signed_on, id)" in defs["contracts_class_signed_id_idx"]


async def test_a_changed_migration_is_refused(empty_schema: asyncpg.Connection) -> None:
    await apply_migrations(empty_schema)
    await empty_schema.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(empty_schema)


async def test_an_unknown_newer_migration_is_refused(empty_schema: asyncpg.Connection) -> None:
    await apply_migrations(empty_schema)
    await empty_schema.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'future', 'x')")
    with pytest.raises(MigrationError, match="does not know"):
        await apply_migrations(empty_schema)


async def test_concurrent_migrators_apply_once(database_url: str) -> None:
    import asyncio

    schema = f"mig_{uuid.uuid4().hex[:8]}"
    conns = [await asyncpg.connect(database_url, server_settings={"search_path": schema}) for _ in range(3)]
    try:
        await conns[0].execute(f"CREATE SCHEMA {schema}")
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, len(load_migrations())]
    finally:
        await conns[0].execute(f"DROP SCHEMA {schema} CASCADE")
        for c in conns:
            await c.close()
