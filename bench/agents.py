"""``cidadao bench agents`` and ``cidadao bench chaos-agents``: the agents on Ray, end to end through Postgres.

Setup (not timed): a database of its own, synthetic contracts COPYed in, a local Ray started once. Then:

- **latency**: one organ's investigation (20,000 contracts drawn at random from the whole world, every
  year), submitted through the orchestrator and waited for until its flags are stored — on a freshly started
  runtime (**cold**: the agent's first task, its database pools not yet open, the shared peer data not yet
  computed) and then five more times (**warm**, median); the pool's pre-warm time is reported beside it.
  Seed target: an agent answers in under 2 s.
- **throughput**: 100 organ investigations submitted at once against pools of 1, 2 and 4 investigators
  (each a Ray actor); investigations per second, and the speed-up over a pool of one.
- **acquire overhead**: the same trivial actor call made directly on the handle and through
  ``AgentPool.acquire`` (FIFO lending, bookkeeping), in the same run.
- **chaos**: investigations while working investigators' processes (and now and then the shared peer-data
  cache) are SIGKILLed at random; completed, failed, duplicated, and whether every result equals a run
  without kills (:func:`run_chaos`).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from pydantic import SecretStr

from actors.investigator import Investigator
from actors.orchestrator import Orchestrator
from actors.peer_data import PeerDataCache, peer_data_name
from actors.pool import PoolConfig, RayBackend
from actors.runtime import AgentRuntime
from bench.scratch import scratch_database
from cidadao.contracts.synthetic_tables import generate_tables
from cidadao.redflags import SideData
from cidadao.settings import Settings
from cidadao.storage.analysis import store_tables
from cidadao.storage.investigations import load_result
from cidadao.storage.postgres import apply_migrations, connect
from pipelines.runtime import ensure_ray

__all__ = ["agent_world", "run_benchmark", "run_chaos", "run_chaos_benchmark"]

TARGET_LATENCY_S = 2.0


@contextmanager
def agent_world(settings: Settings, contracts: int, seed: int) -> Iterator[tuple[Settings, list[tuple[str, int]]]]:
    """Settings pointed at a database of its own holding ``contracts`` synthetic contracts; organs by size."""
    with scratch_database(settings) as dsn:
        counts = asyncio.run(_populate(dsn, contracts, seed))
        yield settings.model_copy(update={"database_url": SecretStr(dsn), "read_replica_url": None}), counts


LATENCY_ORGAN, LATENCY_CONTRACTS = "99001", 20_000


async def _populate(dsn: str, contracts: int, seed: int) -> list[tuple[str, int]]:
    table, sanctions, registry = generate_tables(contracts, seed)
    # the generator's biggest organ holds ~13,000 contracts even at 600,000: a random 20,000 (of every
    # organ, object class and supplier) become one big organ for the latency measurement
    if contracts >= 5 * LATENCY_CONTRACTS:
        moved = np.zeros(table.num_rows, bool)
        moved[np.random.default_rng(seed).choice(table.num_rows, LATENCY_CONTRACTS, replace=False)] = True
        orgao = np.where(moved, LATENCY_ORGAN, table["orgao"].to_numpy(zero_copy_only=False))
        table = table.set_column(table.schema.get_field_index("orgao"), "orgao", pa.array(orgao, pa.string()))
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        await store_tables(conn, table, SideData(sanctions, registry))
        await conn.execute("ANALYZE contracts")
        rows = await conn.fetch("SELECT orgao_codigo, count(*) AS n FROM contracts GROUP BY 1 ORDER BY 2 DESC, 1")
    finally:
        await conn.close()
    return [(r["orgao_codigo"], int(r["n"])) for r in rows]


def _runtime(settings: Settings, investigators: int) -> AgentRuntime:
    """Investigators (a fixed number) and one orchestrator, as named Ray actors."""
    # recycling off: measured here are the agents at work, not their replacement every 1,000 tasks
    fixed = PoolConfig(min=investigators, max=investigators, health_period=1.0, recycle_after_tasks=10**9)
    backend = RayBackend(
        {"investigator": Investigator, "orchestrator": Orchestrator},
        settings,
        singletons={peer_data_name(settings): PeerDataCache},
    )
    return AgentRuntime(settings, backend, {"investigator": fixed, "orchestrator": PoolConfig()}, poll_s=0.5)


# --- latency, throughput, acquire overhead ---------------------------------------------------------------


async def _latency(settings: Settings, organ: str, warm_runs: int) -> dict[str, Any]:
    runtime = _runtime(settings, 1)
    t0 = time.perf_counter()
    await runtime.start()
    prewarm = time.perf_counter() - t0
    times, contracts = [], 0
    try:
        for _ in range(1 + warm_runs):
            t0 = time.perf_counter()
            submitted = await runtime.submit({"orgao": organ, "year": None})
            result = await runtime.wait(submitted["id"], 600)
            times.append(time.perf_counter() - t0)
            if result["status"] != "completed":
                raise RuntimeError(f"the investigation of {organ} {result['status']}: {result['error']}")
            contracts = result["contracts_analyzed"]
    finally:
        await runtime.stop()
    return {
        "organ": organ, "contracts": contracts, "pool_prewarm_s": round(prewarm, 3), "cold_s": round(times[0], 3),
        "warm_median_s": round(statistics.median(times[1:]), 3), "warm_s": [round(t, 3) for t in times[1:]],
    }  # fmt: skip


async def _throughput(settings: Settings, scopes: list[dict[str, Any]], investigators: int) -> dict[str, Any]:
    runtime = _runtime(settings, investigators)
    await runtime.start()
    try:
        t0 = time.perf_counter()
        submitted = await asyncio.gather(*(runtime.submit(scope) for scope in scopes))
        statuses = await runtime.wait_many([s["id"] for s in submitted], 3600)
        seconds = time.perf_counter() - t0
    finally:
        await runtime.stop()
    done = sum(1 for s in statuses.values() if s == "completed")
    return {
        "investigators": investigators, "investigations": len(scopes), "completed": done, "seconds": round(seconds, 3),
        "investigations_per_s": round(len(scopes) / seconds, 2),
    }  # fmt: skip


async def _acquire_overhead(settings: Settings, calls: int) -> dict[str, Any]:
    import ray

    runtime = _runtime(settings, 1)
    await runtime.start()
    try:
        name = runtime.pool.stats()["kinds"]["investigator"]["names"][0]
        handle = ray.get_actor(name, namespace="cidadao")

        async def direct(n: int) -> float:  # the call exactly as the pool's backend makes it, minus the pool
            t0 = time.perf_counter()
            for _ in range(n):
                await handle.health.options(concurrency_group="work").remote()
            return (time.perf_counter() - t0) / n

        async def pooled(n: int) -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                async with runtime.pool.acquire("investigator") as agent:
                    await agent.health.options(concurrency_group="work").remote()
            return (time.perf_counter() - t0) / n

        async def acquire_only(n: int) -> float:
            t0 = time.perf_counter()
            for _ in range(n):
                async with runtime.pool.acquire("investigator"):
                    pass
            return (time.perf_counter() - t0) / n

        await direct(50)
        await pooled(50)
        rounds, per_round = 10, max(1, calls // 10)
        direct_s, pooled_s = [], []
        for _ in range(rounds):  # interleaved, so a noisy moment hits both paths alike
            direct_s.append(await direct(per_round))
            pooled_s.append(await pooled(per_round))
        d, p = statistics.median(direct_s), statistics.median(pooled_s)
        only = await acquire_only(calls)
    finally:
        await runtime.stop()
    return {
        "calls": rounds * per_round, "rounds": rounds, "direct_us": round(d * 1e6, 1),
        "through_pool_us": round(p * 1e6, 1), "overhead_us": round((p - d) * 1e6, 1),
        "overhead_ratio": round(p / d, 3), "acquire_release_only_us": round(only * 1e6, 2),
    }  # fmt: skip


def _organ_scopes(counts: list[tuple[str, int]], n: int, skip: str | None = None) -> list[dict[str, Any]]:
    organs = [organ for organ, _ in counts if organ != skip][:n]
    if len(organs) < n:
        raise ValueError(f"only {len(organs)} organs for {n} investigations: generate more contracts")
    return [{"orgao": organ, "year": None} for organ in organs]


def run_benchmark(
    settings: Settings, contracts: int, pool_sizes: list[int], investigations: int, calls: int, out: Path,
    echo: Callable[[str], None], seed: int = 11,
) -> dict[str, Any]:  # fmt: skip
    """Run the agent benchmark, print it, write the JSON result to ``out`` and return it."""
    ensure_ray(settings.ray_address)
    with agent_world(settings, contracts, seed) as (world, counts):
        organ, size = next(((o, n) for o, n in counts if o == LATENCY_ORGAN), max(counts, key=lambda c: c[1]))
        echo(f"latency: orgao {organ} ({size:,} contracts), pool of one investigator")
        latency = asyncio.run(_latency(world, organ, 5))
        echo(f"  pre-warm {latency['pool_prewarm_s']} s, cold {latency['cold_s']} s, warm {latency['warm_median_s']} s")
        scopes = _organ_scopes(counts, investigations, skip=organ)
        covered = sum(n for o, n in counts if {"orgao": o, "year": None} in scopes)
        echo(f"throughput: {investigations} organ investigations ({covered:,} contracts) at once")
        runs = []
        for p in pool_sizes:
            runs.append(asyncio.run(_throughput(world, scopes, p)))
            r = runs[-1]
            echo(f"  {p} investigators: {r['seconds']} s, {r['investigations_per_s']}/s, {r['completed']} completed")
        base = runs[0]["seconds"]
        for r in runs:
            r["speedup_vs_first"] = round(base / r["seconds"], 2)
        overhead = asyncio.run(_acquire_overhead(world, calls))
        o = overhead
        echo(f"acquire: direct {o['direct_us']} µs, through the pool {o['through_pool_us']} µs "
             f"(+{o['overhead_us']} µs; acquire+release alone {o['acquire_release_only_us']} µs)")  # fmt: skip
    result = {
        "benchmark": "agents", "contracts": contracts, "seed": seed, "cpus": os.cpu_count(), "latency": latency,
        "throughput": {"contracts": covered, "runs": runs}, "acquire": overhead,
        "targets": {"latency_s_max": TARGET_LATENCY_S},
        "targets_met": {"cold_latency": latency["cold_s"] < TARGET_LATENCY_S,
                        "warm_latency": latency["warm_median_s"] < TARGET_LATENCY_S},
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    echo(f"wrote {out}")
    return result


# --- chaos -----------------------------------------------------------------------------------------------


async def _results(settings: Settings, ids: list[str]) -> dict[str, Any]:
    conn = await connect(settings.database_url.get_secret_value())  # type: ignore[union-attr]
    try:
        out = {}
        for inv in ids:
            r = await load_result(conn, uuid.UUID(inv))
            assert r is not None
            out[inv] = r
        duplicated = await conn.fetchval(
            """SELECT count(DISTINCT investigation_id) FROM (
                   SELECT investigation_id FROM flags WHERE investigation_id = ANY($1::uuid[])
                    GROUP BY investigation_id, level, contract_id, orgao_codigo, flag HAVING count(*) > 1) d""",
            ids,
        )
        attempts = await conn.fetch(
            "SELECT attempts, count(*) AS n FROM investigations WHERE id = ANY($1::uuid[]) GROUP BY 1 ORDER BY 1", ids
        )
    finally:
        await conn.close()
    return {"results": out, "duplicated": duplicated, "attempts": {str(r["attempts"]): r["n"] for r in attempts}}


def _canonical(result: dict[str, Any]) -> bytes:
    keep = ("scope", "contracts_analyzed", "flags", "agency_flags", "insufficient", "status")
    return orjson.dumps({k: result[k] for k in keep}, option=orjson.OPT_SORT_KEYS)


async def _killer(
    runtime: AgentRuntime, cache_name: str, every_s: float, rng: random.Random, kills: list[dict[str, Any]]
) -> None:
    """Every ``every_s`` seconds on average (exponential gaps), SIGKILL an investigator that is working (one
    chosen at random among the busy), or — one time in five — the shared peer-data cache."""
    import ray

    while True:
        await asyncio.sleep(rng.expovariate(1 / every_s))  # the next kill's random moment
        names = list(runtime.pool.stats()["kinds"]["investigator"]["names"])
        rng.shuffle(names)
        if rng.random() < 0.2:
            names = [cache_name]
        for name in names:
            try:
                handle = ray.get_actor(name, namespace="cidadao")
                asked: Any = handle.health.options(concurrency_group="health").remote()
                health: dict[str, Any] = await asyncio.wait_for(asked, 2.0)
            except Exception:
                continue
            if name != cache_name and not health.get("busy"):
                continue
            os.kill(health["pid"], signal.SIGKILL)
            kills.append({"agent": name, "pid": health["pid"], "busy_with": health.get("investigation")})
            break


async def _run_all(
    settings: Settings, scopes: list[dict[str, Any]], investigators: int, kill_every_s: float | None, seed: int
) -> tuple[list[str], list[dict[str, Any]], float]:
    runtime = _runtime(settings, investigators)
    await runtime.start()
    kills: list[dict[str, Any]] = []
    killer = None
    try:
        t0 = time.perf_counter()
        ids = [(await runtime.submit(scope))["id"] for scope in scopes]
        if kill_every_s:
            killer = asyncio.create_task(
                _killer(runtime, peer_data_name(settings), kill_every_s, random.Random(seed), kills)
            )
        await runtime.wait_many(ids, 3600)
        seconds = time.perf_counter() - t0
    finally:
        if killer is not None:
            killer.cancel()
            await asyncio.gather(killer, return_exceptions=True)
        await runtime.stop()
    return ids, kills, seconds


def run_chaos(
    settings: Settings, scopes: list[dict[str, Any]], *, investigators: int, kill_every_s: float, seed: int
) -> dict[str, Any]:
    """The scopes investigated without kills, then again while investigators are killed; the comparison."""
    ensure_ray(settings.ray_address)
    calm_ids, _, calm_s = asyncio.run(_run_all(settings, scopes, investigators, None, seed))
    calm = asyncio.run(_results(settings, calm_ids))
    ids, kills, chaos_s = asyncio.run(_run_all(settings, scopes, investigators, kill_every_s, seed))
    chaos = asyncio.run(_results(settings, ids))
    statuses = [chaos["results"][i]["status"] for i in ids]
    identical = [
        _canonical(chaos["results"][a]) == _canonical(calm["results"][b]) for a, b in zip(ids, calm_ids, strict=True)
    ]
    return {
        "investigations": len(scopes), "investigators": investigators, "kill_every_s": kill_every_s,
        "lease_s": settings.investigation_lease, "max_attempts": settings.investigation_max_attempts,
        "kills": len(kills), "kills_mid_investigation": sum(1 for k in kills if k["busy_with"]),
        "kills_of_the_cache": sum(1 for k in kills if k["agent"].startswith("cidadao-peer-data")),
        "completed": statuses.count("completed"), "failed": statuses.count("failed"),
        "duplicated": chaos["duplicated"], "identical": sum(identical), "all_identical": all(identical),
        "attempts": chaos["attempts"], "calm_seconds": round(calm_s, 2), "chaos_seconds": round(chaos_s, 2),
    }  # fmt: skip


def run_chaos_benchmark(
    settings: Settings, contracts: int, investigations: int, investigators: int, kill_every_s: float, lease_s: float,
    out: Path, echo: Callable[[str], None], seed: int = 13,
) -> dict[str, Any]:  # fmt: skip
    """``cidadao bench chaos-agents``: print the counts, write the JSON result to ``out`` and return it."""
    tuned = settings.model_copy(update={"investigation_lease": lease_s})
    with agent_world(tuned, contracts, seed) as (world, counts):
        scopes = _organ_scopes(counts, investigations)
        echo(f"{investigations} organ investigations, {investigators} investigators, a kill every {kill_every_s} s "
             f"on average, lease {lease_s} s")  # fmt: skip
        result = run_chaos(world, scopes, investigators=investigators, kill_every_s=kill_every_s, seed=seed)
    result.update({"benchmark": "chaos-agents", "contracts": contracts, "seed": seed})
    result["target_met"] = (
        result["completed"] == investigations and result["duplicated"] == 0 and result["all_identical"]
    )
    echo(f"kills {result['kills']} ({result['kills_mid_investigation']} mid-investigation, "
         f"{result['kills_of_the_cache']} of the cache): "
         f"completed {result['completed']}, failed {result['failed']}, duplicated {result['duplicated']}, "
         f"identical {result['identical']}/{investigations}; attempts {result['attempts']}; "
         f"{result['calm_seconds']} s calm, {result['chaos_seconds']} s under kills")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    echo(f"wrote {out}")
    return result
