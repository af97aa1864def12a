"""Consuming events from Redis Streams: consumer groups, explicit acknowledgement, reclaim, dead letters.

A :class:`Consumer` reads its group's new entries (``XREADGROUP``), hands each decoded event to its handler
and acknowledges it (``XACK``) only once the handler returned. An entry whose consumer died before the
acknowledgement stays pending; after ``claim_idle_ms`` another consumer takes it over (``XAUTOCLAIM``) and
handles it again — delivery is at least once. An entry delivered ``max_deliveries`` times without success (a
poison message, or one that is not an event at all) moves to the dead-letter stream ``<stream>:dead`` with
its last error and is acknowledged, so it stops blocking nobody and is kept for a person to look at.

Handlers make the effect exactly once with :func:`apply_once`: the event id is recorded in
``processed_events`` in the same Postgres transaction as the handler's writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from cidadao.events.types import Event, EventError, decode
from cidadao.observability import (
    EVENT_DELIVERY_LAG,
    EVENTS_BACKLOG,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_FAILED,
    EVENTS_PENDING,
    EVENTS_RECLAIMED,
)

__all__ = ["BatchHandler", "Consumer", "ConsumerStats", "Handler", "apply_once", "apply_once_many"]

Handler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[list[Event]], Awaitable[None]]


async def apply_once(conn: asyncpg.Connection, consumer: str, event: Event) -> bool:
    """Record that ``consumer`` applied ``event``; False if it already had. Call it inside the transaction that
    applies the event, and apply only on True."""
    if event.id is None:
        raise EventError(f"{event.type}: an event without an id cannot be applied once")
    inserted = await conn.fetchval(
        """INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING
           RETURNING true""",
        consumer, event.id,
    )  # fmt: skip
    return bool(inserted)


async def apply_once_many(conn: asyncpg.Connection, consumer: str, events: list[Event]) -> list[Event]:
    """:func:`apply_once` for many events in one statement: those not applied before, in their order."""
    ids = [e.id for e in events]
    if None in ids:
        raise EventError("an event without an id cannot be applied once")
    new = await conn.fetch(
        """INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::text[])
           ON CONFLICT DO NOTHING RETURNING event_id""",
        consumer, ids,
    )  # fmt: skip
    fresh = {r["event_id"] for r in new}
    out = []
    for e in events:  # an event relayed twice may sit twice in one read: apply it once
        if e.id in fresh:
            fresh.discard(e.id)
            out.append(e)
    return out


@dataclass
class ConsumerStats:
    handled: int = 0
    failed: int = 0
    reclaimed: int = 0
    dead_lettered: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # entry id -> last error (until it is acknowledged)


class Consumer:
    def __init__(
        self, client: aioredis.Redis, stream: str, group: str, name: str, handler: Handler, *,
        max_deliveries: int = 5, claim_idle_ms: int = 30_000, start: str = "0",
        batch_handler: BatchHandler | None = None,
    ) -> None:  # fmt: skip
        """``start``: where a new group begins — ``"0"`` replays the stream from its first entry, ``"$"`` takes
        only what comes next. ``batch_handler``: handles the events of one read at once (one transaction for
        many); if it raises, they are handled one by one with ``handler``, so one poison event fails alone."""
        self.client: Any = client  # redis-py's stubs type stream replies loosely
        self.stream, self.group, self.name, self.handler = stream, group, name, handler
        self.batch_handler = batch_handler
        self.max_deliveries, self.claim_idle_ms, self.start = max_deliveries, claim_idle_ms, start
        self.dead_letter = f"{stream}:dead"
        self.stats = ConsumerStats()
        self._labels = {"stream": stream, "group": group}
        for metric in (EVENTS_CONSUMED, EVENTS_FAILED, EVENTS_RECLAIMED, EVENTS_DEAD_LETTERED):
            metric.init(**self._labels)

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run_once(self, *, count: int = 100, block_ms: int | None = 1000) -> int:
        """Reclaim stale pending entries, then read new ones (waiting up to ``block_ms``); entries handled."""
        handled = await self._reclaim(count)
        reply = await self.client.xreadgroup(self.group, self.name, {self.stream: ">"}, count=count, block=block_ms)
        for _stream, entries in reply or []:
            handled += await self._handle(entries)
        return handled

    async def run(self, stop: asyncio.Event, *, count: int = 100, block_ms: int = 1000) -> None:
        """Until ``stop`` is set."""
        await self.ensure_group()
        while not stop.is_set():
            await self.run_once(count=count, block_ms=block_ms)

    async def _reclaim(self, count: int) -> int:
        """Entries pending longer than ``claim_idle_ms`` (their consumer died or failed): dead-letter those
        delivered too often, take over and handle the rest."""
        pending = await self.client.xpending_range(
            self.stream, self.group, min="-", max="+", count=count, idle=self.claim_idle_ms
        )
        if not pending:
            return 0
        for p in pending:
            if p["times_delivered"] >= self.max_deliveries:
                await self._dead_letter(p["message_id"], p["times_delivered"])
        _next, claimed, *_ = await self.client.xautoclaim(
            self.stream, self.group, self.name, self.claim_idle_ms, start_id="0-0", count=count
        )
        gone = [entry_id for entry_id, fields in claimed if fields is None]
        if gone:  # trimmed from the stream while pending: nothing left to handle
            await self.client.xack(self.stream, self.group, *gone)
        claimed = [(entry_id, fields) for entry_id, fields in claimed if fields is not None]
        self.stats.reclaimed += len(claimed)
        EVENTS_RECLAIMED.inc(len(claimed), **self._labels)
        return await self._handle(claimed) if claimed else 0

    async def _handle(self, entries: list[tuple[Any, dict[bytes, bytes]]]) -> int:
        """Handle the entries of one read, acknowledge those handled (one ``XACK``); a failure leaves its entry
        pending: redelivered after ``claim_idle_ms``, dead-lettered after ``max_deliveries``."""
        events: list[tuple[str, Event]] = []
        for entry_id, fields in entries:
            try:
                events.append((_text(entry_id), decode(fields)))
            except EventError as exc:
                self._failed(_text(entry_id), exc)
        done: list[tuple[str, Event]] = []
        if self.batch_handler is not None and len(events) > 1:
            try:
                await self.batch_handler([e for _, e in events])
                done = events
            except Exception:  # find the one that fails: each on its own
                done = []
        if not done:
            for key, event in events:
                try:
                    await self.handler(event)
                except Exception as exc:
                    self._failed(key, exc)
                    continue
                done.append((key, event))
        if not done:
            return 0
        await self.client.xack(self.stream, self.group, *(key for key, _ in done))
        now = time.time()
        for key, event in done:
            self.stats.errors.pop(key, None)
            EVENT_DELIVERY_LAG.observe(max(0.0, now - event.occurred_at.timestamp()), **self._labels)
        self.stats.handled += len(done)
        EVENTS_CONSUMED.inc(len(done), **self._labels)
        return len(done)

    def _failed(self, key: str, exc: Exception) -> None:
        self.stats.failed += 1
        EVENTS_FAILED.inc(**self._labels)
        self.stats.errors[key] = f"{type(exc).__name__}: {exc}"[:1000]

    async def _dead_letter(self, entry_id: Any, deliveries: int) -> None:
        key = _text(entry_id)
        entries = await self.client.xrange(self.stream, min=key, max=key)
        fields = dict(entries[0][1]) if entries else {}
        fields.update({
            b"dead_entry": key.encode(), b"dead_group": self.group.encode(), b"deliveries": str(deliveries).encode(),
            b"error": self.stats.errors.pop(key, "failed in another consumer").encode(),
        })  # fmt: skip
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter, fields, maxlen=10_000, approximate=True)
            pipe.xack(self.stream, self.group, entry_id)
            await pipe.execute()
        self.stats.dead_lettered += 1
        EVENTS_DEAD_LETTERED.inc(**self._labels)

    async def observe_group(self) -> dict[str, int]:
        """The group's ``pending`` (delivered, not acknowledged) and ``backlog`` (not yet delivered) entries, also
        kept in their gauges; zeros when the group does not exist (yet)."""
        try:
            groups = await self.client.xinfo_groups(self.stream)
        except ResponseError:  # no such stream
            groups = []
        mine = next((g for g in groups if _text(g["name"]) == self.group), None)
        pending = int(mine["pending"]) if mine else 0
        backlog = int(mine.get("lag") or 0) if mine else 0  # Redis >= 7; None when Redis cannot tell
        EVENTS_PENDING.set(pending, **self._labels)
        EVENTS_BACKLOG.set(backlog, **self._labels)
        return {"pending": pending, "backlog": backlog}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
