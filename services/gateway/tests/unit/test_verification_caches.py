"""The per-request fast paths: verified tokens are reused only while that is as good as verifying again, and
concurrent revocation checks of one token share a single lookup."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from common.auth import Principal, TokenInvalid
from gateway.keys import KeyRing, generate_key
from gateway.revocation import GatewayVerifier, RevocationCache, VerifiedTokens

AUD, ISS = "reelforge", "reelforge-gateway"


def _ring(directory: Path) -> KeyRing:
    generate_key(directory)
    ring = KeyRing(directory)
    ring.load()
    return ring


def _token(ring: KeyRing, *, ttl: int = 3600, sid: str = "session-1") -> str:
    now = int(time.time())
    return str(
        ring.sign(
            {
                "sub": str(uuid.uuid4()),
                "jti": uuid.uuid4().hex,
                "sid": sid,
                "iat": now,
                "nbf": now,
                "exp": now + ttl,
                "aud": AUD,
                "iss": ISS,
            }
        )
    )


def _verifier(ring: KeyRing) -> Any:
    """A verifier that counts its full (signature + claims) verifications in ``full_checks``."""
    v = GatewayVerifier(audience=AUD, issuer=ISS, keys=ring)
    v.load(ring.jwks())
    v.full_checks = 0
    full = v._verify_signed

    async def counting(token: str) -> Principal:
        v.full_checks += 1
        principal: Principal = await full(token)
        return principal

    v._verify_signed = counting
    return v


async def test_a_token_is_fully_verified_once_then_reused(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    v = _verifier(ring)
    token = _token(ring)
    first = await v.verify(token)
    assert await v.verify(token) == first
    assert v.full_checks == 1


async def test_a_token_differing_in_any_byte_is_verified_and_refused(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    v = _verifier(ring)
    token = _token(ring)
    await v.verify(token)
    head, payload, sig = token.split(".")
    forged_sig = f"{head}.{payload}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["sub"] = str(uuid.uuid4())  # someone else's identity under the cached token's signature
    forged_claims = (
        f"{head}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()}.{sig}"
    )
    for forged in (forged_sig, forged_claims):
        with pytest.raises(TokenInvalid):
            await v.verify(forged)


async def test_revocation_is_checked_on_every_request_even_when_the_signature_is_cached(
    tmp_path: Path,
) -> None:
    ring = _ring(tmp_path)
    v = _verifier(ring)
    revoked: set[str] = set()

    async def lookup(jti: str, sid: str) -> bool:
        return jti in revoked

    v.revocations = RevocationCache(lookup, ttl_s=5.0)
    token = _token(ring)
    principal = await v.verify(token)
    v.revocations.note_token_revoked(principal.token_id)  # this replica's logout
    with pytest.raises(TokenInvalid) as e:
        await v.verify(token)
    assert e.value.code == "auth.token_revoked"


async def test_removing_a_key_forgets_the_tokens_it_signed(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    v = _verifier(ring)
    token = _token(ring)
    await v.verify(token)
    old_kid = ring.active.kid
    generate_key(tmp_path)
    v.reload_keys()  # a key was added: what was verified stays verified
    await v.verify(token)
    assert v.full_checks == 1
    (tmp_path / f"{old_kid}.pem").unlink()
    v.reload_keys()
    with pytest.raises(TokenInvalid):
        await v.verify(token)


async def test_entries_expire_with_the_ttl_and_the_token() -> None:
    cache = VerifiedTokens(ttl_s=0.05, max_entries=2)
    live = Principal(user_id=uuid.uuid4(), token_id="a", expires_at=int(time.time()) + 60)
    cache.put("live", live)
    assert cache.get("live") is live
    await asyncio.sleep(0.06)
    assert cache.get("live") is None
    expired = Principal(user_id=uuid.uuid4(), token_id="b", expires_at=int(time.time()) - 1)
    cache.put("expired", expired)
    assert cache.get("expired") is None
    for name in ("x", "y", "z"):
        cache.put(name, live)
    assert len(cache) == 2 and cache.get("x") is None  # bounded, least recently used goes first


async def test_concurrent_checks_of_one_token_share_one_lookup() -> None:
    calls = 0
    release = asyncio.Event()

    async def lookup(jti: str, sid: str) -> bool:
        nonlocal calls
        calls += 1
        await release.wait()
        return False

    cache = RevocationCache(lookup, ttl_s=5.0)
    checks = [asyncio.ensure_future(cache.is_revoked("jti-1", "sid-1")) for _ in range(32)]
    await asyncio.sleep(0)
    checks[0].cancel()  # the first caller going away does not cancel the others' answer
    release.set()
    results = await asyncio.gather(*checks[1:])
    assert results == [False] * 31 and calls == 1
    assert await cache.is_revoked("jti-1", "sid-1") is False and calls == 1  # and the answer is cached


async def test_a_failed_lookup_fails_every_waiter_and_is_retried() -> None:
    calls = 0

    async def lookup(jti: str, sid: str) -> bool:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls == 1:
            raise ConnectionError("postgres went away")
        return True

    cache = RevocationCache(lookup, ttl_s=5.0)
    results = await asyncio.gather(*(cache.is_revoked("j", "s") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results) and calls == 1
    assert await cache.is_revoked("j", "s") is True and calls == 2


async def test_the_in_process_limiter_stays_bounded_under_a_flood_of_addresses() -> None:
    from gateway.ratelimit import MemoryLimiter

    lim = MemoryLimiter(max_keys=100)
    for i in range(1000):
        await lim.hit(f"ip:{i}", limit=5, window_s=60)
    # the O(keys) sweep runs at most once a second (not on every request), so for up to a second new keys pile up
    lim._last_sweep -= 2  # a second later
    await lim.hit("ip:latest", limit=5, window_s=60)
    assert len(lim._hits) <= lim.max_keys + 1 and "ip:latest" in lim._hits
    assert "ip:0" not in lim._hits and "ip:999" in lim._hits  # the longest-known keys were forgotten first
