"""``cidadao bench pipeline``: the full sweep of every rule, in memory and from Postgres, on Ray and not.

For each size: synthetic contracts straight into Arrow (not timed), then, in this one process,

- **single**: :func:`cidadao.redflags.sweep_table`, the same rules vectorised in one process (the baseline);
- **ray/<strategy>**: :func:`pipelines.run_sweep` on the local Ray (started once, before any timing), forced
  onto Ray at every size (``inline_below=0``) so its overhead is measured, plus the shipped behaviour
  (**auto**: inline below ``INLINE_ROWS``);
- **naive** (10,000 only): the rules as per-row Python over dicts;
- **postgres**: the rows COPYed into a database made for the run (not timed); then the timed read of the
  whole scope into Arrow by one process (``cidadao.storage.analysis``), and the investigation's sweep
  (:func:`pipelines.sweep.sweep_postgres`: each group of organs read from Postgres and swept by the same
  worker) run in one process and on Ray.

Each size runs in a fresh process with its own local Ray (started before any timing), so memory does not
carry over between sizes. Peak memory is the largest sum of proportional set sizes (PSS: shared pages split
between the processes that map them) over that process and its children (Ray's raylet, GCS and workers),
sampled every 50 ms during the step; Ray's own idle PSS is reported beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psutil
import pyarrow as pa

from bench.scratch import scratch_database
from cidadao.contracts.synthetic_tables import generate_tables
from cidadao.redflags import SideData, sweep_table
from cidadao.settings import Settings
from cidadao.storage.analysis import Scope, load_contracts, load_side, store_tables
from cidadao.storage.postgres import apply_migrations, connect
from pipelines.strategies import Strategy

__all__ = ["run_benchmark"]

STRATEGIES: tuple[Strategy, ...] = ("map_reduce", "scatter_gather", "pipeline", "round_robin")
TARGETS = {
    "sweep_1m_seconds_max": 3.0,
    "ray_vs_single_min_at_1m": 1.5,
    "ray_vs_single_time_max_at_10k": 1.1,
    "peak_pss_mib_max_at_5m": 2048,
    "postgres_load_1m_seconds_max": 3.0,
}


def _pss_tree() -> int:
    me = psutil.Process()
    total = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


@contextmanager
def _peak_memory() -> Iterator[dict[str, float]]:
    """Sample the process tree's PSS while the block runs; ``peak_mib`` when it ends."""
    out = {"peak_mib": 0.0}
    done = threading.Event()
    peak = [_pss_tree()]

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _pss_tree())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        done.set()
        thread.join()
        out["peak_mib"] = round(max(peak[0], _pss_tree()) / 2**20, 1)


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any, float]:
    """Best wall time of ``repeat`` runs, the last result, and the peak PSS over all runs."""
    best, result = float("inf"), None
    with _peak_memory() as mem:
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = fn()
            best = min(best, time.perf_counter() - t0)
    return best, result, mem["peak_mib"]


def _row(rows: int, seconds: float, peak: float, **extra: Any) -> dict[str, Any]:
    return {"seconds": round(seconds, 4), "contracts_per_s": round(rows / seconds), "peak_pss_mib": peak, **extra}


async def _populate(dsn: str, table: pa.Table, side: SideData) -> None:
    """COPY the contracts (and sanctions, registry) into the run's database: setup, not timed."""
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        await conn.execute("TRUNCATE flags, investigations, contracts, sanctions, suppliers RESTART IDENTITY")
        await store_tables(conn, table, side)
        await conn.execute("ANALYZE contracts")
    finally:
        await conn.close()


async def _load(dsn: str) -> tuple[pa.Table, SideData]:
    conn = await connect(dsn)
    try:
        return await load_contracts(conn, Scope()), await load_side(conn)
    finally:
        await conn.close()


def _release_freed_memory() -> None:
    """Give memory the generator freed back to the system (glibc keeps it otherwise), so peaks are the sweep's."""
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _same(a: Any, b: Any) -> bool:
    return bool(
        a.flag_table.equals(b.flag_table) and a.agency_flags == b.agency_flags and a.insufficient == b.insufficient
    )


def _memory_run(n: int, ray_address: str | None) -> dict[str, Any]:
    """One size, in memory (runs in a fresh process: its memory and its Ray are its own)."""
    from bench.naive_rules import naive_sweep
    from pipelines import INLINE_ROWS, ensure_ray, run_sweep

    ensure_ray(ray_address)
    idle = round(_pss_tree() / 2**20, 1)
    table, sanctions, registry = generate_tables(n, 7)
    _release_freed_memory()  # the generator's garbage is not the sweep's
    side = SideData(sanctions, registry)
    rows = table.num_rows
    entry: dict[str, Any] = {"contracts": rows, "pss_mib_ray_idle": idle, "table_mib": round(table.nbytes / 2**20, 1)}
    repeat = 3 if rows <= 200_000 else 1
    seconds, single, peak = _timed(partial(sweep_table, table, side), repeat)
    entry["single"] = _row(rows, seconds, peak, flags=single.counts())
    base = entry["single"]["seconds"]
    for strategy in STRATEGIES:
        seconds, got, peak = _timed(partial(run_sweep, table, side, strategy=strategy, inline_below=0), repeat)
        assert _same(got, single), f"{strategy} differs from the single-process sweep"
        entry[f"ray/{strategy}"] = _row(rows, seconds, peak, vs_single=round(base / seconds, 3))
    seconds, _, peak = _timed(partial(run_sweep, table, side), repeat)
    entry["auto"] = _row(rows, seconds, peak, ray=rows >= INLINE_ROWS, vs_single=round(base / seconds, 3))
    if n <= 10_000:
        data = (table.to_pylist(), sanctions.to_pylist(), registry.to_pylist())
        seconds, naive, peak = _timed(partial(naive_sweep, *data), repeat)
        agree = all(naive.get(k, 0) == v for k, v in single.counts().items())
        entry["naive_python"] = _row(rows, seconds, peak, same_counts=agree, vs_single=round(base / seconds, 3))
    return entry


def _postgres_run(n: int, dsn: str, ray_address: str | None) -> dict[str, Any]:
    """One size, from Postgres (in a fresh process)."""
    from pipelines import ensure_ray
    from pipelines.sweep import sweep_postgres

    ensure_ray(ray_address)
    table, sanctions, registry = generate_tables(n, 7)
    asyncio.run(_populate(dsn, table, SideData(sanctions, registry)))
    rows = table.num_rows
    del table
    _release_freed_memory()
    seconds, (loaded, _), peak = _timed(lambda: asyncio.run(_load(dsn)), 1)
    assert loaded.num_rows == rows
    entry: dict[str, Any] = {"contracts": rows, "read_arrow": _row(rows, seconds, peak)}
    del loaded
    _release_freed_memory()
    scope, counts, side, thresholds = asyncio.run(_investigation_inputs(dsn))
    run = partial(sweep_postgres, dsn, scope, counts, side, thresholds)
    t_single, single, peak = _timed(partial(run, inline_below=rows + 1), 1)
    entry["read_and_sweep_single"] = _row(rows, t_single, peak)
    t_ray, got, peak = _timed(partial(run, strategy="scatter_gather", inline_below=0), 1)
    assert _same(got, single)
    entry["read_and_sweep_ray"] = _row(rows, t_ray, peak, vs_single=round(t_single / t_ray, 3))
    return entry


async def _investigation_inputs(dsn: str) -> tuple[Any, list[tuple[str, int]], SideData, Any]:
    """What ``cidadao investigate --all`` asks the driver to read: sizes, histogram, reference data."""
    from cidadao.redflags.stats import merge_prices
    from cidadao.storage.analysis import load_price_histogram, organ_counts

    conn = await connect(dsn)
    try:
        scope = Scope()
        counts = await organ_counts(conn, scope)
        thresholds = merge_prices([await load_price_histogram(conn, scope)])
        return scope, counts, await load_side(conn), thresholds
    finally:
        await conn.close()


def _isolated(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh spawned process and return its result."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def run_benchmark(
    settings: Settings, sizes: list[int], postgres_sizes: list[int], out: Path, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Run the benchmark, print a table, write the JSON result to ``out`` and return it."""
    results: dict[str, Any] = {"benchmark": "pipeline", "cpus": os.cpu_count(), "memory": {}, "postgres": {}}
    for n in sizes:
        echo(f"{n:,} contracts in memory ...")
        entry = results["memory"][str(n)] = _isolated(_memory_run, n, settings.ray_address)
        best = min(STRATEGIES, key=lambda s: float(entry[f"ray/{s}"]["seconds"]))
        ray = entry[f"ray/{best}"]
        echo(f"  single {entry['single']['seconds']:.3f} s, peak PSS {entry['single']['peak_pss_mib']:.0f} MiB; "
             f"best Ray ({best}) {ray['seconds']:.3f} s = {ray['vs_single']:.2f}x single, peak PSS "
             f"{ray['peak_pss_mib']:.0f} MiB (Ray idle {entry['pss_mib_ray_idle']:.0f} MiB)")  # fmt: skip
    if postgres_sizes:
        with scratch_database(settings) as dsn:
            for n in postgres_sizes:
                echo(f"{n:,} contracts from Postgres ...")
                e = results["postgres"][str(n)] = _isolated(_postgres_run, n, dsn, settings.ray_address)
                read, single, ray = (e[k]["seconds"] for k in ("read_arrow", "read_and_sweep_single",
                                                                "read_and_sweep_ray"))  # fmt: skip
                echo(f"  read into Arrow {read:.3f} s; read + sweep in one process {single:.3f} s, on Ray {ray:.3f} s")
    results["targets"] = TARGETS
    results["checks"] = _checks(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    for check, verdict in results["checks"].items():
        echo(f"{check}: {verdict}")
    echo(f"result: {out}")
    return results


def _checks(results: dict[str, Any]) -> dict[str, Any]:
    """Each target against what was measured (absent when that size was not run)."""
    mem, pg, out = results["memory"], results["postgres"], {}
    best = {n: min(e[f"ray/{s}"]["seconds"] for s in STRATEGIES) for n, e in mem.items()}
    if "1000000" in mem:
        e = mem["1000000"]
        fastest = min(e["single"]["seconds"], best["1000000"])
        out["sweep_1m_seconds"] = {"measured": fastest, "met": fastest <= TARGETS["sweep_1m_seconds_max"]}
    for n in ("1000000", "5000000"):
        if n in mem:
            ratio = round(mem[n]["single"]["seconds"] / best[n], 3)
            out[f"ray_vs_single_{n}"] = {"measured": ratio, "met": ratio >= TARGETS["ray_vs_single_min_at_1m"]}
    if "10000" in mem:
        ratio = round(mem["10000"]["auto"]["seconds"] / mem["10000"]["single"]["seconds"], 3)
        out["auto_time_vs_single_10000"] = {"measured": ratio, "met": ratio <= TARGETS["ray_vs_single_time_max_at_10k"]}
    if "5000000" in mem:
        e, limit = mem["5000000"], TARGETS["peak_pss_mib_max_at_5m"]
        single = e["single"]["peak_pss_mib"]
        ray = max(e[f"ray/{s}"]["peak_pss_mib"] for s in STRATEGIES)
        out["peak_pss_mib_5m_single"] = {"measured": single, "met": single < limit}
        out["peak_pss_mib_5m_ray"] = {"measured": ray, "met": ray < limit}
    if "1000000" in pg:
        load = pg["1000000"]["read_arrow"]["seconds"]
        out["postgres_load_1m_seconds"] = {"measured": load, "met": load <= TARGETS["postgres_load_1m_seconds_max"]}
    return out
