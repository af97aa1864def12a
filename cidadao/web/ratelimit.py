"""Rate limits in Redis: one token bucket per API key and per client address, shared by every replica.

A bucket holds up to ``burst`` tokens and refills at ``per_minute / 60`` tokens a second; each request takes
one. The whole step — refill by the time elapsed, take, remember — is one Lua script run atomically by Redis,
on Redis's own clock (replicas' clocks never disagree about a bucket). A refused request learns when a token
will be there: ``Retry-After``.

A busy client does not cost a Redis call per request: a process takes up to a tenth of the burst (at most 100)
at once and spends it locally within a second; tokens it did not spend in that second are lost, so the
limit holds across replicas and errs strict. With a burst under 20 every request asks Redis.

If Redis cannot be reached the request is let through (fail open) and ``cidadao_ai_rate_limit_degraded`` is
set: an outage of the limiter must not become an outage of the API.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Final

import redis.asyncio as aioredis
import redis.exceptions

from cidadao.observability import RATE_LIMIT_DEGRADED, RATE_LIMITED

__all__ = ["Decision", "RateLimiter"]

_log = logging.getLogger("cidadao.web")
_MAX_LEASE: Final = 100
_LEASE_S: Final = 1.0

# KEYS[1] bucket; ARGV: rate (tokens/s), burst, most tokens wanted. Grants between 1 and that many (as many as
# the bucket holds); returns {tokens granted (0: refused), tokens left (floor), ms until one is there}.
_BUCKET: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local granted = math.min(math.floor(tokens), cost)
local wait_ms = 0
if granted >= 1 then
  tokens = tokens - granted
else
  granted = 0
  wait_ms = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {granted, math.floor(tokens), wait_ms}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # the bucket's size
    remaining: int
    retry_after_s: int  # whole seconds until a token is there (0 when allowed)

    def headers(self) -> dict[str, str]:
        out = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining)}
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_s)
        return out


class RateLimiter:
    """Token buckets under ``prefix`` in ``client``'s Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix
        self._script = client.register_script(_BUCKET)
        self._degraded_since: float | None = None
        self._leased: dict[str, tuple[int, float, int]] = {}  # bucket: (tokens left here, until, left in Redis)
        RATE_LIMIT_DEGRADED.set(0)

    async def take(self, subject: str, who: str, *, per_minute: float, burst: int) -> Decision:
        """One request by ``who`` (a key id, an address) of kind ``subject`` (``key``, ``address``)."""
        if per_minute <= 0:  # no limit configured
            return Decision(True, burst, burst, 0)
        bucket = f"{subject}:{who}"
        now = time.monotonic()
        held = self._leased.get(bucket)
        if held is not None and held[0] > 0 and now < held[1]:
            self._leased[bucket] = (held[0] - 1, held[1], held[2])
            return Decision(True, burst, held[2] + held[0] - 1, 0)
        lease = max(1, min(burst // 10, _MAX_LEASE))
        try:
            granted, remaining, wait_ms = await self._script(
                keys=[f"{self.prefix}{bucket}"], args=[per_minute / 60.0, burst, lease]
            )
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            if self._degraded_since is None:
                self._degraded_since = time.monotonic()
                RATE_LIMIT_DEGRADED.set(1)
                _log.warning("rate limiter unreachable, letting requests through: %s", exc)
            return Decision(True, burst, burst, 0)
        if self._degraded_since is not None:
            self._degraded_since = None
            RATE_LIMIT_DEGRADED.set(0)
        granted, remaining = int(granted), int(remaining)
        if granted == 0:
            self._leased.pop(bucket, None)
            RATE_LIMITED.inc(subject=subject)
            return Decision(False, burst, 0, max(1, math.ceil(int(wait_ms) / 1000)))
        if granted > 1:
            if len(self._leased) > 100_000:  # one entry per busy client; bound the memory they take
                self._leased.clear()
            self._leased[bucket] = (granted - 1, now + _LEASE_S, remaining)
        return Decision(True, burst, remaining + granted - 1, 0)
