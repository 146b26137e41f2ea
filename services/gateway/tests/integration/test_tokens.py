"""Access-token verification at the gateway: forged tokens, key rotation, revocation across replicas."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.auth import JWKSVerifier
from common.testing.auth import TokenFactory
from common.testing.waiting import wait_for
from gateway.app import VERIFIER_KEY, create_app
from gateway.config import GatewaySettings
from gateway.keys import KeyRing, NoSigningKey, generate_key

from ..conftest import GatewayFactory, bearer, register_and_login


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _forge(token: str, **changes: object) -> tuple[dict[str, object], dict[str, object]]:
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return header, {**claims, **changes}


async def test_untrustworthy_tokens_are_refused(start_gateway: GatewayFactory, keys_dir: Path) -> None:
    client = await start_gateway()
    pair = await register_and_login(client)
    good = pair["access_token"]
    ring = KeyRing(keys_dir)
    ring.load()
    key = ring.active.private_key
    header, claims = _forge(good)
    now = int(time.time())

    h, p, s = good.split(".")
    tampered_payload = _b64(json.dumps({**claims, "sub": str(uuid.uuid4())}).encode())
    forged = {
        "tampered": f"{h}.{tampered_payload}.{s}",
        "bad signature": f"{h}.{p}.{_b64(b'x' * 64)}",
        "expired": jwt.encode(
            {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600},
            key,
            algorithm="EdDSA",
            headers={"kid": header["kid"], "typ": "at+jwt"},
        ),
        "wrong audience": jwt.encode(
            {**claims, "aud": "someone-else"},
            key,
            algorithm="EdDSA",
            headers={"kid": header["kid"], "typ": "at+jwt"},
        ),
        "wrong issuer": jwt.encode(
            {**claims, "iss": "evil"}, key, algorithm="EdDSA", headers={"kid": header["kid"], "typ": "at+jwt"}
        ),
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']}).encode())}.{p}.",
        "alg HS256 with the public key": jwt.encode(
            claims,
            "not-the-key-at-all-but-long-enough-for-hmac",
            algorithm="HS256",
            headers={"kid": header["kid"], "typ": "at+jwt"},
        ),
        "unknown kid": jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "nope", "typ": "at+jwt"}),
        "other key, same kid": jwt.encode(
            claims,
            Ed25519PrivateKey.generate(),
            algorithm="EdDSA",
            headers={"kid": header["kid"], "typ": "at+jwt"},
        ),
        "no kid": jwt.encode(claims, key, algorithm="EdDSA", headers={"typ": "at+jwt"}),
        "garbage": "not.a.jwt",
    }
    for what, token in forged.items():
        for path in (
            "/api/v1/me",
            "/api/v1/videos",
        ):  # own endpoint and a proxied one (refused before proxying)
            r = await client.get(path, headers=bearer(token))
            assert r.status == 401, (what, path)
            problem = await r.json()
            expected = "auth.token_expired" if what == "expired" else "auth.invalid_token"
            assert problem["code"] == expected, (what, problem)
    assert (await client.get("/api/v1/me", headers=bearer(good))).status == 200
    r = await client.get("/api/v1/me")
    assert r.status == 401 and (await r.json())["code"] == "auth.missing_token"


async def test_access_tokens_are_typed_and_lenient_claims_are_refused(
    start_gateway: GatewayFactory, keys_dir: Path
) -> None:
    """Issue 14 item 8: a numeric-string ``exp`` or a ``typ: refresh`` header was accepted (RFC 9068 typing)."""
    client = await start_gateway()
    pair = await register_and_login(client)
    header, claims = _forge(pair["access_token"])
    assert header["typ"] == "at+jwt"
    assert isinstance(claims["exp"], int) and str(uuid.UUID(str(claims["sub"]))) == claims["sub"]
    ring = KeyRing(keys_dir)
    ring.load()

    def signed(typ: str, **changes: object) -> str:
        body = json.dumps({**claims, **changes}).encode()
        token: str = jwt.api_jws.encode(
            body, ring.active.private_key, algorithm="EdDSA", headers={"kid": header["kid"], "typ": typ}
        )
        return token

    lenient = {
        "exp a numeric string": signed("at+jwt", exp=str(claims["exp"])),
        "typ refresh": signed("refresh"),
        "typ JWT (issued before the change)": signed("JWT"),
        "sub not a UUID": signed("at+jwt", sub="admin"),
        "aud a list": signed("at+jwt", aud=[claims["aud"]]),
    }
    for what, token in lenient.items():
        for path in ("/api/v1/me", "/api/v1/videos"):
            r = await client.get(path, headers=bearer(token))
            assert r.status == 401, (what, path)
            assert (await r.json())["code"] == "auth.invalid_token", (what, path)
    assert (await client.get("/api/v1/me", headers=bearer(signed("at+jwt")))).status == 200


async def test_jwks_verifies_gateway_tokens_with_the_shared_verifier(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    pair = await register_and_login(client)
    r = await client.get("/.well-known/jwks.json")
    assert r.status == 200
    doc = await r.json()
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["kid"] and "d" not in k for k in doc["keys"])
    # what every other service does: common.auth.JWKSVerifier against the published keys
    verifier = JWKSVerifier(
        audience="reelforge",
        issuer="reelforge-gateway",
        jwks_url=str(client.make_url("/.well-known/jwks.json")),
    )
    try:
        principal = await verifier.verify(pair["access_token"])
    finally:
        await verifier.close()
    assert str(principal.user_id) == pair["user"]["id"]


async def test_key_rotation_keeps_old_tokens_valid(start_gateway: GatewayFactory, keys_dir: Path) -> None:
    client = await start_gateway()
    before = await register_and_login(client)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]

    new_kid = generate_key(keys_dir)  # what `python -m gateway keys rotate` does, on the shared directory
    client.app[VERIFIER_KEY].reload_keys()  # the periodic re-read (every KEYS_RELOAD_INTERVAL_S)
    r = await client.post(
        "/api/v1/auth/login", json={"email": before["user"]["email"], "password": before["password"]}
    )
    after = await r.json()
    assert jwt.get_unverified_header(after["access_token"])["kid"] == new_kid

    kids = {k["kid"] for k in (await (await client.get("/.well-known/jwks.json")).json())["keys"]}
    assert kids == {old_kid, new_kid}
    for token in (before["access_token"], after["access_token"]):
        assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200


async def test_second_replica_reads_a_rotated_key_on_demand(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, keys_dir: Path
) -> None:
    a = await start_gateway()
    b = await start_gateway()
    pair = await register_and_login(a)
    new_kid = generate_key(keys_dir)
    a.app[VERIFIER_KEY].reload_keys()  # replica A noticed the rotation first
    r = await a.post(
        "/api/v1/auth/login", json={"email": pair["user"]["email"], "password": pair["password"]}
    )
    token = (await r.json())["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == new_kid

    async def b_accepts() -> bool:
        return (await b.get("/api/v1/me", headers=bearer(token))).status == 200

    # B re-reads its directory when it meets the unknown kid (at most once a second)
    await wait_for(b_accepts, timeout=30, interval=0.2)


async def test_logout_revocation_across_two_gateway_instances(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    settings = gateway_settings.with_(revocation_cache_ttl_s=2.0)
    a = await start_gateway(settings)
    b = await start_gateway(settings)
    pair = await register_and_login(a)
    # B has seen (and cached as good) the token before the logout
    assert (await b.get("/api/v1/me", headers=bearer(pair["access_token"]))).status == 200

    r = await a.post(
        "/api/v1/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=bearer(pair["access_token"]),
    )
    assert r.status == 204
    started = time.monotonic()

    async def b_refuses() -> bool:
        r = await b.get("/api/v1/me", headers=bearer(pair["access_token"]))
        return r.status == 401 and (await r.json())["code"] == "auth.token_revoked"

    await wait_for(b_refuses, timeout=settings.revocation_cache_ttl_s + 1.0, interval=0.1)
    assert time.monotonic() - started <= settings.revocation_cache_ttl_s + 1.0
    r = await b.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 401 and (await r.json())["code"] == "auth.token_revoked"


async def test_logout_on_one_replica_closes_the_sessions_socket_on_another(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    settings = gateway_settings.with_(revocation_cache_ttl_s=1.0, ws_revocation_check_s=0.2)
    a = await start_gateway(settings)
    b = await start_gateway(settings)
    pair = await register_and_login(a)
    other = await register_and_login(a)
    ws = await b.ws_connect("/api/v1/ws", headers=bearer(pair["access_token"]))
    bystander = await b.ws_connect("/api/v1/ws", headers=bearer(other["access_token"]))
    for sock in (ws, bystander):
        assert (await sock.receive_json(timeout=30))["type"] == "hello"

    r = await a.post(
        "/api/v1/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=bearer(pair["access_token"]),
    )
    assert r.status == 204
    msg = await ws.receive(timeout=settings.revocation_cache_ttl_s + 10)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and ws.close_code == 4003
    # another user's socket on the same replica stays open
    await bystander.send_str("ping")
    assert (await bystander.receive_json(timeout=30))["type"] == "pong"
    await bystander.close()


async def test_tokens_from_a_foreign_issuer_key_are_refused(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    foreign = TokenFactory()  # right shape, right claims, a key the gateway never published
    r = await client.get("/api/v1/me", headers=foreign.headers(uuid.uuid4()))
    assert r.status == 401 and (await r.json())["code"] == "auth.invalid_token"


async def test_production_refuses_to_start_without_keys(
    gateway_settings: GatewaySettings, tmp_path: Path, aiohttp_client: object
) -> None:
    empty = tmp_path / "no-keys"
    empty.mkdir()
    app = create_app(gateway_settings.with_(environment="production", gateway_keys_dir=str(empty)))
    with pytest.raises(NoSigningKey):
        await aiohttp_client(app)  # type: ignore[operator]


async def test_development_generates_a_key(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, tmp_path: Path
) -> None:
    fresh = tmp_path / "dev-keys"
    client = await start_gateway(gateway_settings.with_(gateway_keys_dir=str(fresh)))
    pems = list(fresh.glob("*.pem"))
    assert len(pems) == 1 and (pems[0].stat().st_mode & 0o777) == 0o600
    pair = await register_and_login(client)
    assert jwt.get_unverified_header(pair["access_token"])["kid"] == pems[0].stem
