"""``cidadao bench cache``: the tiered cache under a Zipf workload, against reading Postgres directly.

Setup (not timed): a database of its own holding ``keys`` pages of 10 rows each (a key's read is an index range
scan and a JSON aggregate, ~1 KB: a page of contracts as the API returns it), a local Ray, the Redis of the
settings under a namespace of the run's own. Then:

- **baseline**: ``baseline_reads`` reads drawn from the same Zipf(s) distribution straight from Postgres
  (a pool, ``concurrency`` readers at once): reads/s, p50/p99;
- **cached, the seed's sizes**: ``reads`` reads through :class:`~cidadao.cache.TieredCache` (each process's
  front → the node's object-store actor → Redis → Postgres) with L1 1,000 entries and L2 10,000: hit ratio
  overall and per tier, reads/s, p50/p99, and the speed-up over the baseline;
- **cached, L2 sized to the key space**: the same after a warm-up pass, without the node actor (it changes
  the time, not which reads hit): the steady hit ratio;
- **L1 hit latency**: front hits and actor hits timed one by one (p50/p99);
- **stampede**: 1,000 concurrent readers of one expired key; the number of computations.

Zipf with s = 1.1 over 100,000 keys puts 89 % of reads on the 10,000 most read keys and touches ~64,700
distinct keys in 1,000,000 reads: the bounds any cache of those sizes meets are printed beside the measures.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import orjson

from actors.cache import RayL1
from bench.scratch import scratch_database
from cidadao.cache import CacheConfig, LocalL1, RedisTier, TieredCache, cache_client, make_entry
from cidadao.settings import Settings
from cidadao.storage.database import prepare_stores
from cidadao.storage.postgres import connect, create_pool
from pipelines.runtime import ensure_ray

__all__ = ["run_benchmark", "zipf_keys"]


def zipf_keys(n_keys: int, n_reads: int, s: float, seed: int) -> np.ndarray[Any, Any]:
    """``n_reads`` keys in 0..n_keys-1, key k drawn with probability ∝ (k + 1)^-s."""
    p = np.arange(1, n_keys + 1, dtype=np.float64) ** -s
    p /= p.sum()
    return np.random.default_rng(seed).choice(n_keys, size=n_reads, p=p)


def _bounds(n_keys: int, n_reads: int, s: float, capacity: int) -> dict[str, float]:
    p = np.arange(1, n_keys + 1, dtype=np.float64) ** -s
    p /= p.sum()
    distinct = float((1 - (1 - p) ** n_reads).sum())
    return {"distinct_keys_expected": round(distinct), "hit_ratio_bound_cold": round(1 - distinct / n_reads, 4),
            "mass_of_top_l2_capacity": round(float(p[:capacity].sum()), 4)}  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


ITEMS: Final = 10  # rows per key: a page of contracts, as the API reads it
_PAGE: Final = """SELECT jsonb_build_object('key', $1::int, 'total', count(*), 'items', jsonb_agg(jsonb_build_object(
                    'source_id', source_id, 'signed_on', signed_on, 'value', value, 'supplier', supplier) ORDER BY i))
                    FROM bench_items WHERE key = $1"""


async def _fill(dsn: str, n_keys: int) -> None:
    """``ITEMS`` rows per key: reading a key is reading a page (an index range scan and an aggregate)."""
    conn = await connect(dsn)
    try:
        await conn.execute("""CREATE TABLE bench_items (key int, i int, source_id text, signed_on date, value float8,
                                                         supplier text, PRIMARY KEY (key, i))""")
        day = date(2024, 1, 1)
        rows = [(k, i, f"{k:08d}{i:04d}", day, 1000.0 + k + i, f"supplier {k % 997}")
                for k in range(n_keys) for i in range(ITEMS)]  # fmt: skip
        await conn.copy_records_to_table("bench_items", records=rows, columns=[
            "key", "i", "source_id", "signed_on", "value", "supplier"])  # fmt: skip
        await conn.execute("ANALYZE bench_items")
    finally:
        await conn.close()


async def _readers(keys: np.ndarray[Any, Any], concurrency: int, read: Callable[[int], Any]) -> dict[str, Any]:
    latencies: list[float] = []
    cursor = iter(keys.tolist())

    async def reader() -> None:
        for k in cursor:
            started = time.perf_counter()
            await read(k)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(reader() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"reads": len(latencies), "seconds": round(seconds, 2), "reads_per_s": round(len(latencies) / seconds),
            "p50_ms": _pct(latencies, 0.5), "p99_ms": _pct(latencies, 0.99)}  # fmt: skip


def _tiered(settings: Settings, client: Any, namespace: str, l2_entries: int, *, node: bool = True) -> TieredCache:
    """The runtime's tiers (``node``: with the node's object-store actor; else the process's memory only)."""
    l1: RayL1 | LocalL1 = RayL1(settings)
    if not node:
        l1 = LocalL1(l1.generations, settings.cache_l1_entries, settings.cache_l1_bytes)
    l2 = RedisTier(client, namespace, ttl_s=3600, max_entries=l2_entries, prefix="bench:cache:")
    config = CacheConfig(ttl_s=3600, l2_ttl_s=3600, beta=0.0)  # nothing expires during a run
    return TieredCache(namespace, l1.generations, l1=l1, l2=l2, config=config)


async def _cached(cache: TieredCache, pool: Any, keys: np.ndarray[Any, Any], concurrency: int) -> dict[str, Any]:
    async def read(k: int) -> Any:
        async def load() -> Any:
            async with pool.acquire() as conn:
                return await conn.fetchval(_PAGE, k)

        return await cache.get(str(k), load)

    lookups, hits, computed = cache.lookups, cache.hits, cache.computed
    out = await _readers(keys, concurrency, read)
    out["hit_ratio"] = round((cache.hits - hits) / (cache.lookups - lookups), 4)
    out["computed"] = cache.computed - computed
    return out


async def _run(
    settings: Settings, dsn: str, redis_url: str, cfg: dict[str, Any], echo: Callable[[str], None]
) -> dict[str, Any]:
    n_keys, reads, s, concurrency = cfg["keys"], cfg["reads"], cfg["s"], cfg["concurrency"]
    await _fill(dsn, n_keys)
    pool = await create_pool(dsn, settings, min_size=4, max_size=concurrency)
    client: Any = cache_client(redis_url, max_connections=concurrency * 2)
    run = uuid.uuid4().hex[:8]
    result: dict[str, Any] = {"bounds_seed_sizes": _bounds(n_keys, reads, s, 10_000)}
    try:

        async def direct(k: int) -> Any:
            async with pool.acquire() as conn:
                return orjson.loads(await conn.fetchval(_PAGE, k))  # what a reader needs: the value

        echo("reading Postgres directly...")
        result["baseline_postgres"] = await _readers(zipf_keys(n_keys, cfg["baseline_reads"], s, 1), concurrency,
                                                     direct)  # fmt: skip
        echo(f"through the cache ({reads:,} reads)...")
        seed_sized = _tiered(settings, client, f"seed-{run}", 10_000)
        result["cached_seed_sizes"] = await _cached(seed_sized, pool, zipf_keys(n_keys, reads, s, 2), concurrency)
        result["speedup_over_postgres"] = round(
            result["cached_seed_sizes"]["reads_per_s"] / result["baseline_postgres"]["reads_per_s"], 2
        )
        echo("the same without the node actor...")
        no_node = _tiered(settings, client, f"nonode-{run}", 10_000, node=False)
        result["cached_seed_sizes_without_node_actor"] = await _cached(no_node, pool, zipf_keys(n_keys, reads, s, 2),
                                                                       concurrency)  # fmt: skip
        whole = _tiered(settings, client, f"whole-{run}", n_keys, node=False)  # the hit ratio, at a third the time
        echo("L2 sized to the key space: a warm-up, then the measure...")
        await _cached(whole, pool, zipf_keys(n_keys, reads, s, 3), concurrency)  # warm-up
        result["cached_l2_whole_key_space_warm"] = await _cached(whole, pool, zipf_keys(n_keys, reads, s, 4),
                                                                 concurrency)  # fmt: skip
        result["l1_hit_latency"] = await _l1_latency(seed_sized)
        result["stampede"] = await _stampede(settings, client, run)
    finally:
        keys = [k async for k in client.scan_iter(match="bench:cache:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await client.delete(*keys[i : i + 1000])
        await client.aclose()
        await pool.close()
    return result


async def _l1_latency(cache: TieredCache) -> dict[str, Any]:
    """Hits on the node's actor (the process's memory emptied of the key first), then in the process's memory,
    one at a time."""
    l1 = cache.l1
    assert isinstance(l1, RayL1)
    keys = [f"{cache.namespace}:{k}" for k in range(100)]
    for key in keys:
        await l1.put(key, make_entry({"k": key}, ttl=3600), l1.generations.snapshot(key), 3600)
    timings: dict[str, list[float]] = {"process": [], "node_actor": []}
    for _ in range(20):
        for key in keys:
            snap = l1.generations.snapshot(key)
            for tier in ("node_actor", "process"):
                if tier == "node_actor":
                    l1.front.pop(key)
                started = time.perf_counter()
                entry, served = await l1.get(key, snap)
                timings[tier].append(time.perf_counter() - started)
                assert entry is not None and served == ("node" if tier == "node_actor" else "l1")
    return {tier: {"hits": len(t), "p50_ms": _pct(t, 0.5), "p99_ms": _pct(t, 0.99),
                   "mean_ms": round(1000 * statistics.fmean(t), 3)} for tier, t in timings.items()}  # fmt: skip


async def _stampede(settings: Settings, client: Any, run: str) -> dict[str, Any]:
    """1,000 concurrent readers of a key whose entry expired (past its stale window too)."""
    cache = _tiered(settings, client, f"stampede-{run}", 10)
    computations = 0

    async def load() -> dict[str, int]:
        nonlocal computations
        computations += 1
        await asyncio.sleep(0.05)  # the source takes a while: every reader arrives while it computes
        return {"computations": computations}

    assert cache.l1 is not None
    key = "one"
    expired = make_entry({"old": True}, ttl=-3600.0)  # expired an hour ago: no stale serving either
    await cache.l1.put(f"{cache.namespace}:{key}", expired, cache.generations.snapshot(f"{cache.namespace}:{key}"), 60)
    entries = await asyncio.gather(*(cache.get(key, load) for _ in range(1000)))
    return {"readers": 1000, "computations": computations,
            "all_got_the_new_value": all(e.value() == {"computations": 1} for e in entries)}  # fmt: skip


def run_benchmark(settings: Settings, cfg: dict[str, Any], out: Path, echo: Callable[[str], None]) -> dict[str, Any]:
    ensure_ray()
    redis_url = asyncio.run(prepare_stores(settings, migrate=False)).endpoints.redis_url
    with scratch_database(settings) as dsn:
        result = asyncio.run(_run(settings, dsn, redis_url, cfg, echo))
    base, seed, whole = (
        result["baseline_postgres"],
        result["cached_seed_sizes"],
        result["cached_l2_whole_key_space_warm"],
    )
    bounds = result["bounds_seed_sizes"]
    echo(f"Zipf s={cfg['s']} over {cfg['keys']:,} keys, {cfg['reads']:,} reads, {cfg['concurrency']} readers")

    def line(name: str, r: dict[str, Any], extra: str = "") -> None:
        echo(f"{name:24}{r['reads_per_s']:>8,} reads/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms{extra}")

    line("postgres directly", base)
    line("cached, seed sizes", seed, f"  hit ratio {seed['hit_ratio']:.1%} ({result['speedup_over_postgres']}x)")
    nn = result["cached_seed_sizes_without_node_actor"]
    line("  the same, no node actor", nn, f"  hit ratio {nn['hit_ratio']:.1%} "
         f"({nn['reads_per_s'] / base['reads_per_s']:.2f}x)")  # fmt: skip
    echo(f"  bounds for any cache of these sizes: {bounds['mass_of_top_l2_capacity']:.1%} of reads on the 10,000 "
         f"most read keys; {bounds['distinct_keys_expected']:,} distinct keys ⇒ at most "
         f"{bounds['hit_ratio_bound_cold']:.1%} from cold")  # fmt: skip
    line("cached, L2 = key space", whole, f"  hit ratio after a warm-up {whole['hit_ratio']:.1%}")
    lat = result["l1_hit_latency"]
    lp, ln = lat["process"], lat["node_actor"]
    echo(f"L1 hits: process memory p50 {lp['p50_ms']:.3f} ms p99 {lp['p99_ms']:.3f} ms; "
         f"node's object-store actor p50 {ln['p50_ms']:.3f} ms p99 {ln['p99_ms']:.3f} ms")  # fmt: skip
    st = result["stampede"]
    echo(f"stampede: {st['readers']} concurrent readers of one expired key -> {st['computations']} computation(s)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps({"benchmark": "cache", "config": cfg, **result}, option=orjson.OPT_INDENT_2))
    echo(f"wrote {out}")
    return result
