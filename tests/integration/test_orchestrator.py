"""The Orchestrator on real Postgres: plans partitions, fans an investigation out by organ through the queue,
settles the parent as children end (progress, result, failure, cancellation) — with the same flags as one
sweep of the whole scope."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from actors import Investigator, Orchestrator
from actors.pool import LocalBackend, PoolConfig
from actors.runtime import AgentRuntime
from cidadao.errors import CommandError, EmptyScope
from cidadao.settings import Settings
from cidadao.storage import queue
from cidadao.storage.investigations import load_result
from tests.integration.test_investigation_sweep import _store

pytestmark = pytest.mark.integration

ALL = {"all": True, "year": None}


def _runtime(settings: Settings, investigators: int = 2) -> AgentRuntime:
    backend = LocalBackend({
        "investigator": lambda name: Investigator(settings, name),
        "orchestrator": lambda name: Orchestrator(settings, name),
    })  # fmt: skip
    kinds = {"investigator": PoolConfig(min=investigators, max=investigators), "orchestrator": PoolConfig()}
    return AgentRuntime(settings, backend, kinds, poll_s=0.2)


def _comparable(result: dict[str, Any]) -> tuple[Any, ...]:
    return (
        result["contracts_analyzed"], result["flags"], result["agency_flags"], result["insufficient"],
    )  # fmt: skip


async def test_plan_splits_by_organ_and_refuses_what_it_cannot_do(
    db: asyncpg.Connection, store_settings: Settings
) -> None:
    await _store(db, 31, 2000)
    organs = await db.fetch("SELECT orgao_codigo, count(*) AS n FROM contracts GROUP BY 1 ORDER BY 1")
    agent = Orchestrator(store_settings, "orchestrator-test")
    try:
        plan = await agent.plan(ALL, "auto")
        assert plan["split"] == "organ" and plan["contracts"] == 2000 and plan["organs"] == len(organs)
        assert [(p["scope"]["orgao"], p["contracts"]) for p in plan["partitions"]] == [tuple(r) for r in organs]
        whole = await agent.plan(ALL, "none")
        assert whole["partitions"] == [{"scope": ALL, "contracts": 2000}] and whole["split"] == "none"
        one = await agent.plan({"orgao": organs[0]["orgao_codigo"], "year": None}, "organ")
        assert one["split"] == "none" and len(one["partitions"]) == 1  # one organ: nothing to split
        with pytest.raises(EmptyScope, match="no contracts in orgao 99999"):
            await agent.plan({"orgao": "99999", "year": None})
        with pytest.raises(CommandError, match="split: Input should be"):
            await agent.plan(ALL, "sideways")  # type: ignore[arg-type]
        assert await agent.status(uuid.uuid4()) is None
        assert await db.fetchval("SELECT count(*) FROM investigations") == 0  # planning queues nothing
    finally:
        await agent.close()


async def test_a_partitioned_investigation_equals_one_sweep_of_the_scope(
    db: asyncpg.Connection, store_settings: Settings
) -> None:
    await _store(db, 32, 4000)
    runtime = _runtime(store_settings)
    await runtime.start()
    try:
        whole = await runtime.submit(ALL, split="none")
        split = await runtime.submit(ALL, split="organ", user_id="ana", idempotency_key="all-by-organ")
        again = await runtime.submit(ALL, split="organ", user_id="ana", idempotency_key="all-by-organ")
        assert again["id"] == split["id"] and not again["created"] and split["partitions"] > 1
        one = await runtime.wait(whole["id"], 120)
        many = await runtime.wait(split["id"], 120)
    finally:
        await runtime.stop()
    assert one["status"] == many["status"] == "completed"
    assert _comparable(many) == _comparable(one) and many["flags"]
    parent = await queue.get_investigation(db, uuid.UUID(split["id"]))
    assert parent is not None and parent["progress"] == 1 and parent["partitions"] == split["partitions"]
    assert parent["children"] == {"completed": split["partitions"]}  # queued once, despite the second submit
    assert parent["result"]["contracts_analyzed"] == 4000 and parent["result"]["seconds"] >= 0
    assert parent["flags"] == len(one["flags"]) + len(one["agency_flags"])
    assert sum(parent["result"]["flag_counts"].values()) == parent["flags"]


async def test_the_parent_tracks_progress_and_names_the_partitions_that_failed(
    db: asyncpg.Connection, store_settings: Settings
) -> None:
    await _store(db, 33, 1500)
    agent = Orchestrator(store_settings, "orchestrator-test")
    try:
        submitted = await agent.submit(ALL, split="organ")
    finally:
        await agent.close()
    parent, n = uuid.UUID(submitted["id"]), submitted["partitions"]
    claim = await queue.claim(db, "agent-a", 30)
    assert claim is not None and claim.scope["orgao"]  # a child, never the parent
    assert await queue.fail(db, claim, "disk on fire", max_attempts=1) == "failed"
    row = await queue.get_investigation(db, parent)
    assert row is not None and row["status"] == "running" and row["progress"] == pytest.approx(1 / n)
    worker = Investigator(store_settings, "investigator-test")
    try:
        while await worker.work_one():
            pass
    finally:
        await worker.close()
    row = await queue.get_investigation(db, parent)
    assert row is not None and row["status"] == "failed" and row["progress"] == 1
    assert row["error"] == f"1 of {n} partitions did not complete: orgao {claim.scope['orgao']} failed: disk on fire"
    assert row["children"] == {"completed": n - 1, "failed": 1}
    assert row["result"]["contracts_analyzed"] < 1500
    result = await load_result(db, parent)
    assert result is not None and result["flags"]  # the partitions that completed keep their flags


async def test_cancelling_a_partitioned_investigation_cancels_its_children(
    db: asyncpg.Connection, store_settings: Settings
) -> None:
    await _store(db, 34, 1500)
    agent = Orchestrator(store_settings, "orchestrator-test")
    try:
        queued = await agent.submit(ALL, split="organ")
        running = await agent.submit({"all": True, "year": 2024}, split="organ")
        assert await agent.cancel(queued["id"]) == "cancelled"  # nothing had started: settled at once
        status = await agent.status(queued["id"])
        assert status is not None and status["children"] == {"cancelled": queued["partitions"]}
        claim = None
        while claim is None or claim.scope.get("year") != 2024:  # take a child of the second one
            claim = await queue.claim(db, "agent-b", 30)
        assert await agent.cancel(running["id"]) == "cancel_requested"  # one child still runs
        assert await queue.fail(db, claim, "cancelled on request", max_attempts=3) == "cancelled"
        final = await agent.status(running["id"])
        assert final is not None and final["status"] == "cancelled" and final["progress"] == 1
        assert await agent.cancel(running["id"]) == "cancelled"  # already ended: says how
    finally:
        await agent.close()
    assert await db.fetchval("SELECT count(*) FROM investigations WHERE status = 'queued'") == 0
