"""L2: packed entries in Redis, per namespace, with a TTL, an entry bound evicted least recently used first,
fills that lose to a concurrent invalidation, single-flight locks — and a degraded mode when Redis is away.

Keys: ``<prefix><namespace>:<key>``; beside them ``~index`` (a sorted set: key → last use, for the bound and
its evictions) and ``~gen`` (a hash: invalidation generations by bucket, as in
:mod:`cidadao.cache.generations`, so a value computed before an invalidation is never stored after it).
Each operation is one round trip (a Lua script or a pipeline).

Redis away (connection refused, reset, timed out): every call answers as a miss or a no-op, the tier is
marked degraded (``cidadao_ai_cache_degraded{tier="redis"}`` = 1, one log line) and tried again after
``retry_s``; the first call that works clears it. No exception reaches the caller.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cidadao.cache.generations import bucket_of
from cidadao.observability import CACHE_DEGRADED, CACHE_EVICTIONS

__all__ = ["RedisTier", "cache_client"]

log = logging.getLogger(__name__)
_DOWN: Final = (RedisConnectionError, RedisTimeoutError, OSError)

# KEYS: entry, index, gen. ARGV: now, bucket. -> {value or false, bucket generation, all generation}
_GET: Final = """
local v = redis.call('GET', KEYS[1])
if v then redis.call('ZADD', KEYS[2], 'XX', ARGV[1], KEYS[1]) end
local g = redis.call('HMGET', KEYS[3], ARGV[2], '0')
return {v or false, g[1] or '0', g[2] or '0'}
"""
# KEYS: entry, index, gen. ARGV: value, ttl ms, now, max entries, bucket, gen, all gen, oldest kept score
# -> -1 if an invalidation came first (nothing stored), else the number of entries evicted
_PUT: Final = """
local g = redis.call('HMGET', KEYS[3], ARGV[5], '0')
if (g[1] or '0') ~= ARGV[6] or (g[2] or '0') ~= ARGV[7] then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[8])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
local evicted = 0
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do evicted = evicted + redis.call('DEL', old[i]) end
end
return evicted
"""
# KEYS: lock. ARGV: token
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def cache_client(url: str, *, max_connections: int = 64, timeout_s: float = 2.0) -> aioredis.Redis:
    """A client for the cache: a bounded pool whose callers wait (up to ``timeout_s``) for a free connection
    rather than fail, and operations bounded in time (a Redis that hangs is a Redis that is down)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout_s, socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )  # fmt: skip
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


class RedisTier:
    def __init__(
        self, client: aioredis.Redis, namespace: str, *, ttl_s: float, max_entries: int,
        prefix: str = "cidadao:cache:v1:", retry_s: float = 1.0,
    ) -> None:  # fmt: skip
        self.client: Any = client
        self.namespace, self.ttl_s, self.max_entries, self.retry_s = namespace, ttl_s, max_entries, retry_s
        self.base = f"{prefix}{namespace}:"
        self._index, self._gen = self.base + "~index", self.base + "~gen"
        self._down_until = 0.0
        self.degraded = False
        self.evicted = 0
        self._get = self.client.register_script(_GET)
        self._put = self.client.register_script(_PUT)
        self._release = self.client.register_script(_RELEASE)
        CACHE_DEGRADED.set(0, tier="redis")
        CACHE_EVICTIONS.init(tier="redis")

    def key(self, key: str) -> str:
        return self.base + key

    # --- availability ------------------------------------------------------------------------------

    def _available(self) -> bool:
        return not self.degraded or time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        if not self.degraded:
            log.warning("cache: Redis unavailable (%s: %s); serving from L1 and the database", type(exc).__name__, exc)
        self.degraded = True
        self._down_until = time.monotonic() + self.retry_s
        CACHE_DEGRADED.set(1, tier="redis")

    def _worked(self) -> None:
        if self.degraded:
            log.warning("cache: Redis is back; L2 in use again")
            self.degraded = False
            CACHE_DEGRADED.set(0, tier="redis")

    # --- entries -----------------------------------------------------------------------------------

    async def get(self, key: str) -> tuple[bytes | None, tuple[int, int] | None]:
        """The packed entry (None: a miss) and the generations a fill must still find (None: Redis away)."""
        if not self._available():
            return None, None
        try:
            value, gen, everything = await self._get(
                keys=[self.key(key), self._index, self._gen], args=[time.time(), bucket_of(key)]
            )
        except _DOWN as exc:
            self._failed(exc)
            return None, None
        self._worked()
        return (value or None), (int(gen), int(everything))

    async def put(self, key: str, packed: bytes, generations: tuple[int, int] | None, ttl_s: float) -> bool:
        """Store for ``ttl_s`` (at most the tier's TTL) unless an invalidation of the key came after
        ``generations`` were read; False if not stored."""
        if generations is None or not self._available():
            return False
        now = time.time()
        ttl_s = min(ttl_s, self.ttl_s)  # the index forgets keys older than the tier's TTL
        try:
            evicted = await self._put(
                keys=[self.key(key), self._index, self._gen],
                args=[packed, max(1, int(ttl_s * 1000)), now, self.max_entries, bucket_of(key), generations[0],
                      generations[1], now - self.ttl_s],
            )  # fmt: skip
        except _DOWN as exc:
            self._failed(exc)
            return False
        self._worked()
        if evicted > 0:
            self.evicted += evicted
            CACHE_EVICTIONS.inc(evicted, tier="redis")
        return bool(evicted >= 0)

    async def invalidate(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> bool:
        """Delete ``keys`` and every key under ``prefixes`` and bump their generations; False if Redis is away
        (the entries then expire on their TTL; the event backbone carries the invalidation again)."""
        keys, prefixes = list(keys), list(prefixes)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for b in {bucket_of(k) for k in keys}:
                    pipe.hincrby(self._gen, str(b), 1)
                if prefixes:
                    pipe.hincrby(self._gen, "0", 1)
                if keys:
                    pipe.delete(*(self.key(k) for k in keys))
                    pipe.zrem(self._index, *(self.key(k) for k in keys))
                await pipe.execute()
            if prefixes:  # the index holds every live key (at most max_entries)
                starts = tuple(self.key(p).encode() for p in prefixes)
                doomed = [k for k in await self.client.zrange(self._index, 0, -1) if k.startswith(starts)]
                if doomed:
                    await self.client.delete(*doomed)
                    await self.client.zrem(self._index, *doomed)
        except _DOWN as exc:
            self._failed(exc)
            return False
        self._worked()
        return True

    # --- single flight across processes ------------------------------------------------------------

    async def lock(self, key: str, ttl_s: float) -> str | None:
        """A token if this caller now holds the key's refresh lock (it expires after ``ttl_s``); None if another
        holds it; ``""`` if Redis is away (no lock can be had: the caller refreshes on its own)."""
        if not self._available():
            return ""
        token = secrets.token_hex(16)
        try:
            won = await self.client.set(self.key(key) + "~lock", token, nx=True, px=max(1, int(ttl_s * 1000)))
        except _DOWN as exc:
            self._failed(exc)
            return ""
        self._worked()
        return token if won else None

    async def unlock(self, key: str, token: str) -> None:
        """Release the lock if this token still holds it (never another owner's after ours expired)."""
        if not token:
            return
        try:
            await self._release(keys=[self.key(key) + "~lock"], args=[token])
        except _DOWN as exc:
            self._failed(exc)

    async def size(self) -> int:
        return int(await self.client.zcard(self._index))
