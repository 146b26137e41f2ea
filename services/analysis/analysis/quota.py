"""The quota governor: one limiter per (API key, model) that every worker shares through Redis, and the
owner of retries for Gemini calls.

Redis keys under ``<prefix>:<key id>:<model>`` (the key id is a hash; the API key itself is never stored):

- ``:reqs`` (sorted set: lease id → send time in ms) and ``:toks`` (hash: lease id → tokens) hold the requests
  of the sliding window, ``:total`` the sum of their tokens; all three expire after two idle windows;
- ``:day:<date>`` counts the requests of the quota day (midnight to midnight in ``day_reset_tz``, Pacific time
  for Gemini) and expires an hour after the reset;
- ``:hold`` is a time (ms) before which nobody sends: set after a per-minute 429 to its ``RetryInfo`` delay.

Each admission is one Lua script (expire old entries, check the three limits and the hold, add the request),
so two workers never both take the last slot; times come from Redis's clock, shared by every worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from google.genai import errors as genai_errors
from prometheus_client import Counter
from redis.asyncio import Redis

from common.jobs import JobFailure

from .models import AnalysisErrorCode

T = TypeVar("T")
RATE_LIMITED = Counter(
    "analysis_model_rate_limited_total",
    "429s the model answered, by the quota they name (minute, day)",
    ["scope"],
)
RETRIED = Counter("analysis_model_retries_total", "Model requests retried after a 5xx or a timeout")
PARKED = Counter(
    "analysis_quota_parked_total",
    "Requests refused because the day's quota is spent (by the limiter or a 429)",
)
WAITED = Counter(
    "analysis_quota_wait_seconds_total",
    "Seconds waited for the shared limiter (a full window or a 429's delay)",
)

_ACQUIRE = """
local window = tonumber(ARGV[1])
local rpm, tpm, rpd = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens, id, day_ttl = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(redis.call('GET', KEYS[5]) or '0')
if hold > now then return {0, hold - now} end
if tonumber(redis.call('GET', KEYS[4]) or '0') >= rpd then return {-1, 0} end
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
local freed = 0
-- In chunks: unpack() of thousands of values overflows Lua's stack.
for first = 1, #old, 1000 do
  local chunk = {unpack(old, first, math.min(first + 999, #old))}
  for _, v in ipairs(redis.call('HMGET', KEYS[2], unpack(chunk))) do
    if v then freed = freed + tonumber(v) end
  end
  redis.call('HDEL', KEYS[2], unpack(chunk))
end
if #old > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  redis.call('DECRBY', KEYS[3], freed)
end
local count = redis.call('ZCARD', KEYS[1])
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
if count < rpm and total + tokens <= tpm then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HSET', KEYS[2], id, tokens)
  redis.call('INCRBY', KEYS[3], tokens)
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], window * 2) end
  redis.call('INCR', KEYS[4])
  redis.call('EXPIRE', KEYS[4], day_ttl)
  return {1, 0}
end
local wait = 1
if count >= rpm then
  local entry = redis.call('ZRANGE', KEYS[1], count - rpm, count - rpm, 'WITHSCORES')
  wait = math.max(wait, tonumber(entry[2]) + window - now)
end
if total + tokens > tpm then
  local need, freed = total + tokens - tpm, 0
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    freed = freed + tonumber(redis.call('HGET', KEYS[2], entries[i]) or '0')
    if freed >= need then
      wait = math.max(wait, tonumber(entries[i + 1]) + window - now)
      break
    end
  end
end
return {0, wait}
"""

_SETTLE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[2], tonumber(ARGV[2]) - tonumber(old))
return 1
"""

_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_ms, 'PX', ARGV[1])
end
return until_ms
"""


@dataclass(frozen=True, kw_only=True)
class QuotaLimits:
    """The limits of one (API key, model); ``window_s`` is the "minute" (shorter only in tests)."""

    requests_per_minute: int
    tokens_per_minute: int
    requests_per_day: int
    window_s: float = 60.0
    day_reset_tz: str = "America/Los_Angeles"


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how long to retry: failures (5xx, timeouts) back off exponentially with full jitter;
    per-minute 429s wait their ``RetryInfo`` delay (or ``default_quota_wait_s``) up to ``quota_waits`` times."""

    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    quota_waits: int = 30
    default_quota_wait_s: float = 30.0


def transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions of the SDK's HTTP transports (aiohttp or httpx) that mean "try again": timeouts, lost connections."""
    found: list[type[BaseException]] = [TimeoutError, ConnectionError]
    for module, name in (
        ("aiohttp", "ClientConnectionError"),
        ("aiohttp", "ClientPayloadError"),
        ("httpx", "TransportError"),
    ):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


class QuotaParked(Exception):
    """The per-day quota is spent: nothing can be sent for this (key, model) before ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"waiting for the per-day quota to reset at {until.isoformat()}")
        self.until = until


class RateLimitScope(StrEnum):
    """What a 429 says ran out."""

    MINUTE = "minute"
    DAY = "day"


for _scope in RateLimitScope:  # every series is scraped from the start (at 0), so a rate() sees its first 429
    RATE_LIMITED.labels(_scope.value)


@dataclass(frozen=True)
class RateLimited:
    """A 429's meaning: which quota, and the ``RetryInfo`` delay if it gave one."""

    scope: RateLimitScope
    retry_after_s: float | None


def _error_details(exc: genai_errors.APIError) -> list[dict[str, Any]]:
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def read_rate_limit(exc: genai_errors.APIError) -> RateLimited:
    """The scope (a ``QuotaFailure`` violation naming a per-day quota → day) and ``RetryInfo`` delay of a 429."""
    scope = RateLimitScope.MINUTE
    delay: float | None = None
    for detail in _error_details(exc):
        kind = str(detail.get("@type", ""))
        if kind.endswith("google.rpc.QuotaFailure"):
            for violation in detail.get("violations") or []:
                names = f"{violation.get('quotaId', '')} {violation.get('quotaMetric', '')}"
                if re.search(r"per_?day|PerDay", names, re.IGNORECASE):
                    scope = RateLimitScope.DAY
        elif kind.endswith("google.rpc.RetryInfo"):
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(detail.get("retryDelay", "")))
            if match:
                delay = float(match.group(1))
    return RateLimited(scope=scope, retry_after_s=delay)


@dataclass
class GovernorStats:
    """What a governor did (for metrics and the benchmark)."""

    sent: int = 0
    rate_limited: int = 0
    retried: int = 0
    waited_s: float = 0.0
    parked: int = 0


@dataclass(frozen=True)
class Lease:
    """One admitted request and the tokens reserved for it."""

    id: str
    tokens: int


@dataclass
class QuotaGovernor:
    """Admits requests for one (API key, model) within shared limits and retries them per ``policy``."""

    redis: Redis[Any]
    api_key: str
    model: str
    limits: QuotaLimits
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    prefix: str = "analysis:quota"
    transient: tuple[type[BaseException], ...] = field(default_factory=lambda: transport_errors())
    stats: GovernorStats = field(default_factory=GovernorStats)

    def __post_init__(self) -> None:
        key_id = hashlib.sha256(self.api_key.encode()).hexdigest()[:16]
        self._base = f"{self.prefix}:{key_id}:{self.model}"
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._settle = self.redis.register_script(_SETTLE)
        self._hold = self.redis.register_script(_HOLD)

    def day_reset(self, now: datetime | None = None) -> datetime:
        """The next reset of the per-day quota (midnight in ``day_reset_tz``), in UTC."""
        local = (now or datetime.now(UTC)).astimezone(ZoneInfo(self.limits.day_reset_tz))
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.astimezone(UTC)

    def _day_key(self) -> tuple[str, int]:
        now = datetime.now(UTC)
        day = now.astimezone(ZoneInfo(self.limits.day_reset_tz)).date().isoformat()
        return f"{self._base}:day:{day}", int((self.day_reset(now) - now).total_seconds()) + 3600

    async def try_acquire(self, tokens: int) -> Lease | float:
        """Count a request of ``tokens`` if it fits every limit now, else the seconds to wait before asking again;
        raise ``QuotaParked`` when the day's requests are spent."""
        if tokens > self.limits.tokens_per_minute:
            raise JobFailure(
                AnalysisErrorCode.QUOTA_REQUEST_TOO_LARGE,
                f"the request needs {tokens} tokens; the per-minute limit is {self.limits.tokens_per_minute}",
            )
        lease = Lease(id=uuid.uuid4().hex, tokens=tokens)
        day_key, day_ttl = self._day_key()
        base, limits = self._base, self.limits
        admitted, wait_ms = await self._acquire(
            keys=[f"{base}:reqs", f"{base}:toks", f"{base}:total", day_key, f"{base}:hold"],
            args=[
                int(limits.window_s * 1000),
                limits.requests_per_minute,
                limits.tokens_per_minute,
                limits.requests_per_day,
                tokens,
                lease.id,
                day_ttl,
            ],
        )
        if admitted == -1:
            self.stats.parked += 1
            PARKED.inc()
            raise QuotaParked(self.day_reset())
        if admitted == 1:
            self.stats.sent += 1
            return lease
        return int(wait_ms) / 1000

    async def acquire(self, tokens: int) -> Lease:
        """Wait until a request of ``tokens`` fits every limit, then count it."""
        while True:
            admitted = await self.try_acquire(tokens)
            if isinstance(admitted, Lease):
                return admitted
            # A little jitter so that waiting workers do not all ask again on the same millisecond.
            delay = admitted + random.uniform(0, 0.05)
            self.stats.waited_s += delay
            WAITED.inc(delay)
            await asyncio.sleep(delay)

    async def settle(self, lease: Lease, tokens: int) -> None:
        """Replace the tokens reserved for ``lease`` by what it really used (``usage_metadata``)."""
        await self._settle(keys=[f"{self._base}:toks", f"{self._base}:total"], args=[lease.id, tokens])

    async def window_tokens(self) -> int:
        """The tokens of the requests in the current window: reserved when admitted, trued up by ``settle``."""
        return int(await self.redis.get(f"{self._base}:total") or 0)

    async def hold(self, seconds: float) -> None:
        """Make every worker wait ``seconds`` before its next request."""
        await self._hold(keys=[f"{self._base}:hold"], args=[max(1, int(seconds * 1000))])

    async def park_for_the_day(self) -> datetime:
        """Mark today's requests as spent (the API said so) and return the reset time."""
        day_key, day_ttl = self._day_key()
        await self.redis.set(day_key, self.limits.requests_per_day, ex=day_ttl)
        self.stats.parked += 1
        PARKED.inc()
        return self.day_reset()

    async def clear_day(self) -> None:
        """Forget a per-day park (a user resumed: the quota was reset or raised); the API says again if not."""
        day_key, _ = self._day_key()
        await self.redis.delete(day_key)

    def _backoff(self, attempt: int) -> float:
        cap = min(self.policy.max_delay_s, self.policy.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(0, cap)

    async def call(
        self,
        send: Callable[[], Awaitable[T]],
        *,
        tokens: int,
        used_tokens: Callable[[T], int | None] = lambda _: None,
    ) -> T:
        """Send through the limits and retry: per-minute 429 → wait its delay (everyone), per-day 429 →
        ``QuotaParked``, 5xx/timeouts → exponential back-off with jitter, other 4xx → ``model.rejected``."""
        failures = 0
        quota_waits = 0
        last: BaseException | None = None
        while True:
            lease = await self.acquire(tokens)
            try:
                result = await send()
            except genai_errors.APIError as exc:
                if exc.code == 429:
                    await self.settle(lease, 0)
                    self.stats.rate_limited += 1
                    limited = read_rate_limit(exc)
                    RATE_LIMITED.labels(limited.scope.value).inc()
                    if limited.scope is RateLimitScope.DAY:
                        raise QuotaParked(await self.park_for_the_day()) from exc
                    quota_waits += 1
                    if quota_waits > self.policy.quota_waits:
                        raise JobFailure(
                            AnalysisErrorCode.MODEL_UNAVAILABLE,
                            f"still rate limited after {quota_waits - 1} waits",
                        ) from exc
                    await self.hold(limited.retry_after_s or self.policy.default_quota_wait_s)
                    continue
                if exc.code < 500 and exc.code != 408:
                    raise JobFailure(
                        AnalysisErrorCode.MODEL_REJECTED, f"the model refused the request: {exc}"
                    ) from exc
                last = exc
            except self.transient as exc:
                last = exc
            else:
                used = used_tokens(result)
                if used is not None:
                    await self.settle(lease, used)
                return result
            failures += 1
            if failures >= self.policy.attempts:
                raise JobFailure(
                    AnalysisErrorCode.MODEL_UNAVAILABLE,
                    f"the model failed {failures} times; last: {type(last).__name__}: {last}",
                ) from last
            self.stats.retried += 1
            RETRIED.inc()
            delay = self._backoff(failures)
            self.stats.waited_s += delay
            await asyncio.sleep(delay)


@dataclass
class HostBackoff:
    """A platform that answered 429 is left alone by every worker until its back-off ends (one Redis key per
    host:port, ``<prefix>:<host>:<port>``, expiring with the back-off): a batch backs off as a whole, not item by
    item."""

    redis: Redis[Any]
    prefix: str = "analysis:hosts"

    def __post_init__(self) -> None:
        self._hold = self.redis.register_script(_HOLD)

    def _key(self, host: str, port: int) -> str:
        return f"{self.prefix}:{host.lower()}:{port}"

    async def hold(self, host: str, port: int, seconds: float) -> None:
        """Nobody reads ``host``:``port`` for ``seconds`` (a longer back-off already set stays)."""
        await self._hold(keys=[self._key(host, port)], args=[max(1, int(seconds * 1000))])

    async def wait(self, host: str, port: int) -> float:
        """Wait while ``host``:``port`` is backed off; the seconds waited."""
        waited = 0.0
        while (ms := int(await self.redis.pttl(self._key(host, port)))) > 0:
            delay = ms / 1000 + random.uniform(0, 0.05)
            waited += delay
            await asyncio.sleep(delay)
        return waited
