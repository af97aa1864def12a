from __future__ import annotations

import pytest

from cidadao.settings import Settings
from cidadao.storage.postgres import create_pool

pytestmark = pytest.mark.integration


async def test_pool_is_sized_by_db_pool_size(store_settings: Settings, database_url: str) -> None:
    settings = store_settings.model_copy(update={"db_pool_size": 3, "db_pool_min_size": 1})
    pool = await create_pool(database_url, settings)
    try:
        assert (pool.get_min_size(), pool.get_max_size()) == (1, 3)
        async with pool.acquire() as a, pool.acquire() as b, pool.acquire() as c:
            pids = {await conn.fetchval("SELECT pg_backend_pid()") for conn in (a, b, c)}
            assert len(pids) == 3
    finally:
        await pool.close()


async def test_a_hot_statement_is_prepared_once_per_connection(database_url: str, store_settings: Settings) -> None:
    pool = await create_pool(database_url, store_settings.model_copy(update={"db_pool_size": 1}))
    try:
        async with pool.acquire() as conn:
            for sid in ("1", "2", "3"):
                await conn.fetch("SELECT id FROM contracts WHERE source = $1 AND source_id = $2", "portal", sid)
            prepared = await conn.fetchval(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE $1",
                "SELECT id FROM contracts WHERE source = $1 AND source_id = $2%",
            )
            assert prepared == 1
    finally:
        await pool.close()


async def test_an_unreachable_server_is_a_clear_store_error(store_settings: Settings) -> None:
    from cidadao.errors import StoreError

    with pytest.raises(StoreError, match="cannot connect to Postgres"):
        await create_pool("postgresql://postgres@127.0.0.1:1/none", store_settings)
