"""One investigation, end to end: the scope read from Postgres as Arrow by the tasks that sweep it, stored.

The driver asks Postgres only for the organs' sizes, the price histogram and the reference data; each task
reads its own group of organs (:func:`pipelines.sweep.sweep_postgres`). Reads go to the read replica when
one is configured; the investigation and its flags are written to the primary. The investigation row is
``running`` while the sweep runs, then ``completed`` with its flags, or ``failed`` with the error: an
investigation is never left half-stored.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import asyncpg

from cidadao.errors import EmptyScope
from cidadao.redflags.stats import merge_prices
from cidadao.redflags.sweep import SweepResult
from cidadao.settings import Settings
from cidadao.storage.analysis import Scope, load_price_histogram, load_side, organ_counts
from cidadao.storage.database import prepare_stores
from cidadao.storage.investigations import complete_investigation, create_investigation, fail_investigation
from cidadao.storage.postgres import connect
from pipelines.runtime import ensure_ray
from pipelines.strategies import Strategy
from pipelines.sweep import sweep_postgres

__all__ = ["investigate", "no_contracts", "sweep_scope"]


async def sweep_scope(
    settings: Settings, reader: asyncpg.Connection, reader_dsn: str, scope: Scope, counts: list[tuple[str, int]],
    strategy: Strategy = "map_reduce",
) -> tuple[SweepResult, dict[str, Any]]:  # fmt: skip
    """Every rule over ``scope`` (whose organs and sizes are ``counts``): the result and its summary."""
    started = time.perf_counter()
    side = await load_side(reader)
    thresholds = merge_prices([await load_price_histogram(reader, scope)])
    inline_below = settings.investigate_inline_rows
    if sum(n for _, n in counts) >= inline_below and threading.current_thread() is threading.main_thread():
        ensure_ray(settings.ray_address)  # from the main thread when we can: Ray installs signal handlers there
    result = await asyncio.to_thread(
        sweep_postgres, reader_dsn, scope, counts, side, thresholds, strategy=strategy, inline_below=inline_below
    )
    summary = {
        "contracts_analyzed": result.contracts_analyzed, "seconds": round(time.perf_counter() - started, 3),
        "flag_counts": result.counts(), "insufficient": result.insufficient, "strategy": strategy,
    }  # fmt: skip
    return result, summary


def no_contracts(scope: Scope) -> EmptyScope:
    where = f"orgao {scope.orgao}" if scope.orgao else "the database"
    year = f" in {scope.year}" if scope.year else ""
    return EmptyScope(f"no contracts in {where}{year}: ingest some first (cidadao ingest)")


async def investigate(
    settings: Settings, scope: Scope, *, strategy: Strategy = "map_reduce", user_id: str | None = None
) -> dict[str, Any]:
    """Run and store one investigation; return the ``cidadao investigate --json`` object."""
    started = time.perf_counter()
    prepared = await prepare_stores(settings)
    primary = prepared.endpoints.database_url
    replica = settings.read_replica_url.get_secret_value() if settings.read_replica_url else None
    writer = await connect(primary)
    reader = await connect(replica) if replica else writer
    try:
        counts = await organ_counts(reader, scope)
        if not counts:
            raise no_contracts(scope)
        inv = await create_investigation(writer, scope.as_dict(), user_id)
        try:
            result, summary = await sweep_scope(settings, reader, replica or primary, scope, counts, strategy)
            seconds = summary["seconds"] = round(time.perf_counter() - started, 3)
            await complete_investigation(writer, inv, result, summary)
        except BaseException as exc:
            await asyncio.shield(fail_investigation(writer, inv, f"{type(exc).__name__}: {exc}"))
            raise
    finally:
        if reader is not writer:
            await reader.close()
        await writer.close()
    out = result.as_dict()
    return {
        "investigation_id": str(inv), "scope": scope.as_dict(), "contracts_analyzed": out["contracts_analyzed"],
        "seconds": seconds, "flags": out["flags"], "agency_flags": out["agency_flags"],
        "insufficient": out["insufficient"],
    }  # fmt: skip
