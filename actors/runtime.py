"""``AgentRuntime``: the agents at work — the pool, the investigation dispatcher, resume after a restart.

At start it puts back in the queue every running investigation whose lease ran out (the runtime that ran it
died) and pre-warms the pool. A dispatcher then counts the queued investigations and starts that many workers
(up to the pool's max): each borrows an investigator, has it run the oldest queued investigation, gives it back.
It looks again when a worker ends, on a ``NOTIFY`` (sent by every submit, retry and requeue) or, at the latest,
one ``poll_s`` later (a lease may have run out). Investigations come in through an orchestrator agent (plan,
fan-out by organ); while the runtime runs it publishes the pool's stats to Redis for ``cidadao pool status``
and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Iterable
from typing import Any, Final

import asyncpg
import redis.asyncio as aioredis

from actors.analyst import Analyst
from actors.cache import invalidation_consumer, ray_caches
from actors.investigator import Investigator
from actors.orchestrator import Orchestrator
from actors.peer_data import PeerDataCache, peer_data_name
from actors.pool import AgentBackend, AgentPool, PoolConfig, PoolTimeout, RayBackend
from actors.reporter import Reporter
from cidadao.cache.redis_tier import cache_client
from cidadao.cache.service import Caches
from cidadao.commands import Split, StartInvestigation, start_investigation
from cidadao.errors import CidadaoError
from cidadao.events import Event
from cidadao.events.outbox import run_relay
from cidadao.events.projections import flags_cache_prefixes, flags_consumer, metrics_consumers
from cidadao.events.streams import Consumer
from cidadao.observability import init_known_labels
from cidadao.settings import Settings
from cidadao.storage import queue, runtime_status
from cidadao.storage.database import prepare_stores
from cidadao.storage.investigations import load_result
from cidadao.storage.postgres import connect, create_pool
from cidadao.storage.runtime_status import observe_stores
from cidadao.web.ops import OpsServer, ops_app

__all__ = ["AGENTS", "AgentRuntime", "ray_runtime"]

log = logging.getLogger(__name__)
FINAL: Final = frozenset({"completed", "failed", "cancelled"})
AGENTS: Final[dict[str, type]] = {
    "orchestrator": Orchestrator, "investigator": Investigator, "analyst": Analyst, "reporter": Reporter,
}  # fmt: skip


class AgentRuntime:
    def __init__(
        self, settings: Settings, backend: AgentBackend, kinds: dict[str, PoolConfig], *, poll_s: float = 5.0,
        publish: bool = False, relay_events: bool = False, metrics_port: int | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """``publish``: the pool's stats to Redis for ``cidadao pool status`` and the gauges of the queue and the
        streams, every health period; ``relay_events``: the outbox's events to Redis Streams (one runtime per
        database is enough; more are safe) and the consumers that keep the projection and the domain's
        counters; ``metrics_port``: serve ``/metrics``, ``/healthz`` and ``/status`` there (0: any free port)."""
        if "investigator" not in kinds:
            raise ValueError("the runtime needs investigators")
        self.settings, self.poll_s, self.info = settings, poll_s, dict(info or {})
        self.pool = AgentPool(backend, kinds)
        self._backend = backend
        self._publish = publish
        self._relay_events = relay_events
        self._metrics_port = metrics_port
        self.ops: OpsServer | None = None
        self._background: list[asyncio.Task[None]] = []  # they end at their next look at _stopping
        self._consumers: list[Consumer] = []
        self._pg: asyncpg.Pool | None = None
        self.caches: Caches | None = None
        self._cache_client: Any = None
        self.relayed = 0
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._starting = 0  # workers waiting for an investigator (they have not claimed yet)
        self.queued = 0  # investigations waiting, as last counted
        self._listener: asyncpg.Connection | None = None
        self._redis: aioredis.Redis | None = None
        self._status_key = runtime_status.runtime_key(os.getpid())
        self._dsn = ""
        self.started_at = 0.0
        self.resumed: list[uuid.UUID] = []

    async def start(self, *, agents_first: int | None = None) -> None:
        """Open the stores, resume what a stopped runtime left, pre-warm the pool (``agents_first``: that many of
        each kind now, the rest with :meth:`fill_pool`), start the dispatcher, the relay and the consumers."""
        endpoints = (await prepare_stores(self.settings)).endpoints
        self._dsn = endpoints.database_url
        if self._metrics_port is not None:  # first: a taken port stops the start before agents are made
            init_known_labels()
            self.ops = OpsServer(ops_app(self.status), self.settings.host, self._metrics_port)
            await self.ops.start()
        self.resumed = await queue.requeue_expired(await self._listening())
        await self.pool.start(first=agents_first)
        self.started_at = time.time()
        self._loops = [asyncio.create_task(self._dispatch(), name="investigation-dispatcher")]
        if self._publish or self._relay_events:
            self._redis = aioredis.from_url(endpoints.redis_url)
            self._pg = await create_pool(self._dsn, self.settings, min_size=1, max_size=2)
        if self._relay_events:
            assert self._redis is not None and self._pg is not None
            me = f"runtime-{os.getpid()}"
            self._cache_client = cache_client(endpoints.redis_url)
            in_ray = isinstance(self._backend, RayBackend)
            caches = ray_caches(self.settings, self._cache_client) if in_ray else Caches.local(
                self.settings, self._cache_client
            )  # fmt: skip
            self.caches = caches

            async def forget(event: Event) -> None:  # the projection changed: its cached reads go, here and now
                await caches.invalidate(prefixes=flags_cache_prefixes(event))

            self._consumers = [
                flags_consumer(self._redis, self._pg, me, applied=forget),
                *metrics_consumers(self._redis, me),
            ]
            if in_ray:
                self._consumers.append(invalidation_consumer(self.settings, self._redis, caches, me))
            for c in self._consumers:  # groups first: a new group reading from "$" sees what is relayed next
                with contextlib.suppress(Exception):  # Redis away: the consumer's loop makes it later
                    await c.ensure_group()
            self._background.append(asyncio.create_task(self._relay_outbox(), name="event-relay"))
            for c in self._consumers:
                self._background.append(asyncio.create_task(self._consume(c), name=f"consumer-{c.group}-{c.stream}"))
        if self._publish:
            self._background.append(asyncio.create_task(self._publish_status(), name="runtime-status"))
        self._wake.set()

    async def fill_pool(self) -> int:
        """The agents ``start(agents_first=...)`` left for later, started; how many."""
        return await self.pool.fill()

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop taking work, stop the agents (an investigation cut short is requeued when its lease runs out,
        at the latest when a runtime starts again), release the connections."""
        self._stopping.set()
        if self.ops is not None:
            await self.ops.stop()
        for background in self._background:  # they end at their next look at _stopping: never cancelled
            await background  # inside redis-py, which swallows cancellations
        self._background.clear()
        if self._pg is not None:
            await self._pg.close()
            self._pg = None
        if self.caches is not None:
            await self.caches.close()
            await self._cache_client.aclose()
            self.caches = self._cache_client = None
        tasks = [*self._loops, *self._workers]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()
        await self.pool.close()
        if self._redis is not None:
            with contextlib.suppress(Exception):  # the status expires on its own
                await asyncio.wait_for(runtime_status.remove(self._redis, self._status_key), 2.0)
            await self._redis.aclose()
            self._redis = None
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            try:
                await listener.close(timeout=2)
            except Exception:  # a connection that cannot close cleanly is cut
                listener.terminate()

    async def _dispatch(self) -> None:
        """Borrow investigators for queued work only: as many as investigations wait (up to the pool's max), so
        the pool's waiters are real queue pressure and an idle pool scales down."""
        slots = self.pool.kinds["investigator"].max
        while True:
            self._wake.clear()
            try:
                async with asyncio.timeout(10):  # a connection whose server went away may never answer
                    listener = await self._listening()
                    await queue.requeue_expired(listener)  # leases of dead agents ran out: their work waits again
                    self.queued = await listener.fetchval("SELECT count(*) FROM investigations WHERE status = 'queued'")
            except Exception as exc:  # the loop must outlive anything a broken connection raises (asyncpg
                # raises InternalClientError, neither a PostgresError nor an InterfaceError, on some)
                log.warning("investigation dispatcher: %s: %s; retrying in %g s", type(exc).__name__, exc, self.poll_s)
                self._cut_listener()
                self.queued = 0
            for _ in range(min(self.queued - self._starting, slots - len(self._workers))):
                self._starting += 1
                worker = asyncio.create_task(self._work_one())
                self._workers.add(worker)
                worker.add_done_callback(self._worker_done)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def _listening(self) -> asyncpg.Connection:
        """The connection that LISTENs for new work, opened again if it was lost."""
        if self._listener is None or self._listener.is_closed():
            self._listener = await connect(self._dsn)
            await self._listener.add_listener(queue.CHANNEL, self._notified)
        return self._listener

    def _cut_listener(self) -> None:
        """Forget a listening connection that failed, terminating it (closing could wait on a dead server)."""
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            listener.terminate()

    def _worker_done(self, worker: asyncio.Task[None]) -> None:
        self._workers.discard(worker)
        self._wake.set()  # look at the queue again

    async def _work_one(self) -> None:
        started = False
        try:
            async with self.pool.acquire("investigator") as agent:
                self._starting -= 1
                started = True
                done = await self._backend.call(agent, "work_one")
            if done:
                self._done.set()
        except PoolTimeout:
            pass  # the dispatcher tries again with the queue as it is then
        except Exception as exc:  # a dead agent: the pool replaces it, its claim's lease runs out, it is retried
            log.warning("an investigator failed mid-call (%s: %s); its work is retried", type(exc).__name__, exc)
        finally:
            if not started:
                self._starting -= 1

    async def _relay_outbox(self) -> None:
        """Move the outbox's events to Redis Streams as they are committed."""
        assert self._redis is not None

        def relayed(n: int) -> None:
            self.relayed += n

        await run_relay(self._dsn, self._redis, self._stopping, on_relayed=relayed)

    async def _consume(self, consumer: Consumer) -> None:
        """Keep ``consumer`` reading (the projection, the domain's counters) until the runtime stops."""
        grouped = False
        while not self._stopping.is_set():
            try:
                if not grouped:
                    await consumer.ensure_group()
                    grouped = True
                await consumer.run_once(block_ms=1000)
            except Exception as exc:  # a supervisor loop: log, retry
                grouped = False  # a restarted Redis may have lost the group
                log.warning("%s on %s: %s: %s; retrying", consumer.group, consumer.stream, type(exc).__name__, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)

    # --- reading -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What this runtime runs: the pool's stats, its process and what it resumed at start."""
        return {
            "key": self._status_key, "pid": os.getpid(), "started_at": self.started_at, "updated_at": time.time(),
            "resumed": len(self.resumed), "queued": self.queued, "events_relayed": self.relayed,
            "metrics_url": f"{self.ops.url}/metrics" if self.ops else None,
            "pool": self.pool.stats(), **self.info,
        }  # fmt: skip

    async def _publish_status(self) -> None:
        assert self._redis is not None and self._pg is not None
        period = min(cfg.health_period for cfg in self.pool.kinds.values())
        while not self._stopping.is_set():
            with contextlib.suppress(Exception):  # a store away for a moment: the next period tries again
                await asyncio.wait_for(observe_stores(self._pg, self._consumers), period)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    runtime_status.publish(self._redis, self._status_key, self.status(), ttl_s=3 * period), period
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), period)

    # --- investigations ----------------------------------------------------------------------------

    async def submit(
        self, scope: dict[str, Any], *, split: Split = "none", user_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Plan and queue through an orchestrator agent (``id``, ``created``, ``status``, ``partitions``);
        without orchestrators, queue the scope as one investigation."""
        if "orchestrator" in self.pool.kinds:
            async with self.pool.acquire("orchestrator") as agent:
                return await self._backend.call(  # type: ignore[no-any-return]
                    agent, "submit", scope, split=split, user_id=user_id, idempotency_key=idempotency_key
                )
        cmd = StartInvestigation.of(scope, split="none", user_id=user_id, idempotency_key=idempotency_key)
        conn = await connect(self._dsn)
        try:
            return await start_investigation(conn, cmd)
        finally:
            await conn.close()

    async def wait(self, inv: uuid.UUID | str, timeout_s: float) -> dict[str, Any]:
        """The investigation once it ended (completed, failed or cancelled), read back from Postgres."""
        await self.wait_many([inv], timeout_s)
        conn = await connect(self._dsn)
        try:
            result = await load_result(conn, uuid.UUID(str(inv)))
        finally:
            await conn.close()
        assert result is not None
        return result

    async def wait_many(self, ids: Iterable[uuid.UUID | str], timeout_s: float) -> dict[str, str]:
        """Statuses of many investigations once every one has ended, watched over one connection."""
        wanted = [uuid.UUID(str(i)) for i in ids]
        conn = await connect(self._dsn)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    self._done.clear()
                    rows = await conn.fetch("SELECT id, status FROM investigations WHERE id = ANY($1::uuid[])", wanted)
                    if len(rows) < len(wanted):
                        missing = sorted(set(map(str, wanted)) - {str(r["id"]) for r in rows})
                        raise CidadaoError(f"no investigation {missing[0]}")
                    if all(r["status"] in FINAL for r in rows):
                        return {str(r["id"]): r["status"] for r in rows}
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._done.wait(), self.poll_s)
        finally:
            await conn.close()


def ray_runtime(settings: Settings, *, kinds: Iterable[str] | None = None, **options: Any) -> AgentRuntime:
    """A runtime whose agents are named Ray actors, ``AGENT_POOL_SIZE`` of each kind pre-warmed."""
    config = PoolConfig.from_settings(settings)
    chosen = list(kinds) if kinds is not None else list(AGENTS)
    backend = RayBackend({k: AGENTS[k] for k in chosen}, settings, singletons={peer_data_name(settings): PeerDataCache})
    return AgentRuntime(settings, backend, dict.fromkeys(chosen, config), **options)
