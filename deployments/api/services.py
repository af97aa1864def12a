"""What the API's routes use, made once per process (a Serve replica, a uvicorn worker) and closed with it.

Under Ray Serve a replica is handed the stores' URLs (``cidadao up`` resolved them, embedded or not); under
plain uvicorn they come from the settings the same way ``cidadao`` reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from cidadao.cache.redis_tier import cache_client
from cidadao.cache.service import CachedReads, Caches, deployment
from cidadao.settings import Settings
from cidadao.storage.postgres import create_pool
from cidadao.storage.runtime_status import read_all
from cidadao.web.keys import KeyStore
from cidadao.web.ratelimit import RateLimiter
from deployments.api.progress import ProgressHub

__all__ = ["ApiServices", "StoreUrls"]


@dataclass(frozen=True)
class StoreUrls:
    database_url: str
    redis_url: str
    read_replica_url: str | None = None


@dataclass
class ApiServices:
    settings: Settings
    pool: asyncpg.Pool
    reads_pool: asyncpg.Pool  # the read replica's pool, or ``pool`` itself
    redis: aioredis.Redis
    caches: Caches
    reads: CachedReads
    keys: KeyStore
    limiter: RateLimiter
    progress: ProgressHub

    @classmethod
    async def open(
        cls, settings: Settings, urls: StoreUrls, *, caches: Callable[[aioredis.Redis], Caches] | None = None
    ) -> ApiServices:
        """Connect: a Postgres pool (and one on the read replica), a Redis client, the caches over it (``caches``: a
        factory of the caller's, say with the Ray node tier)."""
        pool = await create_pool(urls.database_url, settings)
        reads_pool = pool
        try:
            if urls.read_replica_url:
                reads_pool = await create_pool(urls.read_replica_url, settings)
            client = cache_client(urls.redis_url)
            made = caches(client) if caches is not None else Caches.local(settings, client)
            progress = ProgressHub(client, pool)
        except BaseException:
            await pool.close()
            raise
        return cls(
            settings, pool, reads_pool, client, made, CachedReads(reads_pool, made),
            KeyStore(pool, ttl=settings.api_key_cache_ttl,
                     static=settings.api_keys.get_secret_value() if settings.api_keys else None),
            RateLimiter(client, f"cidadao:ratelimit:{deployment(settings)}:"), progress,
        )  # fmt: skip

    async def close(self) -> None:
        await self.progress.close()
        await self.caches.close()
        await self.redis.aclose()
        if self.reads_pool is not self.pool:
            await self.reads_pool.close()
        await self.pool.close()

    async def ready(self) -> dict[str, str]:
        """Each store's state, for ``/health/ready`` and Serve's ``check_health``: ``ok`` or what failed."""
        out: dict[str, str] = {}
        try:
            async with self.pool.acquire(timeout=2.0) as conn:
                await conn.fetchval("SELECT 1")
            out["postgres"] = "ok"
        except Exception as exc:  # any failure is "not ready", reported by name
            out["postgres"] = f"unavailable: {type(exc).__name__}"
        try:
            await self.redis.ping()
            out["redis"] = "ok"
        except Exception as exc:
            out["redis"] = f"unavailable: {type(exc).__name__}"
        runtimes = await read_all(self.redis) if out["redis"] == "ok" else []
        out["agents"] = f"{len(runtimes)} runtime(s) on the queue" if runtimes else "none running: queued work waits"
        return out
