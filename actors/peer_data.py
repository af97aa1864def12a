"""Reference data every investigation of the same years needs, computed once per data version and shared.

An investigation of one organ judges its prices against every organ's contracts of the same years (the peer
price statistics: a histogram Postgres aggregates over the whole table) and its suppliers against the
sanctions and the registry (indexes built in memory). For a small organ that is nearly all the work — on
450,000 contracts, 0.55 s of statistics and 0.2 s of indexes against 15 ms of rules — and it is the same for
every organ. :class:`PeerDataCache` (on Ray: one named actor per database, ``cidadao-peer-data-…``) computes it once per
(years, data version), puts it in the object store and hands every investigator the same object reference:
one copy in shared memory, read zero-copy. Concurrent requests for a missing key wait for one computation (a
lock per key). Data versions come from ``data_versions`` (migration 0004): every statement that changes
contracts, sanctions or suppliers bumps them, so a cached entry is never served after the data changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from actors._database import AgentDatabase
from actors._health import health_of
from cidadao.observability import CACHE_HIT_RATIO, CACHE_REQUESTS
from cidadao.redflags.base import SideData
from cidadao.redflags.stats import PriceThresholds, merge_prices
from cidadao.settings import Settings
from cidadao.storage.analysis import Scope, load_price_histogram, load_side

__all__ = ["PEER_DATA", "PeerData", "PeerDataCache", "data_versions", "load_peer_data", "peer_data_name"]

PEER_DATA: Final = "cidadao-peer-data"  # the prefix of the actor's name in the "cidadao" namespace


def peer_data_name(settings: Settings) -> str:
    """The cache actor's name for this database: runtimes on one Ray cluster over different databases (a
    benchmark beside the main job) must never share one."""
    db = settings.database_url.get_secret_value() if settings.database_url else f"embedded:{settings.data_home}"
    replica = settings.read_replica_url.get_secret_value() if settings.read_replica_url else ""
    return f"{PEER_DATA}-{hashlib.sha256(f'{db}|{replica}'.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class PeerData:
    key: tuple[Any, ...]  # (year, contracts version, sanctions version, suppliers version)
    side: SideData  # indexes built
    thresholds: PriceThresholds


async def data_versions(conn: asyncpg.Connection) -> tuple[int, ...]:
    rows = await conn.fetch(
        "SELECT name, version FROM data_versions WHERE name IN ('contracts', 'sanctions', 'suppliers') ORDER BY name"
    )
    return tuple(int(r["version"]) for r in rows)


async def load_peer_data(conn: asyncpg.Connection, year: int | None) -> PeerData:
    """Compute it here (no cache): versions first, so a change racing the reads makes the key older, not newer."""
    versions = await data_versions(conn)
    side = (await load_side(conn)).prepared()
    thresholds = merge_prices([await load_price_histogram(conn, Scope(None, year))])
    return PeerData((year, *versions), side, thresholds)


class PeerDataCache:
    """Peer data per (year, data version), the ``keep`` most recent keys, each computed once."""

    kind = "peer_data"

    def __init__(self, settings: Settings, name: str | None = None, *, keep: int = 4) -> None:
        self.name = name or f"peer-data-{uuid.uuid4().hex[:8]}"
        self.keep = keep
        self.started_at = time.time()
        self.computed = 0
        self.served = 0
        self._database = AgentDatabase(settings, read_only=True, max_size=4)
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}

    async def close(self) -> None:
        await self._database.close()

    async def health(self) -> dict[str, Any]:
        return health_of(self.name, self.kind, self.started_at, self.served, computed=self.computed,
                         entries=len(self._entries))  # fmt: skip

    async def warm(self) -> None:
        """Compute the every-year entry now (the runtime asks at start, so the first investigation finds it)."""
        await self.get(None)

    async def get(self, year: int | None) -> list[Any]:
        """``[ref]``: an object reference to the current :class:`PeerData` for ``year`` (in a list, so Ray hands
        the reference over rather than the value). As a plain object (not an actor), the value itself."""
        async with (await self._database.pool()).acquire() as conn:
            key = (year, *await data_versions(conn))
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                hit = key in self._entries
                if not hit:
                    data = await load_peer_data(conn, year)
                    self._entries[data.key] = _put(data)
                    self.computed += 1
                    while len(self._entries) > self.keep:
                        old, _ = self._entries.popitem(last=False)
                        self._locks.pop(old, None)
                self._entries.move_to_end(key)
                self.served += 1
                CACHE_REQUESTS.inc(cache="peer_data", tier="actor", result="hit" if hit else "miss")
                CACHE_HIT_RATIO.set(1 - self.computed / self.served, cache="peer_data")
                return [self._entries[key]]


def _put(data: PeerData) -> Any:
    """Into the object store when this runs as an actor; the plain object otherwise."""
    import ray

    as_actor = ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    return ray.put(data) if as_actor else data
