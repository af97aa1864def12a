"""Where a running runtime says what it is doing: one Redis key per runtime, refreshed on a period, expiring
when the runtime stops refreshing it — so ``cidadao pool status`` and the API read live pools only; and the
gauges it refreshes from the stores on the same period."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any, Final

import asyncpg
import orjson
import redis.asyncio as aioredis

from cidadao.events.streams import Consumer
from cidadao.observability import INVESTIGATIONS, OUTBOX_UNPUBLISHED

__all__ = ["PREFIX", "STATUSES", "observe_stores", "publish", "read_all", "remove", "runtime_key"]

PREFIX: Final = "cidadao:runtime:"
STATUSES: Final = ("queued", "running", "completed", "failed", "cancelled")


def runtime_key(pid: int) -> str:
    return f"{PREFIX}{socket.gethostname()}:{pid}"


async def publish(client: aioredis.Redis, key: str, status: dict[str, Any], ttl_s: float) -> None:
    await client.set(key, orjson.dumps(status), px=max(1, int(ttl_s * 1000)))


async def remove(client: aioredis.Redis, key: str) -> None:
    await client.delete(key)


async def read_all(client: aioredis.Redis) -> list[dict[str, Any]]:
    """Every live runtime's last status, by key."""
    keys = sorted([k async for k in client.scan_iter(match=f"{PREFIX}*", count=100)])
    if not keys:
        return []
    values = await client.mget(keys)
    return [orjson.loads(v) for v in values if v is not None]


async def observe_stores(pool: asyncpg.Pool, consumers: Iterable[Consumer]) -> None:
    """Refresh the gauges that come from the stores: investigations by status, events not yet relayed, each
    consumer group's pending and undelivered entries."""
    async with pool.acquire() as conn:
        counts = dict(await conn.fetch("SELECT status, count(*) FROM investigations GROUP BY status"))
        unpublished = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
    for status in STATUSES:
        INVESTIGATIONS.set(counts.get(status, 0), status=status)
    OUTBOX_UNPUBLISHED.set(unpublished)
    for consumer in consumers:
        await consumer.observe_group()
