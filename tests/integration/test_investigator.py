"""The Investigator agent as a plain class on real Postgres: it empties the queue, completes each
investigation once, and a lost claim stores nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any

import asyncpg
import pytest
import ray
from ray.exceptions import RayActorError

from actors import Investigator, Orchestrator
from actors.factory import actor_class
from actors.peer_data import PeerDataCache, peer_data_name
from actors.pool import AgentBackend, AgentPool, LocalBackend, PoolConfig, RayBackend
from actors.runtime import AgentRuntime
from cidadao.settings import Settings
from cidadao.storage import queue
from tests.helpers import eventually
from tests.integration.test_investigation_sweep import _store

pytestmark = pytest.mark.integration


async def test_the_agent_runs_queued_investigations_to_completion(
    db: asyncpg.Connection, store_settings: Settings
) -> None:
    await _store(db, 21, 3000)
    everything = await queue.submit(db, {"all": True, "year": None}, idempotency_key="inv-all")
    one_organ = await queue.submit(db, {"orgao": "36000", "year": 2023})
    nothing = await queue.submit(db, {"orgao": "99999", "year": None})
    agent = Investigator(store_settings, "investigator-test", lease_seconds=30, max_attempts=3)
    try:
        assert (await agent.health())["busy"] is False
        done = [await agent.work_one() for _ in range(3)]
        assert await agent.work_one() is None  # the queue is empty
    finally:
        await agent.close()
    assert [d["status"] for d in done if d] == ["completed", "completed", "failed"]
    assert (await agent.health())["tasks_done"] == 3
    for inv in (everything.id, one_organ.id):
        row = await queue.get_investigation(db, inv)
        assert row is not None and row["status"] == "completed" and row["attempts"] == 1 and row["flags"] > 0
        assert row["result"]["contracts_analyzed"] > 0
    failed = await queue.get_investigation(db, nothing.id)
    assert failed is not None and "no contracts in orgao 99999" in failed["error"]
    assert failed["status"] == "failed" and failed["attempts"] == 1  # an empty scope is not retried
    # the whole-database investigation saw every contract
    full = await queue.get_investigation(db, everything.id)
    assert full is not None and full["result"]["contracts_analyzed"] == 3000


async def _flags(db: asyncpg.Connection, inv: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        """SELECT c.source_id, f.orgao_codigo, f.flag, f.severity, f.score, f.evidence FROM flags f
           LEFT JOIN contracts c ON c.id = f.contract_id WHERE f.investigation_id = $1""",
        inv,
    )
    return sorted(tuple(r) for r in rows)


@pytest.mark.usefixtures("local_ray")
async def test_an_agent_killed_mid_investigation_loses_nothing(
    db: asyncpg.Connection, database_url: str, store_settings: Settings
) -> None:
    await _store(db, 22, 3000)
    scope = {"all": True, "year": None}
    baseline = await queue.submit(db, scope)
    plain = Investigator(store_settings, "investigator-baseline")
    try:
        assert (await plain.work_one() or {}).get("status") == "completed"
    finally:
        await plain.close()
    expected = await _flags(db, baseline.id)

    inv = (await queue.submit(db, scope)).id
    locker = await asyncpg.connect(database_url)  # holds the agent mid-investigation: it waits on this lock
    hold = locker.transaction()
    await hold.start()
    await locker.execute("LOCK TABLE sanctions IN ACCESS EXCLUSIVE MODE")
    agent = (
        actor_class(Investigator)
        .options(name="investigator-doomed")
        .remote(store_settings, "investigator-doomed", lease_seconds=3)
    )
    health = agent.health.options(concurrency_group="health")
    pid = (await health.remote())["pid"]
    work = agent.work_one.options(concurrency_group="work").remote()

    async def claimed() -> bool:
        return await db.fetchval("SELECT claimed_by FROM investigations WHERE id = $1", inv) == "investigator-doomed"

    await eventually(claimed, "the agent to claim the investigation")
    busy = await health.remote()  # answered while the agent is stuck in its work
    assert busy["busy"] and busy["investigation"] == str(inv)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(RayActorError):
        await work
    await hold.rollback()
    await locker.close()
    ray.kill(agent)

    async def lease_expired() -> bool:
        return bool(await db.fetchval("SELECT lease_until < now() FROM investigations WHERE id = $1", inv))

    await eventually(lease_expired, "the dead agent's lease to run out")
    survivor = Investigator(store_settings, "investigator-survivor")
    try:
        done = await survivor.work_one()  # requeues the expired claim, takes it over, completes it
    finally:
        await survivor.close()
    assert done is not None and done["id"] == str(inv) and done["attempt"] == 2 and done["status"] == "completed"
    row = await queue.get_investigation(db, inv)
    assert row is not None and row["status"] == "completed" and row["attempts"] == 2
    assert await _flags(db, inv) == expected  # complete, identical, not duplicated


@pytest.mark.usefixtures("local_ray")
async def test_a_pool_of_investigator_actors_works_the_queue_and_replaces_the_dead(
    db: asyncpg.Connection, store_settings: Settings
) -> None:
    await _store(db, 23, 2000)
    submitted = [(await queue.submit(db, {"orgao": o, "year": None})).id for o in ("26000", "26101", "36000")]
    config = PoolConfig(min=2, max=2, health_timeout=5.0)
    pool = AgentPool(RayBackend({"investigator": Investigator}, store_settings), {"investigator": config})
    await pool.start(watchdog=False)
    try:
        names = pool.stats()["kinds"]["investigator"]["names"]
        assert sorted(names) == ["cidadao-investigator-1", "cidadao-investigator-2"]
        assert ray.get_actor(names[0], namespace="cidadao") is not None  # named: the dashboard shows them

        async def one() -> dict[str, Any] | None:
            async with pool.acquire("investigator") as agent:
                return await agent.work_one.options(concurrency_group="work").remote()  # type: ignore[no-any-return]

        done = await asyncio.gather(*(one() for _ in range(3)))
        assert sorted(d["id"] for d in done if d) == sorted(str(i) for i in submitted)
        assert {d["status"] for d in done if d} == {"completed"}

        async with pool.acquire("investigator") as victim:
            pid = (await victim.health.options(concurrency_group="health").remote())["pid"]
        os.kill(pid, signal.SIGKILL)
        await pool.check()  # the watchdog's round: the dead agent does not answer and is replaced
        stats = pool.stats()
        assert stats["kinds"]["investigator"]["agents"] == 2 and stats["events"]["replaced"] >= 1
        assert "cidadao-investigator-3" in stats["kinds"]["investigator"]["names"]
    finally:
        await pool.close()


@pytest.mark.parametrize("backend_kind", ["local", "ray"])
async def test_a_restarted_runtime_resumes_queued_and_running_investigations(
    db: asyncpg.Connection, store_settings: Settings, backend_kind: str, request: pytest.FixtureRequest
) -> None:
    await _store(db, 24, 2000)
    running = (await queue.submit(db, {"orgao": "26000", "year": None})).id
    queued = (await queue.submit(db, {"orgao": "52111", "year": None})).id
    claim = await queue.claim(db, "agent-of-a-runtime-that-died", 30)
    assert claim is not None and claim.id == running
    await db.execute("UPDATE investigations SET lease_until = now() - interval '1 second' WHERE id = $1", running)

    backend: AgentBackend
    if backend_kind == "ray":  # the agents as actors, the reference data shared through the object store
        request.getfixturevalue("local_ray")
        classes = {"investigator": Investigator, "orchestrator": Orchestrator}  # two kinds start at once
        backend = RayBackend(classes, store_settings, singletons={peer_data_name(store_settings): PeerDataCache})
    else:
        backend = LocalBackend({
            "investigator": lambda name: Investigator(store_settings, name),
            "orchestrator": lambda name: Orchestrator(store_settings, name),
        })  # fmt: skip
    kinds = {"investigator": PoolConfig(min=1, max=2), "orchestrator": PoolConfig(min=1, max=1)}
    runtime = AgentRuntime(store_settings, backend, kinds, poll_s=0.2)
    await runtime.start()
    try:
        assert runtime.resumed == [running]
        first = await runtime.wait(running, 60)
        second = await runtime.wait(queued, 60)
        later = await runtime.submit({"orgao": "36000", "year": 2024}, idempotency_key="later")
        again = await runtime.submit({"orgao": "36000", "year": 2024}, idempotency_key="later")
        third = await runtime.wait(later["id"], 60)
        if backend_kind == "ray":  # the investigators took their reference data from the shared cache
            cache = ray.get_actor(peer_data_name(store_settings), namespace="cidadao")
            health = await cache.health.remote()
            assert health["tasks_done"] >= 3 and health["computed"] == 2  # 2 keys: every year, and 2024
    finally:
        await runtime.stop()
    assert again["id"] == later["id"] and not again["created"]
    assert [r["status"] for r in (first, second, third)] == ["completed"] * 3
    assert first["scope"] == {"orgao": "26000", "year": None} and first["contracts_analyzed"] > 0
    assert all(f["flag"] and f["evidence"] for f in first["flags"])
    row = await queue.get_investigation(db, running)
    assert row is not None and row["attempts"] == 2


@pytest.mark.usefixtures("local_ray")
async def test_the_shared_cache_survives_agents_of_several_kinds_starting_at_once(store_settings: Settings) -> None:
    # agents start concurrently; the singleton must be created once and its owning handle kept (a lost race
    # once dropped the owner's handle, and Ray killed the cache as soon as the pool had started)
    for _ in range(3):
        backend = RayBackend(
            {"investigator": Investigator, "orchestrator": Orchestrator}, store_settings,
            singletons={peer_data_name(store_settings): PeerDataCache},
        )  # fmt: skip
        pool = AgentPool(backend, {"investigator": PoolConfig(min=2, max=2), "orchestrator": PoolConfig(min=2, max=2)})
        await pool.start(watchdog=False)
        try:
            cache = ray.get_actor(peer_data_name(store_settings), namespace="cidadao")
            assert (await cache.health.remote())["kind"] == "peer_data"
        finally:
            await pool.close()
        with pytest.raises(ValueError):  # closed with the pool
            ray.get_actor(peer_data_name(store_settings), namespace="cidadao")


async def test_the_dispatcher_outlives_a_lost_connection(db: asyncpg.Connection, store_settings: Settings) -> None:
    await _store(db, 25, 1000)
    backend = LocalBackend({"investigator": lambda name: Investigator(store_settings, name)})
    runtime = AgentRuntime(store_settings, backend, {"investigator": PoolConfig(min=1, max=1)}, poll_s=0.2)
    await runtime.start()
    try:
        assert runtime._listener is not None
        lost = runtime._listener.get_server_pid()
        assert await db.fetchval("SELECT pg_terminate_backend($1)", lost)  # an administrator, a failover
        submitted = await queue.submit(db, {"all": True, "year": None})  # its NOTIFY reaches nobody
        done = await runtime.wait(submitted.id, 60)
        assert done["status"] == "completed"
        assert runtime._listener is not None and runtime._listener.get_server_pid() != lost  # listening again
    finally:
        await runtime.stop()
