"""The red-flag sweep on Ray, over a table in memory or straight from Postgres.

:func:`run_sweep` (a table in memory): contracts grouped so each organ is contiguous, cut into chunks of
whole organs (zero-copy slices), each put into the object store once and read by both passes; price
statistics merged on the driver between them.

:func:`sweep_postgres` (the scope of an investigation): the price histogram comes from Postgres first; then
each task reads its own group of whole organs from Postgres as Arrow and runs every rule over it in one
pass. Rows never pass through the driver or the object store: memory stays bounded by the groups in flight.

Small inputs run inline: below :data:`INLINE_ROWS` contracts in memory (and below the
``CIDADAO_INVESTIGATE_INLINE_ROWS`` setting for investigations) the Ray round trips cost more than they save
(measured by ``cidadao bench pipeline``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import ray

from cidadao.errors import PartitionsFailed
from cidadao.redflags.base import SideData
from cidadao.redflags.stats import PricePartial, PriceThresholds
from cidadao.redflags.sweep import (
    SINGLE_CHUNK_ROWS,
    PassOne,
    PassTwo,
    SweepResult,
    chunk_table,
    finish,
    merge_pass_one,
    pass_one,
    pass_two,
    sort_partitions,
    sweep_chunk,
    sweep_table,
)
from cidadao.storage.analysis import Scope, group_organs, load_contracts
from cidadao.storage.postgres import connect
from pipelines.runtime import ensure_ray, worker_count
from pipelines.strategies import Strategy, process_parallel

__all__ = ["INLINE_ROWS", "MIN_CHUNK_ROWS", "run_sweep", "sweep_postgres"]

INLINE_ROWS: Final = 200_000  # in memory: Ray 1.02x at 200k, 0.87x at 100k, 1.75x at 300k (2 cores)
MIN_CHUNK_ROWS: Final = 20_000


def _label(chunk: pa.Table) -> str:
    """The partitions a chunk holds, for error messages: ``orgao 26101..26400, 2022-2025``."""
    organs = pc.min_max(chunk["orgao"])
    years = pc.min_max(pc.year(chunk["signed_on"]))
    o = f"orgao {organs['min']}" + (f"..{organs['max']}" if organs["min"] != organs["max"] else "")
    y = f"{years['min']}" + (f"-{years['max']}" if years["min"] != years["max"] else "")
    return f"{o}, {y}"


def run_sweep(
    table: pa.Table,
    side: SideData,
    *,
    strategy: Strategy = "map_reduce",
    max_workers: int | None = None,
    chunk_rows: int | None = None,
    inline_below: int = INLINE_ROWS,
    peers: Iterable[PricePartial] = (),
) -> SweepResult:
    """Every rule over ``table``; on Ray unless it is smaller than ``inline_below`` contracts.

    The answer is identical to :func:`cidadao.redflags.sweep_table`'s. If chunks still fail after their
    retries, :class:`~cidadao.errors.PartitionsFailed` names their organs and years.
    """
    peers = list(peers)
    if table.num_rows < inline_below:
        return sweep_table(table, side, peers)
    ensure_ray()
    workers = max_workers or worker_count()
    ordered = sort_partitions(table)
    # about four chunks per worker for balance; capped so a worker's working set stays small at any size
    rows = chunk_rows or min(SINGLE_CHUNK_ROWS, max(MIN_CHUNK_ROWS, math.ceil(ordered.num_rows / (4 * workers))))
    chunks = chunk_table(ordered, rows)
    refs = [ray.put(c) for c in chunks]  # once each: both passes read them zero-copy
    side_ref = ray.put(side.prepared())  # indexes built once, here
    try:
        first = process_parallel(refs, pass_one, strategy, workers, 1, shared={"side": side_ref})
        thresholds = merge_pass_one(first, peers)
        second = process_parallel(
            refs, pass_two, strategy, workers, 1, shared={"side": side_ref, "thresholds": thresholds}
        )
    except PartitionsFailed as exc:
        raise PartitionsFailed(exc.failed, exc.total, {i: _label(chunks[i]) for i in exc.failed}) from exc
    return finish(first, second)


def _read_and_sweep(
    organs: list[str], dsn: str, scope: Scope, side: SideData, thresholds: PriceThresholds
) -> tuple[PassOne, PassTwo]:
    """One task: read a group of whole organs from Postgres as Arrow, run every rule over it."""

    async def read() -> pa.Table:
        conn = await connect(dsn)
        try:
            return await load_contracts(conn, scope, organs)
        finally:
            await conn.close()

    return sweep_chunk(asyncio.run(read()), side, thresholds)


def sweep_postgres(
    dsn: str,
    scope: Scope,
    counts: list[tuple[str, int]],
    side: SideData,
    thresholds: PriceThresholds,
    *,
    strategy: Strategy = "map_reduce",
    max_workers: int | None = None,
    inline_below: int = INLINE_ROWS,
    on_progress: Callable[[float], None] | None = None,
) -> SweepResult:
    """Every rule over the scope's contracts, read from Postgres group by group (``counts``: organ, rows).

    Call it from a thread without a running event loop. Groups that still fail after their retries raise
    :class:`~cidadao.errors.PartitionsFailed` naming their organs. ``on_progress(share)``: the share of the
    groups swept so far, each time it grows.
    """
    total = sum(n for _, n in counts)
    side = side.prepared()
    if total < inline_below:
        groups = group_organs(counts, SINGLE_CHUNK_ROWS)
        parts = []
        for g in groups:
            parts.append(_read_and_sweep(g, dsn, scope, side, thresholds))
            if on_progress is not None:
                on_progress(len(parts) / len(groups))
    else:
        ensure_ray()
        workers = max_workers or worker_count()
        groups = group_organs(counts, min(SINGLE_CHUNK_ROWS, max(MIN_CHUNK_ROWS, math.ceil(total / (4 * workers)))))
        shared = {"dsn": dsn, "scope": scope, "side": ray.put(side), "thresholds": thresholds}
        try:
            progress = None if on_progress is None else (lambda n: on_progress(n / len(groups)))
            parts = process_parallel(groups, _read_and_sweep, strategy, workers, 1, shared=shared, on_progress=progress)
        except PartitionsFailed as exc:
            labels = {i: _organs_label(groups[i]) for i in exc.failed}
            raise PartitionsFailed(exc.failed, exc.total, labels) from exc
    return finish([p[0] for p in parts], [p[1] for p in parts])


def _organs_label(organs: list[str]) -> str:
    return f"orgao {organs[0]}" + (f"..{organs[-1]} ({len(organs)} organs)" if len(organs) > 1 else "")
