"""Live progress of investigations: one reader of the ``investigation`` event stream per process, fanned out
to every server-sent-event and WebSocket client watching an investigation.

An event only wakes a watcher; what it sends is the investigation's row, read again (the row is the state —
an event may be late, doubled or, with no relay running, absent). A watcher subscribes *before* it reads the
row the first time, so nothing that happens in between is missed; with no event at all it reads the row
again every heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final

import asyncpg
import orjson
import redis.asyncio as aioredis
import redis.exceptions

from cidadao.events.types import EventError, decode, stream_of
from cidadao.storage import queue

__all__ = ["FINAL", "ProgressHub", "Snapshot", "snapshot"]

FINAL: Final = frozenset({"completed", "failed", "cancelled"})
_log = logging.getLogger("cidadao.web")

Snapshot = dict[str, Any]


async def snapshot(pool: asyncpg.Pool, inv: uuid.UUID) -> Snapshot | None:
    """What a watcher is told: status, progress, attempts, error, children's states, flags found."""
    async with pool.acquire() as conn:
        row = await queue.get_investigation(conn, inv)
    if row is None:
        return None
    out = {k: row.get(k) for k in ("status", "progress", "attempts", "error", "flags", "children")}
    out["investigation_id"] = str(inv)
    out["progress"] = round(float(out["progress"] or 0.0), 4)
    return out


class ProgressHub:
    """Reads ``stream`` from the moment it starts (``$``) and wakes the subscribers of each event's
    investigation (a partitioned one's watchers subscribe to its children too)."""

    def __init__(self, client: aioredis.Redis, pool: asyncpg.Pool, *, prefix: str = "cidadao:events:",
                 block_ms: int = 1000) -> None:  # fmt: skip
        self.client, self.pool, self.block_ms = client, pool, block_ms
        self.stream = stream_of("investigation.progress", prefix)
        self._watchers: dict[str, set[asyncio.Queue[str]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    @contextlib.asynccontextmanager
    async def watch(self, inv: uuid.UUID) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue that receives an event type whenever something happens to ``inv`` (or its children)."""
        await self._ensure_running()
        wake: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
        async with self.pool.acquire() as conn:
            children = await conn.fetch("SELECT id FROM investigations WHERE parent_id = $1", inv)
        ids = [str(inv), *(str(r["id"]) for r in children)]
        for key in ids:
            self._watchers.setdefault(key, set()).add(wake)
        try:
            yield wake
        finally:
            for key in ids:
                watchers = self._watchers.get(key)
                if watchers is not None:
                    watchers.discard(wake)
                    if not watchers:
                        del self._watchers[key]

    async def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._started.clear()
            self._task = asyncio.create_task(self._read(), name="progress-hub")
        await self._started.wait()

    async def _read(self) -> None:
        last = "$"
        while True:
            try:
                if last == "$":  # where "now" is, so the first read misses nothing after this point
                    exists = await self.client.exists(self.stream)
                    info = await self.client.xinfo_stream(self.stream) if exists else None
                    last = info["last-generated-id"].decode() if info else "0-0"
                    self._started.set()
                replies = await self.client.xread({self.stream: last}, count=500, block=self.block_ms)
            except asyncio.CancelledError:
                raise
            except (redis.exceptions.RedisError, OSError) as exc:
                _log.warning("progress stream unreadable, retrying: %s", exc)
                self._started.set()  # watchers fall back to their heartbeat
                await asyncio.sleep(1.0)
                continue
            batches: Any = replies or []
            for _, entries in batches:
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    self._dispatch(fields)

    def _dispatch(self, fields: dict[bytes, bytes]) -> None:
        try:
            event = decode(fields)
        except EventError:
            return
        inv = event.data.get("investigation_id")
        for wake in self._watchers.get(str(inv), ()):
            with contextlib.suppress(asyncio.QueueFull):  # a watcher that far behind re-reads the row anyway
                wake.put_nowait(event.type)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def encode_snapshot(snap: Snapshot) -> bytes:
    return orjson.dumps(snap)
