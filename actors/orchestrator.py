"""The ``Orchestrator`` agent: plans an investigation, fans it out, reports its progress.

- :meth:`Orchestrator.plan`: scope → organs and their sizes → partitions. ``split="organ"`` makes one
  partition per organ; ``"none"`` one partition for the whole scope (the investigator that takes it still
  spreads a large scope over Ray tasks); ``"auto"`` splits when the scope spans several organs.
- :meth:`Orchestrator.submit`: one partition is queued as a plain investigation; several become a parent
  investigation and one queued child per partition, in one transaction, so the investigator pool works them
  in parallel and nothing is half-submitted. The same idempotency key returns the same investigation.
- :meth:`Orchestrator.status`: state, progress (children ended / partitions) and the children's states,
  read from Postgres — the queue, not this agent, holds the truth, so any orchestrator can answer.
- :meth:`Orchestrator.cancel`: the investigation and, when partitioned, its children.

Splitting by organ keeps the results identical to one sweep of the whole scope: price peers span organs (the
histogram of every organ's contracts in the scope's years) and the agency rules look at one organ at a time.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from actors._database import AgentDatabase
from actors._health import health_of
from cidadao import queries
from cidadao.commands import (
    CancelInvestigation,
    Split,
    StartInvestigation,
    cancel_investigation,
    parse,
    plan_investigation,
    start_investigation,
)
from cidadao.settings import Settings

__all__ = ["Orchestrator", "Split"]


class Orchestrator:
    kind = "orchestrator"

    def __init__(self, settings: Settings, name: str | None = None, *, max_partitions: int = 5000) -> None:
        self.settings = settings
        self.name = name or f"orchestrator-{uuid.uuid4().hex[:8]}"
        self.max_partitions = max_partitions
        self.started_at = time.time()
        self.tasks_done = 0
        self._database = AgentDatabase(settings, read_only=False, max_size=2)  # the queue, on the primary
        self._reads = AgentDatabase(settings, read_only=True, max_size=1)  # organ sizes, from the replica

    async def close(self) -> None:
        await self._database.close()
        await self._reads.close()

    async def health(self) -> dict[str, Any]:
        return health_of(self.name, self.kind, self.started_at, self.tasks_done)

    async def plan(self, scope: dict[str, Any], split: Split = "auto") -> dict[str, Any]:
        """The partitions of ``scope``; :class:`~cidadao.errors.EmptyScope` when it holds no contracts."""
        cmd = StartInvestigation.of(scope, split=split)
        async with (await self._reads.pool()).acquire() as conn:
            return await plan_investigation(conn, cmd, max_partitions=self.max_partitions)

    async def submit(
        self, scope: dict[str, Any], *, split: Split = "auto", user_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The ``StartInvestigation`` command: plan and queue ``scope``; its id, whether it is new, its status and
        how it was split. :class:`~cidadao.errors.CommandError` (naming the field) before anything is queued."""
        cmd = StartInvestigation.of(scope, split=split, user_id=user_id, idempotency_key=idempotency_key)
        async with (await self._reads.pool()).acquire() as reads, (await self._database.pool()).acquire() as conn:
            submitted = await start_investigation(conn, cmd, reads=reads, max_partitions=self.max_partitions)
        self.tasks_done += 1
        return submitted

    async def status(self, investigation: str | uuid.UUID) -> dict[str, Any] | None:
        """State and progress of an investigation (None if unknown), JSON-ready."""
        async with (await self._database.pool()).acquire() as conn:
            found = await queries.investigation(conn, investigation)
        if found is None:
            return None
        return {
            k: (str(v) if isinstance(v, uuid.UUID) else v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in found.items()
        }

    async def cancel(self, investigation: str | uuid.UUID) -> str | None:
        """The ``CancelInvestigation`` command: ``cancelled``, ``cancel_requested`` (running work stops at its next
        lease renewal), the status it already ended with, or None if unknown."""
        cmd = parse(CancelInvestigation, {"investigation_id": investigation})
        async with (await self._database.pool()).acquire() as conn:
            return await cancel_investigation(conn, cmd)
