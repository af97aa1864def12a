"""The cache without Redis or Ray: entries (packed, checked, precompressed), the LRU's bounds and deadlines,
the generations, and the read path's stampede protection over an in-process L1."""

from __future__ import annotations

import asyncio
import gzip
import random
from pathlib import Path

import brotli
import pytest

from cidadao.cache import LRU, CacheConfig, CorruptEntry, Generations, LocalL1, TieredCache, make_entry, pack, unpack


def test_an_entry_is_serialised_and_compressed_once_and_checked_on_the_way_back() -> None:
    entry = make_entry({"flags": list(range(500))}, ttl=60, delta=0.25, compress=True, level=5, now=1000.0)
    assert entry.value() == {"flags": list(range(500))} and entry.expires == 1060.0
    assert brotli.decompress(entry.br) == entry.body == gzip.decompress(entry.gzip)
    assert unpack(pack(entry)) == entry
    packed = pack(entry)
    for bad in (packed[:-1], packed[:10], b"XXXX" + packed[4:], packed[:-5] + b"\0" * 5, b""):
        with pytest.raises(CorruptEntry):
            unpack(bad)
    plain = make_entry(b'{"a":1}', ttl=1)
    assert plain.br == plain.gzip == b"" and plain.body == b'{"a":1}'


def test_the_lru_bounds_entries_and_bytes_and_honours_deadlines() -> None:
    now = [0.0]
    lru: LRU[str] = LRU(max_entries=3, max_bytes=100, clock=lambda: now[0])
    for k in "abc":
        assert lru.put(k, k, 10, deadline=50)
    assert lru.get("a") == "a"  # a is now the most recent: b goes first
    lru.put("d", "d", 10, deadline=50)
    assert "b" not in lru and len(lru) == 3 and lru.evicted == 1
    lru.put("big", "big", 80, deadline=50)  # 30 + 80 > 100: the least recent (c) goes
    assert len(lru) == 3 and lru.bytes == 100 and "big" in lru and "c" not in lru
    assert not lru.put("huge", "huge", 101, deadline=50) and "huge" not in lru
    now[0] = 50.0
    assert lru.get("big") is None and lru.expired == 1
    lru.put("x:1", "1", 1, 99)
    lru.put("x:2", "2", 1, 99)
    lru.put("y:1", "3", 1, 99)
    assert lru.pop_many(["y:1"], ["x:"]) == 3 and len(lru) <= 1


def test_generations_are_shared_through_the_file(tmp_path: Path) -> None:
    one, two = Generations("cache-a", tmp_path), Generations("cache-a", tmp_path)
    other = Generations("cache-b", tmp_path)
    snap = one.snapshot("k")
    assert two.holds(snap)
    two.bump(["k"])
    assert not one.holds(snap) and one.holds(one.snapshot("k")) and other.holds(other.snapshot("k"))
    snap = one.snapshot("unrelated")
    two.bump(everything=True)  # a prefix invalidation reaches every key
    assert not one.holds(snap)


def _cache(tmp_path: Path, **config: float) -> TieredCache:
    generations = Generations(f"test-{tmp_path.name}", tmp_path)
    l1 = LocalL1(generations, max_entries=100, max_bytes=10**6)
    return TieredCache("t", generations, l1=l1, config=CacheConfig(**config), rng=random.Random(3))  # type: ignore[arg-type]


async def test_a_thousand_concurrent_readers_of_a_missing_key_cause_one_computation(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    calls = 0
    gate = asyncio.Event()

    async def load() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"n": 42}

    readers = [asyncio.create_task(cache.get("hot", load)) for _ in range(1000)]
    await asyncio.sleep(0)  # let every reader reach the flight
    gate.set()
    entries = await asyncio.gather(*readers)
    assert calls == 1 and all(e.value() == {"n": 42} for e in entries)
    assert (await cache.get("hot", load)).value() == {"n": 42} and calls == 1
    assert (cache.lookups, cache.hits, cache.computed) == (1001, 1000, 1)  # 999 shared the flight, 1 from L1


async def test_stale_entries_are_served_while_one_refresh_runs(tmp_path: Path) -> None:
    cache = _cache(tmp_path, ttl_s=60.0, stale_ttl_s=60.0, beta=0.0)
    version = 0
    refreshed = asyncio.Event()

    async def load() -> int:
        nonlocal version
        version += 1
        if version > 1:
            refreshed.set()
        return version

    assert (await cache.get("k", load)).value() == 1
    assert cache.l1 is not None  # the entry as it is once its TTL has passed: expired 1 s ago
    stale_entry = make_entry(1, ttl=-1.0)
    await cache.l1.put("t:k", stale_entry, cache.generations.snapshot("t:k"), 60)
    stale = await asyncio.gather(*(cache.get("k", load) for _ in range(100)))
    assert {e.value() for e in stale} == {1}  # served at once, stale
    await asyncio.wait_for(refreshed.wait(), 5)
    await cache.close()
    assert version == 2  # one refresh for a hundred stale reads
    assert (await cache.get("k", load)).value() == 2


async def test_xfetch_recomputes_early_as_expiry_nears(tmp_path: Path) -> None:
    cache = _cache(tmp_path, ttl_s=1000.0, beta=1.0)
    computed = 0
    early = asyncio.Event()

    async def slow() -> int:
        nonlocal computed
        computed += 1
        if computed == 2:
            early.set()
        return computed

    await cache.get("far", slow)
    for _ in range(50):  # delta ~0, expiry 1000 s away: never early
        await cache.get("far", slow)
    assert computed == 1
    entry = make_entry(1, ttl=1.0, delta=5.0)  # took 5 s to compute, 1 s left: almost surely early
    assert cache.l1 is not None
    await cache.l1.put("t:near", entry, cache.generations.snapshot("t:near"), 60)
    assert (await cache.get("near", slow)).value() == 1  # served, and refreshed behind it
    await asyncio.wait_for(early.wait(), 5)
    await cache.close()
    assert computed == 2


async def test_an_invalidation_during_a_computation_keeps_its_value_out(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    gate = asyncio.Event()
    data = {"v": "old"}

    async def load() -> str:
        seen = data["v"]
        await gate.wait()
        return seen

    reading = asyncio.create_task(cache.get("k", load))
    await asyncio.sleep(0)
    data["v"] = "new"
    await cache.invalidate(["k"])  # the write returned
    after = asyncio.create_task(cache.get("k", load))  # a read after it must not join the old flight
    await asyncio.sleep(0)
    gate.set()
    assert (await reading).value() == "old" and (await after).value() == "new"
    assert (await cache.get("k", load)).value() == "new"  # the old value was never stored


async def test_a_failed_computation_reaches_every_waiter_and_is_not_cached(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    attempts = 0

    async def flaky() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise RuntimeError("source down")
        return 7

    results = await asyncio.gather(*(cache.get("k", flaky) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and attempts == 1
    assert (await cache.get("k", flaky)).value() == 7
