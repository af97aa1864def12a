"""Where a running runtime says what it is doing: one Redis key per runtime, refreshed on a period, expiring
when the runtime stops refreshing it — so ``cidadao pool status`` and the API read live pools only."""

from __future__ import annotations

import socket
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

__all__ = ["PREFIX", "publish", "read_all", "remove", "runtime_key"]

PREFIX: Final = "cidadao:runtime:"


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
