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
from typing import Any, Literal

from actors._database import AgentDatabase
from actors._health import health_of
from cidadao.settings import Settings
from cidadao.storage import queue
from cidadao.storage.analysis import Scope, organ_counts
from pipelines.investigate import no_contracts

__all__ = ["Orchestrator", "Split"]

Split = Literal["auto", "organ", "none"]
SPLITS: tuple[Split, ...] = ("auto", "organ", "none")


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
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        s = Scope(scope.get("orgao"), scope.get("year"))
        async with (await self._reads.pool()).acquire() as conn:
            counts = await organ_counts(conn, s)
        if not counts:
            raise no_contracts(s)
        by_organ = split == "organ" or (split == "auto" and 1 < len(counts) <= self.max_partitions)
        if by_organ and len(counts) > self.max_partitions:
            raise ValueError(f"{len(counts)} organs is more than {self.max_partitions} partitions; use split='none'")
        if by_organ and len(counts) > 1:
            partitions = [{"scope": Scope(organ, s.year).as_dict(), "contracts": n} for organ, n in counts]
        else:
            partitions = [{"scope": s.as_dict(), "contracts": sum(n for _, n in counts)}]
        return {
            "scope": s.as_dict(), "split": "organ" if len(partitions) > 1 else "none", "organs": len(counts),
            "contracts": sum(n for _, n in counts), "partitions": partitions,
        }  # fmt: skip

    async def submit(
        self, scope: dict[str, Any], *, split: Split = "auto", user_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Plan and queue ``scope``: its id, whether it is new, its status and how it was split."""
        plan = await self.plan(scope, split)
        parts = plan["partitions"]
        async with (await self._database.pool()).acquire() as conn:
            if len(parts) == 1:
                submitted = await queue.submit(conn, plan["scope"], user_id=user_id, idempotency_key=idempotency_key)
            else:
                submitted = await queue.submit_partitioned(
                    conn, plan["scope"], [p["scope"] for p in parts], user_id=user_id, idempotency_key=idempotency_key
                )
        self.tasks_done += 1
        return {
            "id": str(submitted.id), "created": submitted.created, "status": submitted.status,
            "split": plan["split"], "partitions": len(parts), "contracts": plan["contracts"],
        }  # fmt: skip

    async def status(self, investigation: str | uuid.UUID) -> dict[str, Any] | None:
        """State and progress of an investigation (None if unknown), JSON-ready."""
        async with (await self._database.pool()).acquire() as conn:
            found = await queue.get_investigation(conn, uuid.UUID(str(investigation)))
        if found is None:
            return None
        return {
            k: (str(v) if isinstance(v, uuid.UUID) else v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in found.items()
        }

    async def cancel(self, investigation: str | uuid.UUID) -> str | None:
        """``cancelled``, ``cancel_requested`` (running work stops at its next lease renewal), the status it
        already ended with, or None if unknown."""
        async with (await self._database.pool()).acquire() as conn:
            return await queue.cancel(conn, uuid.UUID(str(investigation)))
