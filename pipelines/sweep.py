"""The red-flag sweep on Ray: chunks of whole partitions, two passes, statistics merged on the driver.

Contracts are sorted so each organ × fiscal year partition is contiguous, then cut into chunks of whole
partitions (zero-copy slices), each put into the object store once and read by both passes. Small inputs
run inline: below :data:`INLINE_ROWS` contracts the Ray round trips cost more than they save (measured by
``cidadao bench pipeline``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import ray

from cidadao.errors import PartitionsFailed
from cidadao.redflags.base import SideData
from cidadao.redflags.stats import PricePartial
from cidadao.redflags.sweep import (
    SINGLE_CHUNK_ROWS,
    SweepResult,
    chunk_table,
    finish,
    merge_pass_one,
    pass_one,
    pass_two,
    sort_partitions,
    sweep_table,
)
from pipelines.runtime import ensure_ray, worker_count
from pipelines.strategies import Strategy, process_parallel

__all__ = ["INLINE_ROWS", "MIN_CHUNK_ROWS", "run_sweep"]

INLINE_ROWS: Final = 50_000
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
