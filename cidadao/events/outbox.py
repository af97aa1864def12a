"""The outbox: an event is a row written in the transaction of the change it announces, relayed to Redis.

:func:`emit` inserts the event (a trigger NOTIFYs the relay, delivered at commit): a rolled-back change takes its
event with it, a committed one keeps it. :func:`relay` moves unpublished rows, in id order, to their streams
(``XADD`` with an approximate ``MAXLEN``) and marks them published. A relay that dies between the ``XADD`` and
the mark publishes those rows again: delivery is at least once, and the row id travels with the event so that
consumers apply it once (:func:`cidadao.events.streams.apply_once`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import asyncpg
import orjson

from cidadao.events.types import Event, encode, stream_of
from cidadao.observability import EVENTS_PUBLISHED
from cidadao.storage.postgres import connect

if TYPE_CHECKING:  # a Redis client is passed in; importing redis-py (and its telemetry) costs every agent's start
    import redis.asyncio as aioredis

__all__ = ["CHANNEL", "MAXLEN", "emit", "relay", "run_relay"]

log = logging.getLogger(__name__)

CHANNEL: Final = "cidadao_outbox"
MAXLEN: Final = 100_000  # entries kept per stream (approximately: Redis trims whole macro-nodes)


async def emit(conn: asyncpg.Connection, event: Event) -> str:
    """Store ``event`` in the outbox inside the caller's transaction; its id."""
    event_id = await conn.fetchval(
        """INSERT INTO event_outbox (type, version, key, data, occurred_at) VALUES ($1, $2, $3, $4::jsonb, $5)
           RETURNING id""",
        event.type, event.version, event.key, orjson.dumps(event.data).decode(), event.occurred_at,
    )  # fmt: skip
    return str(event_id)  # the insert's trigger NOTIFYs the relay (migration 0007)


async def relay(
    conn: asyncpg.Connection, client: aioredis.Redis, *, batch: int = 500, maxlen: int = MAXLEN,
    prefix: str = "cidadao:events:",
) -> int:  # fmt: skip
    """Publish up to ``batch`` unpublished events, oldest first; how many were published."""
    async with conn.transaction():
        rows = await conn.fetch(
            """SELECT id, type, version, key, data, occurred_at FROM event_outbox
                WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            batch,
        )
        if not rows:
            return 0
        streams: dict[str, int] = {}
        async with client.pipeline(transaction=False) as pipe:
            for r in rows:
                event = Event(
                    r["type"], orjson.loads(r["data"]), r["key"], r["version"], r["occurred_at"], str(r["id"])
                )
                stream = stream_of(event.type, prefix)
                streams[stream] = streams.get(stream, 0) + 1
                pipe.xadd(stream, encode(event), maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()
        await conn.execute(
            "UPDATE event_outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
        )
    for stream, n in streams.items():  # counted once the transaction committed
        EVENTS_PUBLISHED.inc(n, stream=stream)
    return len(rows)


async def run_relay(
    dsn: str, client: aioredis.Redis, stop: asyncio.Event, *, prefix: str = "cidadao:events:",
    on_relayed: Callable[[int], None] | None = None, batch: int = 500, poll_s: float = 1.0,
) -> None:  # fmt: skip
    """Relay the outbox as events are committed — woken by their NOTIFY, else every ``poll_s`` — until ``stop``
    is set; a lost connection is logged and opened again (a supervisor loop: it outlives any error)."""
    wake = asyncio.Event()
    conn: asyncpg.Connection | None = None
    while not stop.is_set():
        wake.clear()
        try:
            if conn is None or conn.is_closed():
                conn = await connect(dsn)
                await conn.add_listener(CHANNEL, lambda *_: wake.set())
            while n := await relay(conn, client, batch=batch, prefix=prefix):
                if on_relayed is not None:
                    on_relayed(n)
        except Exception as exc:
            log.warning("event relay: %s: %s; retrying", type(exc).__name__, exc)
            if conn is not None and not conn.is_closed():
                conn.terminate()  # closing could wait on a dead server
            conn = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_s)
    if conn is not None:
        await conn.close()
