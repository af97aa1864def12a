"""``AgentRuntime``: the agents at work — the pool, a work loop per investigator, resume after a restart.

At start it puts back in the queue every running investigation whose lease ran out (the runtime that ran it
died), pre-warms the pool and starts one work loop per investigator the pool may hold. A loop borrows an
investigator, has it run the oldest queued investigation, gives it back; with the queue empty it waits for a
``NOTIFY`` (sent by :meth:`submit`) or, at the latest, one ``poll_s`` later (a lease may have run out).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, Final

import asyncpg

from actors.pool import AgentBackend, AgentPool, PoolConfig, PoolTimeout
from cidadao.settings import Settings
from cidadao.storage import queue
from cidadao.storage.database import prepare_stores
from cidadao.storage.investigations import load_result
from cidadao.storage.postgres import connect

__all__ = ["CHANNEL", "AgentRuntime"]

CHANNEL: Final = "cidadao_investigations"
FINAL: Final = frozenset({"completed", "failed", "cancelled"})


class AgentRuntime:
    def __init__(
        self, settings: Settings, backend: AgentBackend, kinds: dict[str, PoolConfig], *, poll_s: float = 5.0
    ) -> None:
        if "investigator" not in kinds:
            raise ValueError("the runtime needs investigators")
        self.settings, self.poll_s = settings, poll_s
        self.pool = AgentPool(backend, kinds)
        self._backend = backend
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self._dsn = ""
        self.resumed: list[uuid.UUID] = []

    async def start(self) -> None:
        self._dsn = (await prepare_stores(self.settings)).endpoints.database_url
        self._listener = await connect(self._dsn)
        await self._listener.add_listener(CHANNEL, self._notified)
        self.resumed = await queue.requeue_expired(self._listener)
        await self.pool.start()
        slots = self.pool.kinds["investigator"].max
        self._loops = [asyncio.create_task(self._work(i), name=f"investigator-loop-{i}") for i in range(slots)]
        self._wake.set()

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()
        await self.pool.close()
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

    async def submit(
        self, scope: dict[str, Any], *, user_id: str | None = None, idempotency_key: str | None = None
    ) -> queue.Submitted:
        conn = await connect(self._dsn)
        try:
            submitted = await queue.submit(conn, scope, user_id=user_id, idempotency_key=idempotency_key)
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(submitted.id))
        finally:
            await conn.close()
        return submitted

    async def wait(self, inv: uuid.UUID, timeout_s: float) -> dict[str, Any]:
        """The investigation once it ended (completed, failed or cancelled), read back from Postgres."""
        conn = await connect(self._dsn)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    self._done.clear()
                    status = await conn.fetchval("SELECT status FROM investigations WHERE id = $1", inv)
                    if status in FINAL:
                        result = await load_result(conn, inv)
                        assert result is not None
                        return result
                    with contextlib.suppress(TimeoutError):  # a loop finishing wakes us; else re-read
                        await asyncio.wait_for(self._done.wait(), self.poll_s)
        finally:
            await conn.close()


async def investigate_once(
    settings: Settings, scope: dict[str, Any], *, strategy: Any = "map_reduce", user_id: str | None = None,
    idempotency_key: str | None = None, timeout_s: float = 24 * 3600,
) -> dict[str, Any]:  # fmt: skip
    """``cidadao investigate``: queue the investigation and run the queue with a pool of one local investigator.

    Investigations queued before it (say, by a runtime that was stopped) run first, in order. Returns the
    ``--json`` object; raises :class:`~cidadao.errors.EmptyScope` before queueing anything when the scope
    holds no contracts, and :class:`~cidadao.errors.CidadaoError` when the investigation failed.
    """
    from actors.investigator import Investigator
    from actors.pool import LocalBackend
    from cidadao.errors import CidadaoError
    from cidadao.storage.analysis import Scope, organ_counts
    from pipelines.investigate import no_contracts

    s = Scope(scope.get("orgao"), scope.get("year"))
    conn = await connect((await prepare_stores(settings)).endpoints.database_url)
    try:
        if not await organ_counts(conn, s):
            raise no_contracts(s)
    finally:
        await conn.close()
    backend = LocalBackend({"investigator": lambda name: Investigator(settings, name, strategy=strategy)})
    runtime = AgentRuntime(settings, backend, {"investigator": PoolConfig(min=1, max=1)})
    await runtime.start()
    try:
        submitted = await runtime.submit(s.as_dict(), user_id=user_id, idempotency_key=idempotency_key)
        result = await runtime.wait(submitted.id, timeout_s)
    finally:
        await runtime.stop()
    status, error = result.pop("status"), result.pop("error")
    if status != "completed":
        raise CidadaoError(f"investigation {submitted.id} {status}: {error}")
    return result
