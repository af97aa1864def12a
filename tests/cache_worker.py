"""A process with a tiered cache of its own, driven over stdin/stdout (one JSON object a line), so tests can
put several real processes on one Redis and one machine's generations.

    python -m tests.cache_worker REDIS_URL DATABASE_URL GENERATIONS_DIR NAMESPACE

Commands: ``{"op": "get", "key": "k", "readers": 250}`` → ``{"values": [...]}`` (that many concurrent reads);
``{"op": "invalidate", "keys": ["k"]}`` → ``{"ok": true}``. The source (L3) is the ``cache_source`` table; each
computation is counted in Redis (``<namespace>:computed``) and takes at least 0.2 s, so readers overlap.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from cidadao.cache import CacheConfig, Generations, LocalL1, RedisTier, TieredCache, cache_client


async def main(redis_url: str, database_url: str, directory: str, namespace: str) -> None:
    client: Any = cache_client(redis_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    generations = Generations(f"test-{namespace}", Path(directory))
    cache = TieredCache(
        namespace, generations, l1=LocalL1(generations, 100, 10**6),
        l2=RedisTier(client, namespace, ttl_s=60, max_entries=100, prefix="test:cache:"),
        config=CacheConfig(ttl_s=60, l2_ttl_s=60, follower_wait_s=10),
    )  # fmt: skip

    def loader(key: str) -> Any:
        async def load() -> Any:
            await client.incr(f"test:cache:{namespace}:computed")
            async with pool.acquire() as conn:
                return await conn.fetchval(
                    "SELECT value FROM cache_source, pg_sleep(0.2) WHERE key = $1", key
                )  # fmt: skip

        return load

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(orjson.dumps({"ready": True}).decode(), flush=True)
    while line := await reader.readline():
        command = orjson.loads(line)
        if command["op"] == "get":
            key = command["key"]
            entries = await asyncio.gather(*(cache.get(key, loader(key)) for _ in range(command.get("readers", 1))))
            out: dict[str, Any] = {"values": [e.value() for e in entries]}
        else:
            await cache.invalidate(command.get("keys", []), command.get("prefixes", []))
            out = {"ok": True}
        print(orjson.dumps(out).decode(), flush=True)
    await cache.close()
    await pool.close()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
