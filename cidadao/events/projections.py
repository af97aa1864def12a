"""Projections: read models built from events alone, so replaying the stream rebuilds them.

``flags-by-organ-month`` counts the flags every completed investigation found, per organ, signing month and
flag, from ``investigation.completed`` events (a partitioned investigation's parent carries no per-month
counts: its children's events do, so nothing is counted twice). Each event is applied once
(:func:`~cidadao.events.streams.apply_once`, in the transaction that updates the counts).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from cidadao.events.outbox import emit
from cidadao.events.streams import Consumer, apply_once
from cidadao.events.types import Event, make, stream_of
from cidadao.observability import record_event

__all__ = [
    "FLAGS_BY_ORGAN_MONTH",
    "METRICS_GROUP",
    "apply_flags_by_organ_month",
    "flags_cache_prefixes",
    "flags_consumer",
    "metrics_consumers",
    "replay_flags_by_organ_month",
]

FLAGS_BY_ORGAN_MONTH: Final = "flags-by-organ-month"
METRICS_GROUP: Final = "metrics"


async def apply_flags_by_organ_month(conn: asyncpg.Connection, event: Event, *, announce: bool = True) -> bool:
    """Apply one event to the projection; False if it is not for it or was applied before. ``announce``: with a
    ``cache.invalidate`` of the reads it changes, in the same transaction."""
    if event.type != "investigation.completed" or not event.data.get("flags_by_organ_month"):
        return False
    async with conn.transaction():
        if not await apply_once(conn, FLAGS_BY_ORGAN_MONTH, event):
            return False
        rows = event.data["flags_by_organ_month"]
        await conn.execute(
            """INSERT INTO projection_flags_by_organ_month AS p (orgao_codigo, month, flag, n)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
               ON CONFLICT (orgao_codigo, month, flag) DO UPDATE SET n = p.n + EXCLUDED.n""",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        )  # fmt: skip
        if announce:
            await emit(conn, make("cache.invalidate", key=event.id, prefixes=flags_cache_prefixes(event)))
    return True


def flags_cache_prefixes(event: Event) -> list[str]:
    """The cached reads an ``investigation.completed`` event changes: its organs' projection, every read of it
    across organs, and the API's records (contracts carry their flags)."""
    organs = sorted({r[0] for r in event.data.get("flags_by_organ_month", [])})
    return [f"flags:{organ}:" for organ in organs] + ["flags:*:", "records:"]


def flags_consumer(
    client: aioredis.Redis, pool: asyncpg.Pool, name: str, *, prefix: str = "cidadao:events:",
    applied: Callable[[Event], Awaitable[None]] | None = None, announce: bool = True,
) -> Consumer:  # fmt: skip
    """The projection's consumer (its group is the projection's name) on the investigation stream;
    ``applied``: called with each event once its change has committed (the runtime forgets the cached reads
    there, before the event is acknowledged)."""

    async def handle(event: Event) -> None:
        async with pool.acquire() as conn:
            changed = await apply_flags_by_organ_month(conn, event, announce=announce)
        if changed and applied is not None:
            await applied(event)

    return Consumer(client, stream_of("investigation.", prefix), FLAGS_BY_ORGAN_MONTH, name, handle)


def metrics_consumers(client: aioredis.Redis, name: str, *, prefix: str = "cidadao:events:") -> list[Consumer]:
    """Consumers (group ``metrics``, from what comes next) that turn events into the domain's counters: flags
    found by type, rows ingested (:func:`cidadao.observability.record_event`). Runtimes sharing a database
    share the group, so each event is counted by one of them (twice only if it is redelivered)."""

    async def handle(event: Event) -> None:
        record_event(event.type, event.data)

    return [
        Consumer(client, stream_of(domain, prefix), METRICS_GROUP, name, handle, start="$")
        for domain in ("investigation.", "contracts.")
    ]


async def replay_flags_by_organ_month(
    pool: asyncpg.Pool, client: aioredis.Redis, *, prefix: str = "cidadao:events:"
) -> dict[str, Any]:
    """Rebuild the projection from the first entry of the stream: empty it, forget what it applied, read the
    whole stream again under a fresh consumer group. Returns what was read and applied."""
    started = time.perf_counter()
    stream = stream_of("investigation.", prefix)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("TRUNCATE projection_flags_by_organ_month")
        await conn.execute("DELETE FROM processed_events WHERE consumer = $1", FLAGS_BY_ORGAN_MONTH)
    with contextlib.suppress(ResponseError):  # no such stream yet
        await client.xgroup_destroy(stream, FLAGS_BY_ORGAN_MONTH)
    consumer = flags_consumer(client, pool, "replay", prefix=prefix, announce=False)
    await consumer.ensure_group()  # from "0": the stream's first entry
    while await consumer.run_once(count=1000, block_ms=None):
        pass
    async with pool.acquire() as conn:  # every cached read of the projection, once
        await emit(conn, make("cache.invalidate", key="replay", prefixes=["flags:"]))
    first: Any = await client.xrange(stream, count=1)
    async with pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM projection_flags_by_organ_month")
        applied = await conn.fetchval("SELECT count(*) FROM processed_events WHERE consumer = $1", FLAGS_BY_ORGAN_MONTH)
    return {
        "projection": FLAGS_BY_ORGAN_MONTH, "stream": stream, "events_read": consumer.stats.handled,
        "events_applied": applied, "rows": rows, "failed": consumer.stats.failed,
        "first_entry": first[0][0].decode() if first else None, "seconds": round(time.perf_counter() - started, 3),
    }  # fmt: skip
