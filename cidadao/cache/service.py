"""The runtime's caches and the reads that go through them; invalidation by ``cache.invalidate`` events.

Namespaces and their keys (a key's first segment is its namespace, in events and in Redis alike):

=================  ==============================================  ======================================
``investigations``  ``investigations:<id>`` — a final investigation  never changes once final; one still
                    (status, result, flags count)                  running is served, not kept
``contracts``       ``contracts:<orgao>:<year or *>:<limit>:<off>``  ``contracts:<orgao>:`` on every ingest
                    — a page of an organ's contracts               batch holding that organ's contracts
``flags``           ``flags:<orgao or *>:<since>:<until>`` — the    ``flags:<orgao>:`` and ``flags:*:`` when
                    flags-by-organ-month projection                an investigation of the organ completes
``records``         ``records:<kind>:<...>`` — the API's answers:    ``records:`` on every ingest batch and
                    a contract with its flags, an organ, a          every completed investigation (rare
                    supplier, a search page                        next to reads: the whole namespace)
=================  ==============================================  ======================================

``CACHE_STRATEGY`` picks the tiers: ``multi_tier`` (L1 and Redis), ``redis``, ``memory`` (L1 only) or
``none`` (every read goes to Postgres).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Final

import asyncpg
import orjson
import redis.asyncio as aioredis

from cidadao import queries
from cidadao.cache.entry import Entry, make_entry
from cidadao.cache.generations import Generations
from cidadao.cache.redis_tier import RedisTier
from cidadao.cache.tiered import L1, CacheConfig, LocalL1, TieredCache, Uncacheable
from cidadao.settings import Settings

__all__ = ["FINAL", "NAMESPACES", "CachedReads", "Caches", "generations_name", "split_keys"]

NAMESPACES: Final = ("investigations", "contracts", "flags", "records")
FINAL: Final = frozenset({"completed", "failed", "cancelled"})


def deployment(settings: Settings) -> str:
    """What a cache belongs to: its database (two deployments sharing a Redis never share entries)."""
    db = settings.database_url.get_secret_value() if settings.database_url else str(settings.data_home)
    return hashlib.blake2b(db.encode(), digest_size=6).hexdigest()


def generations_name(settings: Settings) -> str:
    """What names a deployment's cache on a machine: its Redis (or, embedded, its data home) and database."""
    redis = settings.redis_url.get_secret_value() if settings.redis_url else str(settings.data_home)
    return f"cidadao-cache:{redis}:{deployment(settings)}"


def split_keys(keys: Iterable[str], prefixes: Iterable[str]) -> dict[str, tuple[list[str], list[str]]]:
    """``namespace:rest`` keys and prefixes, grouped by namespace (unknown namespaces are left out)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for which, items in ((0, keys), (1, prefixes)):
        for item in items:
            namespace, _, rest = item.partition(":")
            if namespace in NAMESPACES:
                out.setdefault(namespace, ([], []))[which].append(rest)
    return out


class Caches:
    """One :class:`TieredCache` per namespace over one L1, one Redis client and the machine's generations."""

    def __init__(
        self, settings: Settings, *, client: aioredis.Redis | None, l1: L1 | None, generations: Generations
    ) -> None:
        strategy = settings.cache_strategy
        self.enabled = strategy != "none"
        use_l1 = l1 if strategy in ("multi_tier", "memory") else None
        config = CacheConfig.from_settings(settings)
        self.generations = generations
        self.tiers: dict[str, TieredCache] = {}
        for ns in NAMESPACES:
            l2 = None
            if client is not None and strategy in ("multi_tier", "redis"):
                l2 = RedisTier(client, ns, ttl_s=settings.cache_l2_ttl + settings.cache_stale_ttl,
                               max_entries=settings.cache_l2_entries,
                               prefix=f"cidadao:cache:v1:{deployment(settings)}:")  # fmt: skip
            self.tiers[ns] = TieredCache(ns, generations, l1=use_l1, l2=l2, config=config)

    @classmethod
    def local(cls, settings: Settings, client: aioredis.Redis | None) -> Caches:
        """Caches whose L1 is this process's memory (a process outside Ray: the CLI, a test)."""
        generations = Generations(generations_name(settings))
        l1 = LocalL1(generations, settings.cache_l1_entries, settings.cache_l1_bytes)
        return cls(settings, client=client, l1=l1, generations=generations)

    def __getitem__(self, namespace: str) -> TieredCache:
        return self.tiers[namespace]

    async def invalidate(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> None:
        """``namespace:...`` keys and prefixes, in every tier this process reaches."""
        for ns, (ns_keys, ns_prefixes) in split_keys(keys, prefixes).items():
            await self.tiers[ns].invalidate(ns_keys, ns_prefixes)

    async def close(self) -> None:
        for tier in self.tiers.values():
            await tier.close()


class CachedReads:
    """The reads the API serves, through the caches (``compress``: kept brotli- and gzip-compressed too)."""

    def __init__(self, pool: asyncpg.Pool, caches: Caches) -> None:
        self.pool, self.caches = pool, caches

    async def _get(self, namespace: str, key: str, load: Any, compress: bool) -> Entry:
        if not self.caches.enabled:  # CACHE_STRATEGY=none: every read from Postgres (compressed, if at all, by
            try:  # the HTTP layer at its per-request level)
                value = await load()
            except Uncacheable as passing:
                value = passing.value
            return make_entry(value, ttl=0.0)
        return await self.caches[namespace].get(key, load, compress=compress)

    async def investigation(self, inv: str, *, compress: bool = False) -> Entry | None:
        """Its state and result; None if there is no such investigation."""

        async def load() -> Any:
            async with self.pool.acquire() as conn:
                found = await queries.investigation(conn, inv)
            value = orjson.loads(orjson.dumps(found, default=str)) if found is not None else None
            if value is None or value["status"] not in FINAL:
                raise Uncacheable(value)  # it may change any moment: served, not kept
            return value

        entry = await self._get("investigations", str(inv), load, compress)
        return None if entry.body == b"null" else entry

    async def contracts_of(
        self, orgao: str, *, year: int | None = None, limit: int = 100, offset: int = 0, compress: bool = False
    ) -> Entry:
        async def load() -> Any:
            async with self.pool.acquire() as conn:
                return await queries.contracts_of(conn, orgao, year=year, limit=limit, offset=offset)

        key = f"{orgao}:{year if year is not None else '*'}:{limit}:{offset}"
        return await self._get("contracts", key, load, compress)

    async def flags_by_organ_month(
        self, *, orgao: str | None = None, since: str | None = None, until: str | None = None, compress: bool = False
    ) -> Entry:
        async def load() -> Any:
            async with self.pool.acquire() as conn:
                return await queries.flags_by_organ_month(conn, orgao=orgao, since=since, until=until)

        key = f"{orgao or '*'}:{since or ''}:{until or ''}"
        return await self._get("flags", key, load, compress)

    async def record(self, key: str, load: Any, *, compress: bool = False) -> Entry:
        """One of the API's answers under ``records:<key>`` (``load`` returns it; raise :class:`Uncacheable` to
        serve without keeping)."""
        return await self._get("records", key, load, compress)
