"""One investigation, end to end: read the scope from Postgres as Arrow, sweep every rule on Ray, store it.

Reads go to the read replica when one is configured; the investigation and its flags are written to the
primary. The investigation row is ``running`` while the sweep runs, then ``completed`` with its flags, or
``failed`` with the error: an investigation is never left half-stored.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pyarrow as pa

from cidadao.errors import CidadaoError
from cidadao.settings import Settings
from cidadao.storage.analysis import Scope, contract_groups, load_contracts, load_peer_prices, load_side
from cidadao.storage.database import prepare_stores
from cidadao.storage.investigations import complete_investigation, create_investigation, fail_investigation
from cidadao.storage.postgres import connect
from pipelines.runtime import ensure_ray
from pipelines.strategies import Strategy
from pipelines.sweep import INLINE_ROWS, MIN_CHUNK_ROWS, run_sweep

__all__ = ["investigate"]

READ_GROUP_ROWS = 4 * MIN_CHUNK_ROWS


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
        groups = await contract_groups(reader, scope, READ_GROUP_ROWS)
        if not groups:
            where = f"orgao {scope.orgao}" if scope.orgao else "the database"
            year = f" in {scope.year}" if scope.year else ""
            raise CidadaoError(f"no contracts in {where}{year}: ingest some first (cidadao ingest)")
        inv = await create_investigation(writer, scope.as_dict(), user_id)
        try:
            parts = [await load_contracts(reader, scope, organs) for organs in groups]
            side = await load_side(reader)
            peers = await load_peer_prices(reader, scope)
            table = pa.concat_tables(parts)
            if table.num_rows >= INLINE_ROWS:
                ensure_ray(settings.ray_address)  # in the main thread: Ray installs its signal handlers there
            result = await asyncio.to_thread(run_sweep, table, side, strategy=strategy, peers=peers)
            seconds = round(time.perf_counter() - started, 3)
            summary = {
                "contracts_analyzed": result.contracts_analyzed, "seconds": seconds, "flag_counts": result.counts(),
                "insufficient": result.insufficient, "strategy": strategy,
            }  # fmt: skip
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
