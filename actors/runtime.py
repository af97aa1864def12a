"""``AgentRuntime``: the agents at work — the pool, a work loop per investigator, resume after a restart.

At start it puts back in the queue every running investigation whose lease ran out (the runtime that ran it
died), pre-warms the pool and starts one work loop per investigator the pool may hold. A loop borrows an
investigator, has it run the oldest queued investigation, gives it back; with the queue empty it waits for a
``NOTIFY`` (sent by every submit, retry and requeue) or, at the latest, one ``poll_s`` later (a lease may have
run out). Investigations come in through an orchestrator agent (plan, fan-out by organ); while the runtime runs
it publishes the pool's stats to Redis for ``cidadao pool status`` and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterable
from typing import Any, Final

import asyncpg
import redis.asyncio as aioredis

from actors.analyst import Analyst
from actors.investigator import Investigator
from actors.orchestrator import Orchestrator, Split
from actors.pool import AgentBackend, AgentPool, PoolConfig, PoolTimeout, RayBackend
from actors.reporter import Reporter
from cidadao.errors import CidadaoError
from cidadao.settings import Settings
from cidadao.storage import queue, runtime_status
from cidadao.storage.database import prepare_stores
from cidadao.storage.investigations import load_result
from cidadao.storage.postgres import connect

__all__ = ["AGENTS", "AgentRuntime", "investigate_once", "ray_runtime"]

FINAL: Final = frozenset({"completed", "failed", "cancelled"})
AGENTS: Final[dict[str, type]] = {
    "orchestrator": Orchestrator, "investigator": Investigator, "analyst": Analyst, "reporter": Reporter,
}  # fmt: skip


class AgentRuntime:
    def __init__(
        self, settings: Settings, backend: AgentBackend, kinds: dict[str, PoolConfig], *, poll_s: float = 5.0,
        publish: bool = False, info: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        if "investigator" not in kinds:
            raise ValueError("the runtime needs investigators")
        self.settings, self.poll_s, self.info = settings, poll_s, dict(info or {})
        self.pool = AgentPool(backend, kinds)
        self._backend = backend
        self._publish = publish
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self._redis: aioredis.Redis | None = None
        self._status_key = runtime_status.runtime_key(os.getpid())
        self._dsn = ""
        self.started_at = 0.0
        self.resumed: list[uuid.UUID] = []

    async def start(self) -> None:
        endpoints = (await prepare_stores(self.settings)).endpoints
        self._dsn = endpoints.database_url
        self._listener = await connect(self._dsn)
        await self._listener.add_listener(queue.CHANNEL, self._notified)
        self.resumed = await queue.requeue_expired(self._listener)
        await self.pool.start()
        self.started_at = time.time()
        slots = self.pool.kinds["investigator"].max
        self._loops = [asyncio.create_task(self._work(i), name=f"investigator-loop-{i}") for i in range(slots)]
        if self._publish:
            self._redis = aioredis.from_url(endpoints.redis_url)
            self._loops.append(asyncio.create_task(self._publish_status(), name="runtime-status"))
        self._wake.set()

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop taking work, stop the agents (an investigation cut short is requeued when its lease runs out,
        at the latest when a runtime starts again), release the connections."""
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()
        await self.pool.close()
        if self._redis is not None:
            with contextlib.suppress(Exception):  # the status expires on its own
                await runtime_status.remove(self._redis, self._status_key)
            await self._redis.aclose()
            self._redis = None
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    async def _work(self, slot: int) -> None:
        while True:
            try:
                async with self.pool.acquire("investigator") as agent:
                    done = await self._backend.call(agent, "work_one")
            except PoolTimeout:
                continue
            except Exception:  # a dead agent: the pool replaces it, its claim's lease runs out and is retried
                done = {}
            if done:
                self._done.set()
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    # --- reading -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What this runtime runs: the pool's stats, its process and what it resumed at start."""
        return {
            "key": self._status_key, "pid": os.getpid(), "started_at": self.started_at, "updated_at": time.time(),
            "resumed": len(self.resumed), "pool": self.pool.stats(), **self.info,
        }  # fmt: skip

    async def _publish_status(self) -> None:
        assert self._redis is not None
        period = min(cfg.health_period for cfg in self.pool.kinds.values())
        while True:
            with contextlib.suppress(Exception):  # Redis away for a moment: the next period tries again
                await runtime_status.publish(self._redis, self._status_key, self.status(), ttl_s=3 * period)
            await asyncio.sleep(period)  # the publishing period

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
        conn = await connect(self._dsn)
        try:
            s = await queue.submit(conn, scope, user_id=user_id, idempotency_key=idempotency_key)
        finally:
            await conn.close()
        return {"id": str(s.id), "created": s.created, "status": s.status, "split": "none", "partitions": 1}

    async def wait(self, inv: uuid.UUID | str, timeout_s: float) -> dict[str, Any]:
        """The investigation once it ended (completed, failed or cancelled), read back from Postgres."""
        inv = uuid.UUID(str(inv))
        conn = await connect(self._dsn)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    self._done.clear()
                    status = await conn.fetchval("SELECT status FROM investigations WHERE id = $1", inv)
                    if status is None:
                        raise CidadaoError(f"no investigation {inv}")
                    if status in FINAL:
                        result = await load_result(conn, inv)
                        assert result is not None
                        return result
                    with contextlib.suppress(TimeoutError):  # a loop finishing wakes us; else re-read
                        await asyncio.wait_for(self._done.wait(), self.poll_s)
        finally:
            await conn.close()


def ray_runtime(settings: Settings, *, kinds: Iterable[str] | None = None, **options: Any) -> AgentRuntime:
    """A runtime whose agents are named Ray actors, ``AGENT_POOL_SIZE`` of each kind pre-warmed."""
    config = PoolConfig.from_settings(settings)
    chosen = list(kinds) if kinds is not None else list(AGENTS)
    backend = RayBackend({k: AGENTS[k] for k in chosen}, settings)
    return AgentRuntime(settings, backend, dict.fromkeys(chosen, config), **options)


async def investigate_once(
    settings: Settings, scope: dict[str, Any], *, strategy: Any = "map_reduce", user_id: str | None = None,
    idempotency_key: str | None = None, timeout_s: float = 24 * 3600,
) -> dict[str, Any]:  # fmt: skip
    """``cidadao investigate``: plan and queue through an orchestrator, run the queue with one local
    investigator (it spreads a large scope over Ray tasks itself).

    Investigations queued before it (say, by a runtime that was stopped) run first, in order. Returns the
    ``--json`` object; raises :class:`~cidadao.errors.EmptyScope` before queueing anything when the scope
    holds no contracts, and :class:`~cidadao.errors.CidadaoError` when the investigation failed.
    """
    from actors.pool import LocalBackend

    backend = LocalBackend({
        "investigator": lambda name: Investigator(settings, name, strategy=strategy),
        "orchestrator": lambda name: Orchestrator(settings, name),
    })  # fmt: skip
    one = PoolConfig(min=1, max=1)
    runtime = AgentRuntime(settings, backend, {"investigator": one, "orchestrator": one})
    await runtime.start()
    try:
        submitted = await runtime.submit(scope, user_id=user_id, idempotency_key=idempotency_key)
        result = await runtime.wait(submitted["id"], timeout_s)
    finally:
        await runtime.stop()
    status, error = result.pop("status"), result.pop("error")
    if status != "completed":
        raise CidadaoError(f"investigation {submitted['id']} {status}: {error}")
    return result
