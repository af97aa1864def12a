"""Investigations as a durable queue on real Postgres: idempotent submits, exclusive claims, leases that
expire and hand the work over, fenced completion (flags stored once), cancellation and retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pyarrow as pa
import pytest

from cidadao.redflags import SideData, sweep_table
from cidadao.redflags.sweep import SweepResult
from cidadao.storage import queue
from tests.integration.test_strategies import random_contracts

pytestmark = pytest.mark.integration

SCOPE = {"all": True, "year": None}


@pytest.fixture
async def pool(database_url: str, db: asyncpg.Connection) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database_url, min_size=4, max_size=8)
    assert p is not None
    yield p
    await p.close()


async def _stored_sweep(db: asyncpg.Connection) -> SweepResult:
    """A sweep over contracts that exist in the database (flags point at their ids)."""
    table, side = random_contracts(9, 400)
    await db.execute("INSERT INTO organs (codigo) SELECT DISTINCT unnest($1::text[])", table["orgao"].to_pylist())
    ids = await db.fetch(
        """INSERT INTO contracts (source, source_id, signed_on, orgao_codigo, raw)
           SELECT 'portal', s, d, o, '{}' FROM unnest($1::text[], $2::date[], $3::text[]) AS t(s, d, o)
           RETURNING id, source_id""",
        table["contract_id"].to_pylist(), table["signed_on"].to_pylist(), table["orgao"].to_pylist(),
    )  # fmt: skip
    by_source = {r["source_id"]: r["id"] for r in ids}
    table = table.set_column(0, "id", pa.array([by_source[c] for c in table["contract_id"].to_pylist()]))
    return sweep_table(table, SideData(side.sanctions, side.registry))


async def test_submit_is_idempotent_by_key(db: asyncpg.Connection) -> None:
    first = await queue.submit(db, SCOPE, user_id="ana", idempotency_key="k-1")
    again = await queue.submit(db, SCOPE, user_id="ana", idempotency_key="k-1")
    assert first.created and not again.created and again.id == first.id and again.status == "queued"
    other = await queue.submit(db, SCOPE, user_id="ana")  # no key: always new
    assert other.id != first.id
    with pytest.raises(queue.IdempotencyConflict, match="k-1"):
        await queue.submit(db, {"orgao": "26000", "year": None}, user_id="ana", idempotency_key="k-1")
    assert await db.fetchval("SELECT count(*) FROM investigations") == 2


async def test_concurrent_claims_never_take_the_same_investigation(db: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    submitted = [(await queue.submit(db, SCOPE)).id for _ in range(3)]

    async def one(i: int) -> queue.Claim | None:
        async with pool.acquire() as conn:
            return await queue.claim(conn, f"agent-{i}", 30)

    claims = await asyncio.gather(*(one(i) for i in range(6)))
    taken = [c.id for c in claims if c is not None]
    assert sorted(taken) == sorted(submitted)  # each once, the rest find the queue empty
    assert all(c.attempt == 1 for c in claims if c is not None)
    assert await db.fetchval("SELECT count(*) FROM investigations WHERE status = 'running'") == 3


async def test_an_expired_lease_hands_the_work_over_and_it_completes_once(db: asyncpg.Connection) -> None:
    result = await _stored_sweep(db)
    inv = (await queue.submit(db, SCOPE)).id
    dead = await queue.claim(db, "agent-killed", 30)
    assert dead is not None and dead.id == inv
    await db.execute("UPDATE investigations SET lease_until = now() - interval '1 second' WHERE id = $1", inv)
    assert await queue.requeue_expired(db) == [inv]  # what start-up and the pool's watchdog do
    alive = await queue.claim(db, "agent-healthy", 30)
    assert alive is not None and alive.id == inv and alive.attempt == 2

    assert not (await queue.extend_lease(db, dead, 30)).held  # the old claim is fenced off
    assert await queue.complete(db, alive, result, {"contracts_analyzed": 400})
    assert not await queue.complete(db, dead, result, {"contracts_analyzed": 400})  # a late finisher stores nothing
    assert await queue.fail(db, dead, "late", max_attempts=3) is None
    row = await queue.get_investigation(db, inv)
    assert row is not None and row["status"] == "completed" and row["attempts"] == 2
    assert row["flags"] == len(result.flags) + len(result.agency_flags) > 0


async def test_failures_retry_then_fail(db: asyncpg.Connection) -> None:
    inv = (await queue.submit(db, SCOPE)).id
    for attempt in (1, 2):
        c = await queue.claim(db, "agent", 30)
        assert c is not None and c.attempt == attempt
        assert await queue.fail(db, c, f"boom {attempt}", max_attempts=2) == ("queued" if attempt == 1 else "failed")
    row = await queue.get_investigation(db, inv)
    assert row is not None and row["status"] == "failed" and row["error"] == "boom 2"
    assert await queue.claim(db, "agent", 30) is None


async def test_cancel_queued_and_running(db: asyncpg.Connection) -> None:
    waiting = (await queue.submit(db, SCOPE)).id
    running = (await queue.submit(db, SCOPE)).id
    c = await queue.claim(db, "agent", 30)
    assert c is not None and c.id == waiting  # oldest first
    assert await queue.cancel(db, running) == "cancelled"
    assert await queue.cancel(db, waiting) == "cancel_requested"
    lease = await queue.extend_lease(db, c, 30, progress=0.5)
    assert lease.held and lease.cancel_requested  # the agent learns it at its next renewal
    assert await queue.fail(db, c, "cancelled on request", max_attempts=3) == "cancelled"
    assert await queue.cancel(db, waiting) == "cancelled"  # already ended: its final status
    assert await queue.claim(db, "agent", 30) is None
