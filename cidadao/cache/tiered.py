"""The read path through the tiers: L1 (memory: each process's front, the node's object-store actor) → L2
(Redis) → L3 (the source: a Postgres query, a stored result), promoting on the way back.

Stampede protection, per key:

- **XFetch**: a fresh entry is recomputed early with a probability that grows as its expiry nears and with
  how long it took to compute (``delta · β · −ln(U)`` ahead of it), so hot keys rarely expire at all;
- **stale-while-revalidate**: an entry past its expiry but within ``stale_ttl`` is served at once while one
  caller refreshes it in the background;
- **single flight**: one computation per key in a process (the others await it) and across processes (a Redis
  lock with a random token and an expiry, released by its owner only); the others wait for the value to land in
  L2, at most ``follower_wait`` seconds, then compute it themselves rather than fail.

Invalidation (:meth:`TieredCache.invalidate`) bumps the machine's generations first
(:mod:`cidadao.cache.generations`), then drops L1 and L2. Every read takes its key's generations before it
looks: an entry, or a computation in flight, from before an invalidation is never served after it, and a
value computed from data older than an invalidation is never stored after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from cidadao.cache.entry import CorruptEntry, Entry, make_entry, pack, unpack
from cidadao.cache.generations import Generations, Snapshot
from cidadao.cache.lru import LRU
from cidadao.cache.redis_tier import RedisTier
from cidadao.observability import CACHE_HIT_RATIO, CACHE_LOCK_WAIT, CACHE_RECOMPUTATIONS, CACHE_REQUESTS

__all__ = ["L1", "CacheConfig", "LocalL1", "TieredCache", "Uncacheable"]

log = logging.getLogger(__name__)
Loader = Callable[[], Awaitable[Any]]


class Uncacheable(Exception):
    """Raised by a loader with a value to return now but not to keep (an investigation still running)."""

    def __init__(self, value: Any) -> None:
        super().__init__("not to be cached")
        self.value = value


class _Skipped(Exception):
    """A background refresh that found another process refreshing the key."""


class L1(Protocol):
    """The memory tier. ``get`` returns an entry only if it was stored under generations that still hold."""

    async def get(self, key: str, snap: Snapshot) -> tuple[Entry | None, str]:
        """The entry and the tier that had it, or None and the last tier asked (``l1``: this process's memory,
        ``node``: the node's object-store actor)."""

    async def put(self, key: str, entry: Entry, snap: Snapshot, ttl_s: float) -> None: ...

    async def drop(self, keys: Iterable[str], prefixes: Iterable[str]) -> None: ...


class LocalL1:
    """L1 in this process only (no Ray): an LRU bounded by entries and bytes."""

    def __init__(self, generations: Generations, max_entries: int, max_bytes: int) -> None:
        self.generations = generations
        self.lru: LRU[tuple[Entry, Snapshot]] = LRU(max_entries, max_bytes)

    async def get(self, key: str, snap: Snapshot) -> tuple[Entry | None, str]:
        found = self.lru.get(key)
        if found is None or not self.generations.holds(found[1]):
            return None, "l1"
        return found[0], "l1"

    async def put(self, key: str, entry: Entry, snap: Snapshot, ttl_s: float) -> None:
        if self.generations.holds(snap):
            self.lru.put(key, (entry, snap), entry.size, time.time() + ttl_s)

    async def drop(self, keys: Iterable[str], prefixes: Iterable[str]) -> None:
        self.lru.pop_many(keys, prefixes)


@dataclass(frozen=True)
class CacheConfig:
    ttl_s: float = 300.0  # an entry is fresh this long (the L1 TTL: what reads see)
    l2_ttl_s: float = 3600.0  # Redis keeps it this long
    stale_ttl_s: float = 60.0
    beta: float = 1.0
    lock_ttl_s: float = 30.0
    follower_wait_s: float = 10.0
    compression_level: int = 11

    @classmethod
    def from_settings(cls, settings: Any) -> CacheConfig:
        return cls(
            settings.cache_l1_ttl, settings.cache_l2_ttl, settings.cache_stale_ttl, settings.cache_xfetch_beta,
            settings.cache_lock_ttl, settings.cache_follower_wait, settings.compression_level,
        )  # fmt: skip


class TieredCache:
    def __init__(
        self, namespace: str, generations: Generations, *, l1: L1 | None = None, l2: RedisTier | None = None,
        config: CacheConfig | None = None, rng: random.Random | None = None,
    ) -> None:  # fmt: skip
        self.namespace, self.generations, self.l1, self.l2 = namespace, generations, l1, l2
        self.config = config or CacheConfig()
        self._rng = rng or random.Random()
        self._flights: dict[tuple[str, Snapshot], asyncio.Future[Entry]] = {}
        self._refreshing: set[asyncio.Task[None]] = set()
        self._queued: set[tuple[str, Snapshot]] = set()  # refreshes started, not yet in flight
        self.lookups = self.hits = self.computed = 0
        for tier in ("l1", "node", "l2"):
            for result in ("hit", "miss"):
                CACHE_REQUESTS.init(cache=namespace, tier=tier, result=result)
        for reason in ("miss", "early", "stale"):
            CACHE_RECOMPUTATIONS.init(cache=namespace, reason=reason)
        CACHE_LOCK_WAIT.init(cache=namespace)

    def _gen_key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    # --- reading -----------------------------------------------------------------------------------

    async def get(self, key: str, load: Loader, *, compress: bool = False) -> Entry:
        """The entry for ``key``: from the first tier that has it, else ``load()`` (L3) once for everyone."""
        self.lookups += 1
        snap = self.generations.snapshot(self._gen_key(key))  # before any look: see the module's docstring
        now = time.time()
        if self.l1 is not None:
            entry, tier = await self.l1.get(self._gen_key(key), snap)
            if entry is None or tier == "node":  # a node hit is a miss of the process's memory first
                CACHE_REQUESTS.inc(cache=self.namespace, tier="l1", result="miss")
            if entry is not None or tier == "node":
                CACHE_REQUESTS.inc(cache=self.namespace, tier=tier, result="hit" if entry else "miss")
            if entry is not None and self._usable(entry, now):
                return self._served(key, entry, load, compress, snap, now)
        # one look at L2 (and, on a miss, one computation) per key and generation in this process
        entry = await self._compute(key, load, compress, snap, "miss")
        self._ratio()
        return entry

    async def _from_l2(self, key: str, load: Loader, compress: bool, snap: Snapshot) -> tuple[Entry | None, Any]:
        """L2's entry if usable (promoted to L1), and the generations a fill must still find there."""
        assert self.l2 is not None
        packed, l2_gens = await self.l2.get(key)
        entry = self._unpack(key, packed)
        CACHE_REQUESTS.inc(cache=self.namespace, tier="l2", result="hit" if entry else "miss")
        now = time.time()
        if entry is None or not self._usable(entry, now):
            return None, l2_gens
        if self.l1 is not None:
            await self.l1.put(self._gen_key(key), entry, snap, self._l1_ttl(entry, now))
        return self._served(key, entry, load, compress, snap, now, counted=False), l2_gens

    def _usable(self, entry: Entry, now: float) -> bool:
        return now < entry.expires + self.config.stale_ttl_s

    def _l1_ttl(self, entry: Entry, now: float) -> float:
        return max(0.001, entry.expires + self.config.stale_ttl_s - now)

    def _served(
        self, key: str, entry: Entry, load: Loader, compress: bool, snap: Snapshot, now: float, *, counted: bool = True
    ) -> Entry:
        """A hit: refresh in the background when stale, or early by XFetch's draw."""
        if counted:
            self.hits += 1
            self._ratio()
        if now >= entry.expires:
            self._refresh(key, load, compress, snap, "stale")
        elif self.config.beta > 0 and entry.delta > 0:
            ahead = -entry.delta * self.config.beta * math.log(max(self._rng.random(), 1e-300))
            if now + ahead >= entry.expires:
                self._refresh(key, load, compress, snap, "early")
        return entry

    def _ratio(self) -> None:
        CACHE_HIT_RATIO.set(self.hits / self.lookups if self.lookups else 0.0, cache=self.namespace)

    def _unpack(self, key: str, packed: bytes | None) -> Entry | None:
        if packed is None:
            return None
        try:
            return unpack(packed)
        except CorruptEntry as exc:  # a miss; the computation that follows replaces it
            log.warning("cache %s: entry %r in Redis is unreadable (%s); recomputing", self.namespace, key, exc)
            return None

    # --- computing once ----------------------------------------------------------------------------

    def _refresh(self, key: str, load: Loader, compress: bool, snap: Snapshot, reason: str) -> None:
        if (key, snap) in self._flights or (key, snap) in self._queued:
            return  # already on its way
        self._queued.add((key, snap))

        async def run() -> None:
            try:
                await self._compute(key, load, compress, snap, reason, background=True)
            except _Skipped:
                pass
            except Exception as exc:  # the entry stays until it expires; the next reader tries again
                log.warning("cache %s: refreshing %r failed: %s: %s", self.namespace, key, type(exc).__name__, exc)

        def done(task: asyncio.Task[None]) -> None:
            self._refreshing.discard(task)
            self._queued.discard((key, snap))

        task = asyncio.get_running_loop().create_task(run())
        self._refreshing.add(task)
        task.add_done_callback(done)

    async def _compute(
        self, key: str, load: Loader, compress: bool, snap: Snapshot, reason: str, *, background: bool = False
    ) -> Entry:
        """The value computed once: by this caller, or awaited from the one computing it (in this process, or —
        through L2 — in another). A background refresh that finds another process at it leaves it there."""
        flight = self._flights.get((key, snap))
        if flight is not None:  # someone in this process is getting it under the same generations
            started = time.perf_counter()
            try:
                entry = await asyncio.wait_for(asyncio.shield(flight), self.config.follower_wait_s)
                if not background:
                    self.hits += 1  # served without a computation of its own
                    self._ratio()
                return entry
            except (TimeoutError, _Skipped):
                pass  # bounded wait (or a refresh that stepped aside): compute it ourselves
            finally:
                CACHE_LOCK_WAIT.observe(time.perf_counter() - started, cache=self.namespace)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._flights[key, snap] = future
        try:
            entry = await self._compute_once(key, load, compress, snap, reason, background)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: followers see it; nobody else must be warned
            raise
        else:
            future.set_result(entry)
            return entry
        finally:
            self._flights.pop((key, snap), None)

    async def _compute_once(
        self, key: str, load: Loader, compress: bool, snap: Snapshot, reason: str, background: bool
    ) -> Entry:
        token: str | None = ""
        l2_gens = None
        if self.l2 is not None:
            if not background:  # a miss looks in L2 first; a refresh wants a new value
                found, l2_gens = await self._from_l2(key, load, compress, snap)
                if found is not None:
                    self.hits += 1
                    self._ratio()
                    return found
            self._ratio()
            token = await self.l2.lock(key, self.config.lock_ttl_s)
            if token is None:  # another process computes it: wait for it in L2
                if background:
                    raise _Skipped
                waited = await self._follow(key, snap)
                if waited is not None:
                    return waited
                token = ""  # waited long enough: compute it ourselves
            if l2_gens is None:
                _, l2_gens = await self.l2.get(key)
        try:
            started = time.perf_counter()
            try:
                value = await load()
            except Uncacheable as passing:
                return make_entry(passing.value, ttl=0.0, compress=compress, level=self.config.compression_level)
            delta = time.perf_counter() - started
            self.computed += 1
            CACHE_RECOMPUTATIONS.inc(cache=self.namespace, reason=reason)
            entry = make_entry(value, ttl=self.config.ttl_s, delta=delta, compress=compress,
                               level=self.config.compression_level)  # fmt: skip
            if self.l2 is not None:
                await self.l2.put(key, pack(entry), l2_gens, self.config.l2_ttl_s)
            if self.l1 is not None:
                await self.l1.put(self._gen_key(key), entry, snap, self._l1_ttl(entry, time.time()))
            return entry
        finally:
            if self.l2 is not None and token:
                await self.l2.unlock(key, token)

    async def _follow(self, key: str, snap: Snapshot) -> Entry | None:
        """Wait (bounded) for the process holding the lock to store a fresh value in L2."""
        assert self.l2 is not None
        started = time.perf_counter()
        pause = 0.002
        try:
            while time.perf_counter() - started < self.config.follower_wait_s:
                await asyncio.sleep(pause)  # polling Redis: the lock holder announces nothing
                pause = min(pause * 2, 0.05)
                packed, _ = await self.l2.get(key)
                entry = self._unpack(key, packed)
                if entry is not None and time.time() < entry.expires and self.generations.holds(snap):
                    if self.l1 is not None:
                        await self.l1.put(self._gen_key(key), entry, snap, self._l1_ttl(entry, time.time()))
                    return entry
                if not await self._locked(key):
                    return None  # the holder gave up (or its lock expired) without a value
            return None
        finally:
            CACHE_LOCK_WAIT.observe(time.perf_counter() - started, cache=self.namespace)

    async def _locked(self, key: str) -> bool:
        assert self.l2 is not None
        try:
            return bool(await self.l2.client.exists(self.l2.key(key) + "~lock"))
        except Exception:
            return False

    # --- writing -----------------------------------------------------------------------------------

    async def invalidate(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> None:
        """Forget ``keys`` and every key under ``prefixes`` in every tier of this machine (generations first)."""
        keys, prefixes = list(keys), list(prefixes)
        self.generations.bump((self._gen_key(k) for k in keys), everything=bool(prefixes))
        if self.l1 is not None:
            await self.l1.drop([self._gen_key(k) for k in keys], [self._gen_key(p) for p in prefixes])
        if self.l2 is not None:
            await self.l2.invalidate(keys, prefixes)

    async def close(self) -> None:
        for task in list(self._refreshing):
            task.cancel()
        for task in list(self._refreshing):
            with contextlib.suppress(asyncio.CancelledError):
                await task
