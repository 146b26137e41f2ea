"""Sliding-window rate limiting: at most ``limit`` requests in any ``window_s`` seconds, per key.

Two implementations pass one test suite: ``MemoryLimiter`` (one replica) and ``RedisLimiter`` (shared by all
replicas; one Lua script per hit, so check-and-record is atomic and uses the Redis server's clock).
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


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

    @abc.abstractmethod
    async def release(self, key: str) -> None:
        """Give back the newest counted slot of ``key`` (an attempt charged up front that turned out fine)."""

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
        # still too many live keys (a flood of addresses): forget the longest-known ones; memory stays bounded
        # and the sweep is not repeated on every request (it is O(keys))
        for key in list(itertools.islice(self._hits, max(0, len(self._hits) - self.max_keys))):
            del self._hits[key]
        self._last_sweep = now

    async def hit(self, key: str, *, limit: int, window_s: int) -> Decision:
        now = time.monotonic()
        since = now - self._last_sweep
        if since > window_s or (len(self._hits) > self.max_keys and since > 1.0):
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

    async def release(self, key: str) -> None:
        q = self._hits.get(key)
        if q:
            q.pop()


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


Call = tuple[str, int, int, str]  # key, limit, window (ms), unique member suffix


class RedisLimiter(RateLimiter):
    """Sliding log in a Redis sorted set per key, checked and updated by one atomic Lua script.

    Every hit is one EVALSHA. Hits made in the same event-loop iteration (concurrent requests) travel to
    Redis in one pipeline: each script still runs atomically, in order, so counting is exactly what it would
    be one by one, and the client's work per hit roughly halves under load. A lone hit goes out on its own.
    """

    name = "redis"

    def __init__(self, redis: Redis[Any], *, prefix: str = "reelforge:rl", owns_client: bool = True) -> None:
        self.redis, self.prefix, self._owns = redis, prefix, owns_client
        self._script: Any = redis.register_script(_SCRIPT)
        # members of one window must be unique even within one millisecond, across replicas: a random
        # per-process nonce plus a counter (no random bytes from the OS per request)
        self._nonce = secrets.token_hex(6)
        self._seq = itertools.count()
        self._batch: list[tuple[Call, asyncio.Future[Any]]] = []
        self._senders: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "reelforge:rl") -> RedisLimiter:
        """A limiter on the Redis at ``url``."""
        return cls(Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2), prefix=prefix)

    async def hit(self, key: str, *, limit: int, window_s: int) -> Decision:
        call: Call = (f"{self.prefix}:{key}", limit, window_s * 1000, f"{self._nonce}{next(self._seq):x}")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()
        if not self._batch:
            loop.call_soon(self._flush)  # after every request of this iteration has added its hit
        self._batch.append((call, answer))
        allowed, remaining, reset_ms = await answer
        return Decision(bool(allowed), limit, int(remaining), int(reset_ms) / 1000)

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        sender = asyncio.ensure_future(self._send(batch))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)

    async def _send(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._evalsha([call for call, _ in batch])
        except asyncio.CancelledError:
            for _, answer in batch:
                answer.cancel()
            raise
        except Exception as exc:  # Redis down or slow: every hit of the batch fails (and falls back)
            results = [exc] * len(batch)
        for (_, answer), result in zip(batch, results, strict=True):
            if answer.done():  # its request went away
                continue
            if isinstance(result, Exception):
                answer.set_exception(result)
            else:
                answer.set_result(result)

    async def _evalsha(self, calls: list[Call]) -> list[Any]:
        """Run the script once per call; a call's Redis error is returned in its place."""
        client: Any = self.redis  # the installed stubs leave evalsha/script_load untyped
        if len(calls) == 1:
            # EVALSHA directly: redis-py's Script.__call__ costs ~20 µs more for the same single command
            try:
                return [await client.evalsha(self._script.sha, 1, *calls[0])]
            except NoScriptError:  # a restarted or different Redis: load the script and run it once more
                self._script.sha = await client.script_load(self._script.script)
                return [await client.evalsha(self._script.sha, 1, *calls[0])]
        results = await self._pipelined(client, calls)
        unknown = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if unknown:
            self._script.sha = await client.script_load(self._script.script)
            for i, result in zip(
                unknown, await self._pipelined(client, [calls[i] for i in unknown]), strict=True
            ):
                results[i] = result
        return results

    async def _pipelined(self, client: Any, calls: list[Call]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(self._script.sha, 1, *call)
        return list(await pipe.execute(raise_on_error=False))

    async def release(self, key: str) -> None:
        # the newest member: any one member of the window counts the same
        await self.redis.zpopmax(f"{self.prefix}:{key}")

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        if self._senders:
            await asyncio.gather(*self._senders, return_exceptions=True)
        if self._owns:
            await self.redis.aclose()  # type: ignore[attr-defined]  # the stubs predate aclose
