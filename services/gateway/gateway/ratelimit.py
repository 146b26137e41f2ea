"""Sliding-window rate limiting: at most ``limit`` requests in any ``window_s`` seconds, per key.

Two implementations pass one test suite: ``MemoryLimiter`` (one replica) and ``RedisLimiter`` (shared by all
replicas; one Lua script per hit, so check-and-record is atomic and uses the Redis server's clock).
"""

from __future__ import annotations

import abc
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit."""

    allowed: bool
    limit: int
    remaining: int
    #: seconds until a request slot frees up (the oldest counted request leaves the window)
    reset_s: float

    @property
    def retry_after_s(self) -> int:
        """Whole seconds to wait before retrying (at least 1)."""
        return max(1, math.ceil(self.reset_s))

    def headers(self, window_s: int) -> dict[str, str]:
        """``RateLimit-*`` headers (IETF draft httpapi-ratelimit-headers), plus ``Retry-After`` when refused."""
        h = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(max(0, math.ceil(self.reset_s))),
            "RateLimit-Policy": f"{self.limit};w={window_s}",
        }
        if not self.allowed:
            h["Retry-After"] = str(self.retry_after_s)
        return h


class RateLimiter(abc.ABC):
    """Counts requests per key in a sliding window."""

    name: str

    @abc.abstractmethod
    async def hit(self, key: str, *, limit: int, window_s: int) -> Decision:
        """Record a request for ``key`` if the window has room; say whether it may proceed."""

    async def close(self) -> None:  # noqa: B027  (optional hook: most limiters hold nothing)
        """Release connections."""

    async def ping(self) -> None:  # noqa: B027
        """Raise unless the limiter's backend answers."""


class MemoryLimiter(RateLimiter):
    """In-process sliding log (monotonic clock). Single-threaded asyncio makes each hit atomic."""

    name = "memory"

    def __init__(self, *, max_keys: int = 200_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self.max_keys = max_keys
        self._last_sweep = time.monotonic()

    def _sweep(self, now: float, window_s: int) -> None:
        # drop keys whose newest hit left the window, so idle clients cost no memory
        for key in [k for k, q in self._hits.items() if not q or q[-1] <= now - window_s]:
            del self._hits[key]
        self._last_sweep = now

    async def hit(self, key: str, *, limit: int, window_s: int) -> Decision:
        now = time.monotonic()
        if now - self._last_sweep > window_s or len(self._hits) > self.max_keys:
            self._sweep(now, window_s)
        q = self._hits.get(key)
        if q is None:
            q = self._hits[key] = deque()
        cutoff = now - window_s
        while q and q[0] <= cutoff:
            q.popleft()
        if len(q) >= limit:
            return Decision(False, limit, 0, q[0] + window_s - now if q else float(window_s))
        q.append(now)
        return Decision(True, limit, limit - len(q), q[0] + window_s - now)


# KEYS[1] = the window's sorted set; ARGV = limit, window (ms), unique member suffix.
# Scores are the server's clock in ms, so replicas with skewed clocks still share one window.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, limit - count, reset}
"""


class RedisLimiter(RateLimiter):
    """Sliding log in a Redis sorted set per key, checked and updated by one atomic Lua script."""

    name = "redis"

    def __init__(self, redis: Redis[Any], *, prefix: str = "reelforge:rl", owns_client: bool = True) -> None:
        self.redis, self.prefix, self._owns = redis, prefix, owns_client
        self._script: Any = redis.register_script(_SCRIPT)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "reelforge:rl") -> RedisLimiter:
        """A limiter on the Redis at ``url``."""
        return cls(Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2), prefix=prefix)

    async def hit(self, key: str, *, limit: int, window_s: int) -> Decision:
        allowed, remaining, reset_ms = await self._script(
            keys=[f"{self.prefix}:{key}"], args=[limit, window_s * 1000, secrets.token_hex(6)]
        )
        return Decision(bool(allowed), limit, int(remaining), int(reset_ms) / 1000)

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        if self._owns:
            await self.redis.aclose()  # type: ignore[attr-defined]  # the stubs predate aclose
