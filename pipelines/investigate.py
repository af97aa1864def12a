"""The sweep of an investigation's scope: read from Postgres as Arrow by the tasks that sweep it.

The caller (the Investigator agent) asks Postgres only for the organs' sizes, the price histogram and the
reference data; each task reads its own group of organs (:func:`pipelines.sweep.sweep_postgres`), from the
read replica when one is configured. Storing the result is the durable queue's job (``cidadao.storage.queue``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from cidadao.redflags.base import SideData
from cidadao.redflags.stats import PriceThresholds, merge_prices
from cidadao.redflags.sweep import SweepResult
from cidadao.settings import Settings
from cidadao.storage.analysis import Scope, load_price_histogram, load_side
from pipelines.runtime import ensure_ray
from pipelines.strategies import Strategy
from pipelines.sweep import sweep_postgres

__all__ = ["sweep_scope"]


async def sweep_scope(
    settings: Settings, reader: asyncpg.Connection, reader_dsn: str, scope: Scope, counts: list[tuple[str, int]],
    strategy: Strategy = "map_reduce", reference: tuple[SideData, PriceThresholds] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[SweepResult, dict[str, Any]]:  # fmt: skip
    """Every rule over ``scope`` (whose organs and sizes are ``counts``): the result and its summary.

    ``reference``: the sanction/registry data and the peer price thresholds of the scope's years, when the
    caller has them (shared between investigations); else read here. ``on_progress(share)`` is called from
    the sweep's thread as groups of organs finish.
    """
    started = time.perf_counter()
    if reference is None:
        side = await load_side(reader)
        thresholds = merge_prices([await load_price_histogram(reader, scope)])
    else:
        side, thresholds = reference
    inline_below = settings.investigate_inline_rows
    if sum(n for _, n in counts) >= inline_below and threading.current_thread() is threading.main_thread():
        ensure_ray(settings.ray_address)  # from the main thread when we can: Ray installs signal handlers there
    result = await asyncio.to_thread(
        sweep_postgres, reader_dsn, scope, counts, side, thresholds, strategy=strategy, inline_below=inline_below,
        on_progress=on_progress,
    )  # fmt: skip
    summary = {
        "contracts_analyzed": result.contracts_analyzed, "seconds": round(time.perf_counter() - started, 3),
        "flag_counts": result.counts(), "insufficient": result.insufficient, "strategy": strategy,
    }  # fmt: skip
    return result, summary
