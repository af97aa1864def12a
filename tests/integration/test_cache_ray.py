"""L1 in the Ray object store: the node's cache actor (bounds, generations), each process's front (a hot key
costs no actor call), and a read after an ingest never returning the old page — the ingest run as the CLI runs
it, outside Ray, on the same machine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import ray

from actors.cache import CacheStore, RayL1, cache_store, invalidate_everywhere, ray_caches
from cidadao.cache import Generations, cache_client, make_entry, pack, unpack
from cidadao.cache.service import CachedReads, Caches, generations_name
from cidadao.commands import IngestFiles, ingest_files
from cidadao.contracts.synthetic import generate
from cidadao.settings import Settings
from cidadao.storage.postgres import create_pool
from tests.helpers import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_cache_actor_left(local_ray: None, store_settings: Settings) -> Iterator[None]:
    """The node's cache actor is detached: end it, so later tests on this Ray start from a clean node."""
    yield
    ray.kill(cache_store(store_settings))


@pytest.fixture
def settings(store_settings: Settings, tmp_path: Path) -> Settings:
    """The session's stores; a node actor of 3 entries, a process memory of 2 (the bounds are looked at)."""
    return store_settings.model_copy(update={"cache_node_entries": 3, "cache_l1_entries": 2})


async def test_the_node_actor_bounds_its_entries_and_honours_generations(local_ray: None, settings: Settings) -> None:
    store: Any = ray.remote(CacheStore).remote(settings, "test-cache")  # a private one: the bound is 3
    gens = Generations(generations_name(settings))
    for i in range(4):
        key = f"t:{i}"
        assert await store.put.remote(key, pack(make_entry({"i": i}, ttl=60)), gens.snapshot(key), 60)
    assert await store.get.remote("t:0") is None  # least recently used, pushed out
    assert unpack(await store.get.remote("t:3")).value() == {"i": 3}  # read from the object store
    gens.bump(["t:3"])  # any process of the machine (this one: the test) invalidates...
    assert await store.get.remote("t:3") is None  # ...and the actor serves it no more
    stale = gens.snapshot("t:9")
    gens.bump(["t:9"])
    assert not await store.put.remote("t:9", pack(make_entry(9, ttl=60)), stale, 60)  # a fill from before: out
    health = await store.health.remote()
    assert health["entries"] <= 3 and health["evicted"] >= 1
    ray.kill(store)


async def test_a_hot_key_is_served_by_the_front_and_invalidation_reaches_every_node(
    local_ray: None, settings: Settings
) -> None:
    l1 = RayL1(settings)
    key = "front:hot"
    snap = l1.generations.snapshot(key)
    await l1.put(key, make_entry({"v": 1}, ttl=60), snap, 60)  # the actor's part is not awaited:
    await cache_store(settings).put.remote(key, pack(make_entry({"v": 1}, ttl=60)), snap, 60)  # make sure of it
    l1.front.clear()
    entry, tier = await l1.get(key, snap)  # from the node's actor, then kept in the front
    assert entry is not None and entry.value() == {"v": 1} and tier == "node"
    entry, tier = await l1.get(key, snap)
    assert entry is not None and tier == "l1"
    assert await invalidate_everywhere(settings, [key], []) == len([n for n in ray.nodes() if n["Alive"]])
    entry, tier = await l1.get(key, l1.generations.snapshot(key))
    assert entry is None  # gone from the front (its generation moved) and from the actor
    assert await cache_store(settings).get.remote(key) is None


def _two_halves(tmp_path: Path) -> tuple[list[Path], Path, Path]:
    """Synthetic suppliers and sanctions, and their contracts in two halves (the same organs in both)."""
    files = generate(tmp_path / "a", 3000, 21, "portal").files
    lines = Path(files["contracts"]).read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2 :]))
    return [Path(p) for name, p in files.items() if name not in ("labels", "manifest", "contracts")], first, second


async def test_a_read_after_an_ingest_never_returns_the_old_page(
    local_ray: None, store_settings: Settings, database_url: str, redis_url: str, db: asyncpg.Connection,
    tmp_path: Path,
) -> None:  # fmt: skip
    paths, first, second = _two_halves(tmp_path)
    await ingest_files(db, IngestFiles(paths=[*paths, first]), store_settings)
    organ = await db.fetchval("SELECT orgao_codigo FROM contracts GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
    before = await db.fetchval("SELECT count(*) FROM contracts WHERE orgao_codigo = $1", organ)

    reader_client, writer_client = cache_client(redis_url), cache_client(redis_url)
    pool = await create_pool(database_url, store_settings, min_size=1, max_size=4)
    reads = CachedReads(pool, ray_caches(store_settings, reader_client))  # the API's side: in Ray
    writer = Caches.local(store_settings, writer_client)  # the CLI's side: outside Ray, same machine
    try:
        first = await reads.contracts_of(organ, limit=5)
        assert first.value()["total"] == before
        again = await asyncio.gather(*(reads.contracts_of(organ, limit=5) for _ in range(20)))
        assert {e.body for e in again} == {first.body}  # served from the cache
        reports = await ingest_files(db, IngestFiles(paths=[second]), store_settings, caches=writer)
        assert organ in reports[0].organs
        after = await db.fetchval("SELECT count(*) FROM contracts WHERE orgao_codigo = $1", organ)
        assert after > before
        page = await reads.contracts_of(organ, limit=5)  # the ingest has returned: the new count, at once
        assert page.value()["total"] == after
        events = await db.fetch("SELECT data FROM event_outbox WHERE type = 'cache.invalidate' ORDER BY id DESC")
        assert any(f'"contracts:{organ}:"' in r["data"] for r in events)  # for the other machines
    finally:
        await reads.caches.close()
        await writer.close()
        await pool.close()
        await reader_client.aclose()
        await writer_client.aclose()


async def test_a_killed_node_actor_is_a_miss_and_is_made_again(local_ray: None, settings: Settings) -> None:
    l1 = RayL1(settings)
    key = "lost:k"
    snap = l1.generations.snapshot(key)
    await cache_store(settings).put.remote(key, pack(make_entry(1, ttl=60)), snap, 60)
    assert (await l1.get(key, snap))[1] == "node"
    ray.kill(cache_store(settings))
    l1.front.clear()
    assert await l1.get(key, snap) == (None, "node")  # no error reaches the reader: a miss

    async def back() -> bool:  # the next calls make the node's actor again (once the dead one's name is free)
        await l1.put(key, make_entry(2, ttl=60), snap, 60)
        l1.front.clear()
        entry, tier = await l1.get(key, snap)
        return entry is not None and entry.value() == 2 and tier == "node"

    await eventually(back, "the node's cache actor made again and filled", timeout_s=30)
