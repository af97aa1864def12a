"""The ``Investigator`` agent: takes investigations from the durable queue and runs the red-flag engine.

A plain class (the pool wraps it as a Ray actor through :func:`actors.factory.actor_class`), so unit tests
drive it directly. One ``work_one`` call: claim the oldest queued investigation under a lease, renew the lease
while the sweep runs (recording progress, noticing cancellation), then complete it — fenced by the attempt
number, so if this agent was presumed dead and its work handed over, nothing it does afterwards lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import asyncpg

from actors._database import AgentDatabase
from actors._health import health_of
from actors.peer_data import PeerData, load_peer_data, peer_data_name
from cidadao.errors import EmptyScope
from cidadao.settings import Settings
from cidadao.storage import queue
from cidadao.storage.analysis import Scope, no_contracts, organ_counts
from pipelines.investigate import sweep_scope
from pipelines.strategies import Strategy

__all__ = ["Investigator"]


class Investigator:
    """Claims, runs and completes investigations; answers health checks with what it is doing."""

    kind = "investigator"

    def __init__(
        self, settings: Settings, name: str | None = None, *, lease_seconds: float | None = None,
        max_attempts: int | None = None, strategy: Strategy = "map_reduce",
    ) -> None:  # fmt: skip
        self.settings = settings
        self.strategy = strategy
        self.name = name or f"investigator-{uuid.uuid4().hex[:8]}"
        self.lease_seconds = settings.investigation_lease if lease_seconds is None else lease_seconds
        self.max_attempts = settings.investigation_max_attempts if max_attempts is None else max_attempts
        self.started_at = time.time()
        self.tasks_done = 0
        self.current: uuid.UUID | None = None
        self.progress = 0.0  # of the current investigation
        self._database = AgentDatabase(settings, read_only=False, max_size=2)  # the queue, on the primary
        self._reads = AgentDatabase(settings, read_only=True, max_size=1)  # the scope, from the replica if any
        self._peer_handle: Any = None
        self.peer_fallbacks = 0  # investigations that computed their reference data because the cache failed

    async def close(self) -> None:
        await self._database.close()
        await self._reads.close()

    async def health(self) -> dict[str, Any]:
        """Cheap, no I/O: answered even while an investigation runs (the actor serves it in its own
        concurrency group)."""
        return health_of(
            self.name, self.kind, self.started_at, self.tasks_done, busy=self.current is not None,
            investigation=str(self.current) if self.current else None, progress=self.progress,
            peer_fallbacks=self.peer_fallbacks,
        )  # fmt: skip

    async def work_one(self) -> dict[str, Any] | None:
        """Run the oldest queued investigation to its end; None when the queue is empty."""
        pool = await self._database.pool()
        async with pool.acquire() as conn:
            await queue.requeue_expired(conn)
            claim = await queue.claim(conn, self.name, self.lease_seconds)
        if claim is None:
            return None
        self.current, self.progress = claim.id, 0.0
        try:
            status = await self._run(pool, claim)
        finally:
            self.current = None
            self.tasks_done += 1
        return {"id": str(claim.id), "attempt": claim.attempt, "status": status, "agent": self.name}

    async def _run(self, pool: asyncpg.Pool, claim: queue.Claim) -> str | None:
        cancelled = asyncio.Event()
        renewer = asyncio.create_task(self._renew(pool, claim, cancelled))
        try:
            scope = Scope(claim.scope.get("orgao"), claim.scope.get("year"))
            async with (await self._reads.pool()).acquire() as conn:  # the read replica when configured
                counts = await organ_counts(conn, scope)
                if not counts:
                    raise await no_contracts(conn, scope)
                peer = await self._peer_data(conn, scope.year)
                result, summary = await sweep_scope(
                    self.settings, conn, self._reads.reader_dsn, scope, counts, self.strategy,
                    reference=(peer.side, peer.thresholds), on_progress=self._record_progress,
                )  # fmt: skip
            async with pool.acquire() as conn:
                if cancelled.is_set():
                    return await queue.fail(conn, claim, "cancelled on request", max_attempts=self.max_attempts)
                return "completed" if await queue.complete(conn, claim, result, summary) else None
        except Exception as exc:  # the attempt failed: recorded, retried by the queue while attempts remain
            attempts = claim.attempt if isinstance(exc, EmptyScope) else self.max_attempts  # retrying cannot help
            async with pool.acquire() as conn:
                return await queue.fail(conn, claim, f"{type(exc).__name__}: {exc}", max_attempts=attempts)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    def _record_progress(self, share: float) -> None:
        """Called from the sweep's thread; the lease renewal writes it to Postgres (below 1 until stored)."""
        self.progress = min(share, 0.99)

    async def _peer_data(self, conn: asyncpg.Connection, year: int | None) -> PeerData:
        """The shared reference data from this database's ``cidadao-peer-data-…`` actor when one runs on Ray;
        else (no Ray, no such actor, or it failed) computed here from ``conn``."""
        handle = self._peer_cache()
        if handle is not None:
            try:
                (ref,) = await handle.get.remote(year)
                return await ref  # type: ignore[no-any-return]
            except Exception:  # the cache died or restarts: this investigation computes its own
                self._peer_handle = None
                self.peer_fallbacks += 1
        return await load_peer_data(conn, year)

    def _peer_cache(self) -> Any:
        if self._peer_handle is None:
            import ray

            if not ray.is_initialized():
                return None
            try:
                self._peer_handle = ray.get_actor(peer_data_name(self.settings), namespace="cidadao")
            except ValueError:  # no such actor
                return None
        return self._peer_handle

    async def _renew(self, pool: asyncpg.Pool, claim: queue.Claim, cancelled: asyncio.Event) -> None:
        reported = 0.0
        while True:
            await asyncio.sleep(self.lease_seconds / 3)  # a lease renewal period, not a wait for a condition
            progress = self.progress
            async with pool.acquire() as conn:  # progress (and its event) only when it moved
                moved = progress if progress != reported else None
                lease = await queue.extend_lease(conn, claim, self.lease_seconds, progress=moved)
            reported = progress
            if lease.cancel_requested or not lease.held:
                cancelled.set()
                return
