"""One rate-limiter suite run against both backends (in-process and the real Redis), then through the gateway."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from common.testing.bus import unique_name
from common.testing.waiting import wait_for
from gateway.config import GatewaySettings
from gateway.ratelimit import MemoryLimiter, RateLimiter, RedisLimiter

from ..conftest import GatewayFactory, bearer, register_and_login

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_limiter() -> AsyncIterator[RedisLimiter]:
    """A Redis limiter on a unique key prefix, its keys deleted afterwards."""
    prefix = unique_name("test-rl")
    lim = RedisLimiter.from_url(REDIS_URL, prefix=prefix)
    yield lim
    keys = [k async for k in lim.redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await lim.redis.delete(*keys)
    await lim.close()


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    """Each backend in turn."""
    if request.param == "memory":
        return MemoryLimiter()
    lim: RateLimiter = request.getfixturevalue("redis_limiter")
    return lim


async def test_allows_up_to_the_limit_then_refuses(limiter: RateLimiter) -> None:
    key = uuid.uuid4().hex
    decisions = [await limiter.hit(key, limit=5, window_s=60) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert 59 <= refused.reset_s <= 60 and refused.retry_after_s == 60
    headers = refused.headers(60)
    assert headers["Retry-After"] == "60" and headers["RateLimit-Limit"] == "5"
    assert headers["RateLimit-Remaining"] == "0" and headers["RateLimit-Reset"] == "60"


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    for _ in range(3):
        assert (await limiter.hit(a, limit=3, window_s=60)).allowed
    assert not (await limiter.hit(a, limit=3, window_s=60)).allowed
    assert (await limiter.hit(b, limit=3, window_s=60)).allowed


async def test_window_slides(limiter: RateLimiter) -> None:
    key = uuid.uuid4().hex
    assert (await limiter.hit(key, limit=2, window_s=1)).allowed
    assert (await limiter.hit(key, limit=2, window_s=1)).allowed
    refused = await limiter.hit(key, limit=2, window_s=1)
    assert not refused.allowed and 0 < refused.reset_s <= 1
    await asyncio.sleep(1.1)
    assert (await limiter.hit(key, limit=2, window_s=1)).allowed


async def test_release_gives_a_slot_back(limiter: RateLimiter) -> None:
    key = uuid.uuid4().hex
    for _ in range(3):
        assert (await limiter.hit(key, limit=3, window_s=60)).allowed
    await limiter.release(key)
    assert (await limiter.hit(key, limit=3, window_s=60)).allowed
    assert not (await limiter.hit(key, limit=3, window_s=60)).allowed
    await limiter.release(uuid.uuid4().hex)  # an unknown key: nothing to give back, no error


async def test_concurrent_hits_never_exceed_the_limit(limiter: RateLimiter) -> None:
    key = uuid.uuid4().hex
    decisions = await asyncio.gather(*(limiter.hit(key, limit=25, window_s=60) for _ in range(60)))
    assert sum(d.allowed for d in decisions) == 25


async def test_redis_limit_is_shared_between_replicas() -> None:
    prefix = unique_name("test-rl")
    one, two = (
        RedisLimiter.from_url(REDIS_URL, prefix=prefix),
        RedisLimiter.from_url(REDIS_URL, prefix=prefix),
    )
    try:
        key = uuid.uuid4().hex
        results = await asyncio.gather(*(lim.hit(key, limit=10, window_s=60) for lim in (one, two) * 10))
        assert sum(d.allowed for d in results) == 10
    finally:
        await one.redis.delete(f"{prefix}:{key}")
        await one.close()
        await two.close()


async def test_redis_limiter_loads_its_script_when_redis_does_not_know_it(
    redis_limiter: RedisLimiter,
) -> None:
    real_sha = redis_limiter._script.sha
    redis_limiter._script.sha = (
        "0" * 40
    )  # as after a Redis restart (SCRIPT FLUSH would hit everyone's scripts)
    decisions = [await redis_limiter.hit("k", limit=2, window_s=60) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert redis_limiter._script.sha == real_sha


async def test_concurrent_redis_hits_are_exact_even_when_the_script_must_be_reloaded(
    redis_limiter: RedisLimiter,
) -> None:
    redis_limiter._script.sha = "0" * 40  # unknown to Redis: the whole pipelined batch answers NOSCRIPT
    decisions = await asyncio.gather(*(redis_limiter.hit("k", limit=4, window_s=60) for _ in range(10)))
    assert sum(d.allowed for d in decisions) == 4
    assert sorted(d.remaining for d in decisions if d.allowed) == [0, 1, 2, 3]


async def test_a_hit_whose_request_went_away_does_not_disturb_the_others(redis_limiter: RedisLimiter) -> None:
    hits = [asyncio.ensure_future(redis_limiter.hit("k", limit=100, window_s=60)) for _ in range(5)]
    await asyncio.sleep(0)
    hits[0].cancel()
    done = await asyncio.gather(*hits[1:])
    assert all(d.allowed for d in done)


async def test_every_concurrent_hit_fails_when_redis_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lim = RedisLimiter.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        results = await asyncio.gather(
            *(lim.hit("k", limit=10, window_s=60) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, Exception) for r in results)  # so the middleware falls back for each
    finally:
        await lim.close()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_101st_request_in_a_minute_is_refused(start_gateway: GatewayFactory, backend: str) -> None:
    prefix = unique_name("test-rl")
    lim: RateLimiter = (
        MemoryLimiter() if backend == "memory" else RedisLimiter.from_url(REDIS_URL, prefix=prefix)
    )
    try:
        client = await start_gateway(limiter=lim)
        pair = await register_and_login(client)
        headers = bearer(pair["access_token"])
        for i in range(100):
            r = await client.get("/api/v1/me", headers=headers)
            assert r.status == 200, i
            assert r.headers["RateLimit-Limit"] == "100"
            assert r.headers["RateLimit-Remaining"] == str(99 - i)
        r = await client.get("/api/v1/me", headers=headers)
        assert r.status == 429
        problem = await r.json()
        assert problem["code"] == "rate_limited" and r.content_type == "application/problem+json"
        assert r.headers["RateLimit-Limit"] == "100" and r.headers["RateLimit-Remaining"] == "0"
        assert 1 <= int(r.headers["Retry-After"]) <= 60 and 0 <= int(r.headers["RateLimit-Reset"]) <= 60

        # per user: another user (same address) still gets through
        other = await register_and_login(client)
        assert (await client.get("/api/v1/me", headers=bearer(other["access_token"]))).status == 200
    finally:
        if isinstance(lim, RedisLimiter):
            keys = [k async for k in lim.redis.scan_iter(match=f"{prefix}:*")]
            if keys:
                await lim.redis.delete(*keys)
        await lim.close()


async def test_eleven_logins_from_one_address_in_a_minute_all_succeed(start_gateway: GatewayFactory) -> None:
    """Issue 14 item 7: register + login shared 10 requests a minute per address, locking out an office's NAT."""
    client = await start_gateway()
    people = [await _register(client) for _ in range(11)]
    for email in people:
        r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status == 200, await r.text()
    # a few typos among them do not lock the address out either
    for email in people[:3]:
        r = await client.post("/api/v1/auth/login", json={"email": email, "password": "typo" + PASSWORD})
        assert r.status == 401
    r = await client.post("/api/v1/auth/login", json={"email": people[0], "password": PASSWORD})
    assert r.status == 200


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_failed_guesses_are_limited_per_account_from_any_address(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, backend: str
) -> None:
    settings = gateway_settings.with_(trusted_proxy_hops=1, login_failures_per_account=5)
    prefix = unique_name("test-rl")
    lim: RateLimiter = (
        MemoryLimiter() if backend == "memory" else RedisLimiter.from_url(REDIS_URL, prefix=prefix)
    )
    try:
        client = await start_gateway(settings, limiter=lim)
        victim, bystander = await _register(client), await _register(client)
        guesses = [
            (await _login(client, victim, f"guess number {i}", ip=f"198.51.100.{i}")).status for i in range(7)
        ]
        assert guesses == [401] * 5 + [429] * 2  # each guess from another address: counted per account
        # past the limit even the right password is refused (else the 429s would only hide the wrong guesses)
        r = await _login(client, victim, PASSWORD, ip="203.0.113.99")
        assert r.status == 429
        problem = await r.json()
        assert problem["code"] == "auth.too_many_failures" and problem["window_s"] == 900
        assert 1 <= int(r.headers["Retry-After"]) <= 900 and r.headers["RateLimit-Limit"] == "5"
        # the account's email in any spelling is the same account
        assert (await _login(client, victim.upper(), PASSWORD, ip="203.0.113.98")).status == 429
        # other accounts, from the addresses that guessed, are untouched
        assert (await _login(client, bystander, PASSWORD, ip="198.51.100.1")).status == 200
        # successes never count: a sixth good login of the bystander still works
        for _ in range(6):
            assert (await _login(client, bystander, PASSWORD, ip="198.51.100.1")).status == 200
    finally:
        if isinstance(lim, RedisLimiter):
            keys = [k async for k in lim.redis.scan_iter(match=f"{prefix}:*")]
            assert not any(b"@" in k for k in keys)  # account keys are hashes, not email addresses
            if keys:
                await lim.redis.delete(*keys)
        await lim.close()


async def test_failed_guesses_are_limited_per_address_across_accounts(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    settings = gateway_settings.with_(trusted_proxy_hops=1, login_failures_per_address=8)
    client = await start_gateway(settings)
    user = await _register(client)
    # password spraying: one guess per account, many accounts, one address
    sprayed = [
        (await _login(client, f"sprayed{i}@example.com", "Winter2026!!", ip="192.0.2.7")).status
        for i in range(9)
    ]
    assert sprayed == [401] * 8 + [429]
    r = await _login(client, user, PASSWORD, ip="192.0.2.7")
    assert r.status == 429 and (await r.json())["code"] == "auth.too_many_failures"
    # another address is not affected, nor is the user's account
    assert (await _login(client, user, PASSWORD, ip="192.0.2.8")).status == 200


async def test_concurrent_guesses_cannot_pass_one_check_together(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    client = await start_gateway(gateway_settings.with_(login_failures_per_account=4))
    victim = await _register(client)
    rs = await asyncio.gather(*(_login(client, victim, f"guess {i} guess", ip="") for i in range(12)))
    assert sorted(r.status for r in rs) == [401] * 4 + [429] * 8


async def test_sign_in_requests_are_still_capped_per_address(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    client = await start_gateway(gateway_settings.with_(rate_limit_auth=12))
    email = await _register(client)  # 1
    statuses = [
        (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).status
        for _ in range(12)
    ]
    assert statuses == [200] * 11 + [429]  # successes have a ceiling too, only a higher one
    # the limit is per route class: other endpoints are still open to this address
    r = await client.get("/api/v1/me")
    assert r.status == 401
    # refreshing has its own, larger budget: users behind one address are not locked out of their sessions
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"})
    assert r.status == 401 and r.headers["RateLimit-Limit"] == "60"


PASSWORD = "correct horse battery"


async def _register(client: Any) -> str:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status == 201, await r.text()
    return email


async def _login(client: Any, email: str, password: str, *, ip: str) -> Any:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}, headers=headers
    )


async def test_redis_limiter_selected_from_settings(
    start_gateway: GatewayFactory, gateway_settings: object
) -> None:
    from gateway.api import LIMITER
    from gateway.config import GatewaySettings

    assert isinstance(gateway_settings, GatewaySettings)
    client = await start_gateway(gateway_settings.with_(rate_limiter="auto", redis_url=REDIS_URL))
    lim = client.app[LIMITER]
    assert isinstance(lim, RedisLimiter)
    r = await client.get("/readyz")
    assert (await r.json())["checks"]["redis"] == "ok"
    r = await client.post(
        "/api/v1/auth/login", json={"email": "x@example.com", "password": "whatever password"}
    )
    assert r.headers["RateLimit-Limit"] == str(gateway_settings.rate_limit_auth)
    keys = [k async for k in lim.redis.scan_iter(match=f"{gateway_settings.rate_limit_key_prefix}:*")]
    assert keys  # the login attempt was counted in Redis
    await lim.redis.delete(*keys)


async def test_anonymous_calls_are_limited_per_address_and_apart_from_users(
    start_gateway: GatewayFactory, gateway_settings: object
) -> None:
    from gateway.config import GatewaySettings

    assert isinstance(gateway_settings, GatewaySettings)
    client = await start_gateway(gateway_settings.with_(rate_limit_default=5, trusted_proxy_hops=1))
    user = await register_and_login(client)

    def from_ip(ip: str) -> dict[str, str]:
        return {"X-Forwarded-For": ip}

    statuses = [(await client.get("/api/v1/me", headers=from_ip("203.0.113.7"))).status for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # another address has its own budget, and a signed-in user behind the limited address is counted as themself
    assert (await client.get("/api/v1/me", headers=from_ip("203.0.113.8"))).status == 401
    r = await client.get("/api/v1/me", headers={**from_ip("203.0.113.7"), **bearer(user["access_token"])})
    assert r.status == 200


async def test_redis_down_keeps_the_gateway_ready_and_limiting_in_process(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    """Issue 14 item 5: Redis away is a degradation (each replica limits on its own), not "not ready"; the outage
    is logged when it starts and when it ends, not per request."""
    from prometheus_client import REGISTRY
    from structlog.testing import capture_logs

    from common.testing.netproxy import TcpProxy

    prefix = unique_name("test-rl")
    async with TcpProxy.in_front_of(REDIS_URL, default_port=6379) as proxy:
        lim = RedisLimiter.from_url(proxy.url_via(REDIS_URL), prefix=prefix)
        try:
            client = await start_gateway(gateway_settings.with_(rate_limit_default=8), limiter=lim)
            headers = bearer((await register_and_login(client))["access_token"])
            assert (await client.get("/api/v1/me", headers=headers)).status == 200
            with capture_logs() as logs:
                proxy.pause()
                proxy.cut()
                statuses = [(await client.get("/api/v1/me", headers=headers)).status for _ in range(9)]
                r = await client.get("/readyz?verbose=1")
                body = await r.json()
                assert r.status == 200, body
                assert body["status"] == "degraded" and body["degraded"] == ["redis"]
                assert body["dependencies"]["redis"] == body["dependencies"]["redis"] | {
                    "status": "down",
                    "critical": False,
                }
                up = {"service": gateway_settings.service, "dependency": "redis"}
                assert REGISTRY.get_sample_value("reelforge_dependency_up", up) == 0
                proxy.resume()

                async def healthy() -> bool:
                    return (await (await client.get("/readyz")).json())["status"] == "ok"

                await wait_for(healthy, timeout=15, interval=0.2)
                assert (await client.get("/api/v1/me", headers=headers)).status in (200, 429)
            # served, and still limited: the in-process fallback counts from zero, so 8 pass and the 9th is refused
            assert statuses == [200] * 8 + [429]
            assert len([e for e in logs if e["event"] == "dependency.down"]) == 1
            assert len([e for e in logs if e["event"] == "dependency.up"]) == 1
            assert REGISTRY.get_sample_value("reelforge_dependency_up", up) == 1
        finally:
            keys = [k async for k in lim.redis.scan_iter(match=f"{prefix}:*")]
            if keys:
                await lim.redis.delete(*keys)
            await lim.close()
