"""The investigation's sweep straight from Postgres: every group read by the task that sweeps it."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from cidadao.errors import PartitionsFailed
from cidadao.redflags import sweep_table
from cidadao.redflags.stats import merge_prices
from cidadao.storage.analysis import (
    Scope,
    load_contracts,
    load_price_histogram,
    load_side,
    organ_counts,
    store_tables,
)
from pipelines import STRATEGIES
from pipelines.sweep import sweep_postgres
from tests.integration.test_strategies import random_contracts

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("local_ray")]


async def _store(db: asyncpg.Connection, seed: int, n: int) -> None:
    table, side = random_contracts(seed, n)
    await store_tables(db, table, side)


async def _inputs(db: asyncpg.Connection, scope: Scope) -> tuple[list[tuple[str, int]], Any, Any]:
    return await organ_counts(db, scope), await load_side(db), merge_prices([await load_price_histogram(db, scope)])


# sweep_postgres reads with asyncio.run in each task: called, as the investigation does, from a thread
async def test_every_strategy_reads_and_sweeps_like_one_process(db: asyncpg.Connection, database_url: str) -> None:
    await _store(db, 3, 6000)
    scope = Scope()
    counts, side, thresholds = await _inputs(db, scope)
    assert sum(n for _, n in counts) == 6000
    inline = await asyncio.to_thread(sweep_postgres, database_url, scope, counts, side, thresholds, inline_below=10**9)
    assert inline.contracts_analyzed == 6000 and inline.flag_table.num_rows > 0
    for strategy in STRATEGIES:
        progress: list[float] = []
        got = await asyncio.to_thread(
            sweep_postgres, database_url, scope, counts, side, thresholds, strategy=strategy, inline_below=0,
            on_progress=progress.append,
        )  # fmt: skip
        assert got.as_dict() == inline.as_dict(), strategy
        assert progress == sorted(progress) and progress[-1] == 1.0 and progress[0] > 0, (strategy, progress)
    # the same flags as sweeping the whole table read at once (price thresholds from the same histogram)
    whole = sweep_table(await load_contracts(db, scope), side)
    assert {(f.contract_id, f.flag) for f in whole.flags} == {(f.contract_id, f.flag) for f in inline.flags}
    assert all(f.db_id > 0 for f in inline.flags)  # flags point at stored contracts


async def test_an_organ_scope_reads_only_its_organ(db: asyncpg.Connection, database_url: str) -> None:
    await _store(db, 4, 3000)
    scope = Scope("36000", 2023)
    counts, side, thresholds = await _inputs(db, scope)
    assert [o for o, _ in counts] == ["36000"]
    result = await asyncio.to_thread(sweep_postgres, database_url, scope, counts, side, thresholds, inline_below=0)
    expected = await db.fetchval(
        "SELECT count(*) FROM contracts WHERE orgao_codigo = '36000' AND extract(year FROM signed_on) = 2023"
    )
    assert result.contracts_analyzed == expected
    assert {a.orgao for a in result.agency_flags} <= {"36000"}


async def test_groups_that_cannot_be_read_are_named(db: asyncpg.Connection, database_url: str) -> None:
    await _store(db, 5, 2000)
    counts, side, thresholds = await _inputs(db, Scope())
    broken = urlunsplit(urlsplit(database_url)._replace(path="/no_such_database"))  # embedded: host in the query
    with pytest.raises(PartitionsFailed) as caught:
        await asyncio.to_thread(sweep_postgres, broken, Scope(), counts, side, thresholds, inline_below=0)
    assert "orgao 26000" in str(caught.value) and "no_such_database" in str(caught.value)
