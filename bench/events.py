"""``cidadao bench events``: the event backbone end to end, against the raw Redis Streams it is built on.

Both legs move the same number of events of the same size through the same Redis in the same run, a
producer and a consumer running at once:

- **raw**: ``XADD`` pipelined in batches of 500 (as the relay does) → ``XREADGROUP`` (count 500) →
  ``XACK``; the floor any design on Redis Streams pays.
- **end to end**: ``emit`` into the outbox, ``per_tx`` events per Postgres transaction (the way a state change
  announces itself) from ``producers`` connections → the relay (NOTIFY-woken, ``FOR UPDATE SKIP LOCKED``,
  pipelined ``XADD``, the rows marked published) → a consumer group whose handler applies each event once
  (:func:`~cidadao.events.streams.apply_once`: one ``processed_events`` insert in its own transaction) →
  ``XACK``.

Reported: events/s (first event produced → last acknowledged), delivery lag (produced → handled; p50, p99,
max) and the end-to-end rate as a share of the raw one. A database of its own; keys under a prefix of
their own, deleted after.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from bench.scratch import scratch_database
from cidadao.events import Consumer, Event, apply_once, apply_once_many, emit, encode, make
from cidadao.events.outbox import run_relay
from cidadao.settings import Settings
from cidadao.storage.database import prepare_stores
from cidadao.storage.postgres import apply_migrations, connect, create_pool

__all__ = ["run_benchmark"]


def _event(i: int) -> Event:
    """An ``investigation.progress`` event, the most frequent kind (about 230 bytes on the stream)."""
    return make("investigation.progress", key=f"inv-{i % 997}", investigation_id=str(uuid.UUID(int=i)),
                progress=(i % 100) / 100)  # fmt: skip


def _summary(n: int, seconds: float, lags: list[float]) -> dict[str, Any]:
    lags = sorted(lags)
    return {
        "events": n, "seconds": round(seconds, 3), "events_per_s": round(n / seconds, 1),
        "lag_p50_ms": round(1000 * statistics.median(lags), 2),
        "lag_p99_ms": round(1000 * lags[min(len(lags) - 1, int(0.99 * len(lags)))], 2),
        "lag_max_ms": round(1000 * lags[-1], 2),
    }  # fmt: skip


async def _pace(i: int, started: float, rate: float | None) -> None:
    """Wait for the ``i``-th event's turn at ``rate`` events/s (no wait when unpaced)."""
    if rate:
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the producer's schedule, not a wait for a result


async def _raw(client: Any, stream: str, n: int, rate: float | None = None) -> dict[str, Any]:
    """Unpaced: pipelined XADDs of 500; paced: one XADD per event at ``rate``."""
    fields = encode(_event(0))
    await client.xgroup_create(stream, "raw", id="0", mkstream=True)
    lags: list[float] = []
    started = time.perf_counter()

    async def produce() -> None:
        step = 1 if rate else 500
        for start in range(0, n, step):
            await _pace(start, started, rate)
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(start, min(n, start + step)):
                    pipe.xadd(stream, {**fields, "t": repr(time.time())}, maxlen=200_000, approximate=True)
                await pipe.execute()

    async def consume() -> None:
        while len(lags) < n:
            reply = await client.xreadgroup("raw", "c", {stream: ">"}, count=500, block=1000)
            for _stream, entries in reply or []:
                ids = [entry_id for entry_id, _ in entries]
                await client.xack(stream, "raw", *ids)
                now = time.time()
                lags.extend(now - float(f[b"t"]) for _, f in entries)

    await asyncio.gather(produce(), consume())
    return _summary(n, time.perf_counter() - started, lags)


async def _end_to_end(
    settings: Settings, dsn: str, client: Any, prefix: str, n: int, per_tx: int, producers: int,
    rate: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Unpaced: ``producers`` connections, ``per_tx`` events per transaction; paced (``rate``): one
    connection, one event per transaction, at ``rate``."""
    if rate:
        per_tx, producers = 1, 1
    pool = await create_pool(dsn, settings, min_size=2, max_size=4)
    stop = asyncio.Event()
    lags: list[float] = []
    done = asyncio.Event()

    def applied(events: list[Event]) -> None:
        now = time.time()
        lags.extend(now - e.occurred_at.timestamp() for e in events)
        if len(lags) >= n:
            done.set()

    async def handle(event: Event) -> None:
        async with pool.acquire() as conn, conn.transaction():
            applied([event] if await apply_once(conn, "bench", event) else [])

    async def handle_batch(events: list[Event]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            applied(await apply_once_many(conn, "bench", events))

    consumer = Consumer(client, prefix + "investigation", "bench", "c", handle, batch_handler=handle_batch)
    await consumer.ensure_group()
    relayed = 0

    def count(k: int) -> None:
        nonlocal relayed
        relayed += k

    started = time.perf_counter()
    relay = asyncio.create_task(run_relay(dsn, client, stop, prefix=prefix, on_relayed=count))
    consuming = asyncio.create_task(consumer.run(stop, count=500, block_ms=200))

    async def produce(worker: int) -> None:
        conn = await connect(dsn)
        try:
            for start in range(worker * per_tx, n, producers * per_tx):
                await _pace(start, started, rate)
                async with conn.transaction():
                    for i in range(start, min(n, start + per_tx)):
                        await emit(conn, _event(i))
        finally:
            await conn.close()

    await asyncio.gather(*(produce(w) for w in range(producers)))
    produced = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), timeout=600)
    seconds = time.perf_counter() - started
    stop.set()
    await relay
    await consuming
    await pool.close()
    out = _summary(n, seconds, lags)
    out.update(produce_seconds=round(produced, 3), relayed=relayed, duplicates_applied=len(lags) - n,
               per_tx=per_tx, producers=producers)  # fmt: skip
    return out


async def _run(
    settings: Settings, dsn: str, redis_url: str, n: int, per_tx: int, producers: int, rate: float, paced_n: int
) -> dict[str, Any]:
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    client: Any = aioredis.from_url(redis_url)  # redis-py's stubs type stream replies loosely
    prefix = f"bench:{uuid.uuid4().hex[:8]}:events:"
    try:
        raw = await _raw(client, prefix + "raw", n)
        e2e = await _end_to_end(settings, dsn, client, prefix, n, per_tx, producers)
        raw_paced = await _raw(client, prefix + "raw-paced", paced_n, rate)
        e2e_paced = await _end_to_end(settings, dsn, client, prefix, paced_n, 1, 1, rate)
        info = await client.info("server")
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    return {
        "raw": raw, "end_to_end": e2e, "paced_rate": rate, "raw_paced": raw_paced, "end_to_end_paced": e2e_paced,
        "redis_version": info.get("redis_version"),
        "end_to_end_share_of_raw": round(e2e["events_per_s"] / raw["events_per_s"], 3),
        "entry_bytes": sum(len(k) + len(v) for k, v in encode(_event(0)).items()),
    }  # fmt: skip


def run_benchmark(
    settings: Settings, events: int, per_tx: int, producers: int, rate: float, paced_events: int, out: Path,
    echo: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    redis_url = asyncio.run(prepare_stores(settings, migrate=False)).endpoints.redis_url
    with scratch_database(settings) as dsn:
        result = asyncio.run(_run(settings, dsn, redis_url, events, per_tx, producers, rate, paced_events))
    e2e = result["end_to_end"]
    echo(f"events: {events} flat out, {paced_events} paced; {result['entry_bytes']} bytes each; "
         f"Redis {result['redis_version']}")  # fmt: skip
    echo(f"{'':26} {'events/s':>10} {'p50 lag':>10} {'p99 lag':>10} {'max lag':>10}")
    rows = [
        ("raw streams, flat out", result["raw"]), ("end to end, flat out", e2e),
        (f"raw streams at {rate:g}/s", result["raw_paced"]), (f"end to end at {rate:g}/s", result["end_to_end_paced"]),
    ]  # fmt: skip
    for name, r in rows:
        echo(f"{name:26} {r['events_per_s']:>10,.0f} {r['lag_p50_ms']:>8.1f}ms {r['lag_p99_ms']:>8.1f}ms "
             f"{r['lag_max_ms']:>8.1f}ms")  # fmt: skip
    echo(f"end to end flat out is {result['end_to_end_share_of_raw']:.1%} of raw ({per_tx} events per "
         f"transaction, {producers} producers; {e2e['duplicates_applied']} applied twice)")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    config = {"events": events, "per_tx": per_tx, "producers": producers, "rate": rate, "paced_events": paced_events}
    out.write_bytes(orjson.dumps({"benchmark": "events", "config": config, **result}, option=orjson.OPT_INDENT_2))
    echo(f"wrote {out}")
    return result
