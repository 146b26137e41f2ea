"""Register / login / me / refresh / logout against a running gateway and the real Postgres."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import jwt

from common.bus import MemoryBus
from common.events.base import decode_as
from common.events.gateway import UserRegistered
from common.testing.waiting import wait_for
from gateway.config import GatewaySettings

from ..conftest import GatewayFactory, bearer, register_and_login


async def test_register_login_me(start_gateway: GatewayFactory, memory_bus: MemoryBus) -> None:
    client = await start_gateway(bus=memory_bus)
    pair = await register_and_login(client, email="Ada.Lovelace@Example.com")
    assert pair["user"]["email"] == "ada.lovelace@example.com"
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 3600
    assert pair["refresh_token"] and pair["refresh_token"] != pair["access_token"]

    r = await client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert r.status == 200
    me = await r.json()
    assert me == pair["user"]
    assert "password_hash" not in me

    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert claims["sub"] == me["id"] and claims["aud"] == "reelforge" and claims["iss"] == "reelforge-gateway"
    assert claims["exp"] - claims["iat"] == 3600 and claims["jti"] and claims["email"] == me["email"]
    assert jwt.get_unverified_header(pair["access_token"])["kid"]

    # the account is announced through the outbox relay
    def announced() -> list[UserRegistered]:
        return [
            decode_as(body, UserRegistered) for rk, body in memory_bus.published if rk == "user.registered.v1"
        ]

    events = await wait_for(announced, timeout=30)
    assert events[0].user_id == uuid.UUID(me["id"]) and events[0].email == me["email"]
    assert events[0].producer == "gateway"


async def test_register_validation_and_duplicates(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"email": "not-an-email", "password": "long enough pw"}, 422, "validation.email"),
        ({"email": "a@example.com", "password": "short"}, 422, "validation.password_too_short"),
        ({"email": "a@example.com", "password": "x" * 5000}, 422, "validation.password_too_long"),
        ({"email": "a@example.com"}, 422, "validation.invalid"),
    ]
    for body, status, code in cases:
        r = await client.post("/api/v1/auth/register", json=body)
        assert r.status == status, body
        assert r.content_type == "application/problem+json"
        assert (await r.json())["code"] == code
    r = await client.post(
        "/api/v1/auth/register", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (await r.json())["code"] == "request.malformed_json"

    await register_and_login(client, email="dup@example.com")
    r = await client.post(
        "/api/v1/auth/register", json={"email": "DUP@example.com", "password": "another password"}
    )
    assert r.status == 409 and (await r.json())["code"] == "auth.email_taken"


async def test_login_failures_look_alike(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    await register_and_login(client, email="bob@example.com", password="bob's password!")
    for body in (
        {"email": "bob@example.com", "password": "wrong password"},
        {"email": "nobody@example.com", "password": "bob's password!"},
        {"email": "garbage", "password": "bob's password!"},
    ):
        r = await client.post("/api/v1/auth/login", json=body)
        assert r.status == 401
        problem = await r.json()
        assert problem["code"] == "auth.invalid_credentials"
        assert problem["detail"] == "the email or password is wrong"


async def test_password_is_stored_as_argon2id(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    client = await start_gateway()
    pair = await register_and_login(client)
    conn = await asyncpg.connect(gateway_settings.database_url)
    try:
        stored = await conn.fetchval(
            f"SELECT password_hash FROM {gateway_settings.schema}.users WHERE id = $1",
            uuid.UUID(pair["user"]["id"]),
        )
        token_hashes = await conn.fetch(f"SELECT token_hash FROM {gateway_settings.schema}.refresh_tokens")
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$") and pair["password"] not in stored
    # refresh tokens are stored hashed only
    assert all(pair["refresh_token"].encode() not in bytes(r["token_hash"]) for r in token_hashes)


async def test_refresh_rotation_and_reuse_detection(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    first = await register_and_login(client)

    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status == 200
    second = await r.json()
    assert (
        second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    )
    assert (await client.get("/api/v1/me", headers=bearer(second["access_token"]))).status == 200

    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    third = await r.json()
    assert r.status == 200

    # the spent token comes back (stolen copy): 401 and the whole family dies
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status == 401 and (await r.json())["code"] == "auth.refresh_reused"
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert r.status == 401 and (await r.json())["code"] == "auth.token_revoked"
    for access in (second["access_token"], third["access_token"]):
        r = await client.get("/api/v1/me", headers=bearer(access))
        assert r.status == 401 and (await r.json())["code"] == "auth.token_revoked"

    # another login is a new family and works
    r = await client.post(
        "/api/v1/auth/login", json={"email": first["user"]["email"], "password": first["password"]}
    )
    assert r.status == 200

    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": "rft_made-up"})
    assert r.status == 401 and (await r.json())["code"] == "auth.invalid_refresh_token"


async def test_logout_revokes_access_and_refresh(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    pair = await register_and_login(client)
    other_session = await client.post(
        "/api/v1/auth/login", json={"email": pair["user"]["email"], "password": pair["password"]}
    )
    other = await other_session.json()

    r = await client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 401 and (await r.json())["code"] == "auth.missing_token"
    r = await client.post(
        "/api/v1/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=bearer(pair["access_token"]),
    )
    assert r.status == 204

    r = await client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert r.status == 401 and (await r.json())["code"] == "auth.token_revoked"
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 401 and (await r.json())["code"] == "auth.token_revoked"
    # the user's other session (another device) is untouched
    assert (await client.get("/api/v1/me", headers=bearer(other["access_token"]))).status == 200


async def test_logout_without_a_body_revokes_the_token(start_gateway: GatewayFactory) -> None:
    """Issue 14 item 9: the body is optional, but a POST without one answered 415 and revoked nothing."""
    client = await start_gateway()
    for send in (
        {},  # no body at all (Content-Length: 0, no Content-Type)
        {"data": b"", "headers": {"Content-Type": "text/plain"}},  # an empty body of any type
        {"data": b"", "headers": {"Content-Type": "application/json"}},
    ):
        pair = await register_and_login(client)
        headers = {**bearer(pair["access_token"]), **send.pop("headers", {})}  # type: ignore[dict-item]
        r = await client.post("/api/v1/auth/logout", headers=headers, **send)  # type: ignore[arg-type]
        assert r.status == 204, (send, await r.text())
        r = await client.get("/api/v1/me", headers=bearer(pair["access_token"]))
        assert r.status == 401 and (await r.json())["code"] == "auth.token_revoked"
        # its session is ended too (sid): the refresh token is dead without being sent
        r = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status == 401 and (await r.json())["code"] == "auth.token_revoked"
    # a body that is there must still be JSON
    pair = await register_and_login(client)
    r = await client.post(
        "/api/v1/auth/logout",
        data=b"refresh_token=x",
        headers={**bearer(pair["access_token"]), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 415


async def test_revocation_survives_restart(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    first = await start_gateway()
    pair = await register_and_login(first)
    r = await first.post("/api/v1/auth/logout", json={}, headers=bearer(pair["access_token"]))
    assert r.status == 204
    await first.close()

    restarted = await start_gateway()
    r = await restarted.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert r.status == 401 and (await r.json())["code"] == "auth.token_revoked"


async def test_refresh_tokens_live_30_days_are_stored_hashed_and_then_expire(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    import hashlib
    from datetime import UTC, datetime, timedelta

    assert gateway_settings.refresh_token_ttl_s == 30 * 86400
    client = await start_gateway()
    pair = await register_and_login(client)
    dsn, schema = gateway_settings.database_url, gateway_settings.schema
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(f"SELECT token_hash, expires_at FROM {schema}.refresh_tokens")
        assert len(rows) == 1
        [row] = rows
        # only the SHA-256 of the token is kept: a leaked table cannot be replayed
        assert bytes(row["token_hash"]) == hashlib.sha256(pair["refresh_token"].encode()).digest()
        lifetime = row["expires_at"] - datetime.now(UTC)
        assert timedelta(days=30) - timedelta(minutes=1) < lifetime <= timedelta(days=30)
        # thirty days later
        await conn.execute(f"UPDATE {schema}.refresh_tokens SET expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 401 and (await r.json())["code"] == "auth.refresh_expired"
