"""Personal API keys: shown once, listed, revoked at once on every replica, scoped, rate limited per key,
forwarded upstream as the owner's access token; forged, revoked and out-of-scope keys are refused."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from common.auth import JWKSVerifier
from gateway.config import GatewaySettings

from ..conftest import SEEN, GatewayFactory, bearer, register_and_login

Client = TestClient[Any, Any]


async def _create(client: Client, access: str, name: str = "script", scope: str = "full") -> dict[str, Any]:
    r = await client.post("/api/v1/auth/keys", json={"name": name, "scope": scope}, headers=bearer(access))
    assert r.status == 201, await r.text()
    assert r.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = await r.json()
    return body


async def test_a_key_is_shown_once_listed_by_prefix_and_stored_hashed(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, database_url: str
) -> None:
    client = await start_gateway()
    pair = await register_and_login(client)
    created = await _create(client, pair["access_token"], name="nightly export", scope="read")
    key = created["key"]
    assert key.startswith(f"rf_live_{created['prefix']}_") and len(key) == len("rf_live_") + 12 + 1 + 43
    assert created["scope"] == "read" and created["last_used_at"] is None

    r = await client.get("/api/v1/me", headers=bearer(key))
    assert r.status == 200 and (await r.json())["email"] == pair["user"]["email"]

    r = await client.get("/api/v1/auth/keys", headers=bearer(pair["access_token"]))
    listed = (await r.json())["items"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert listed[0]["name"] == "nightly export" and listed[0]["prefix"] == created["prefix"]
    assert listed[0]["last_used_at"] is not None  # the GET /me above
    assert "key" not in listed[0]

    conn = await asyncpg.connect(database_url, server_settings={"search_path": gateway_settings.db_schema})
    try:
        row = await conn.fetchrow("SELECT * FROM api_keys WHERE id = $1", uuid.UUID(created["id"]))
        dump = " ".join(str(v) for v in row.values())
    finally:
        await conn.close()
    assert row["key_hash"] == hashlib.sha256(key.encode()).digest()
    secret = key[len(f"rf_live_{created['prefix']}_") :]  # base64url: the secret itself may contain "_"
    assert len(secret) == 43 and secret not in dump and key not in dump

    # other users neither see nor revoke it
    other = await register_and_login(client)
    r = await client.get("/api/v1/auth/keys", headers=bearer(other["access_token"]))
    assert (await r.json())["items"] == []
    r = await client.delete(f"/api/v1/auth/keys/{created['id']}", headers=bearer(other["access_token"]))
    assert r.status == 404 and (await r.json())["code"] == "api_key.not_found"
    r = await client.get("/api/v1/me", headers=bearer(key))
    assert r.status == 200


async def test_forged_revoked_and_out_of_scope_keys_are_refused(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    pair = await register_and_login(client)
    full = await _create(client, pair["access_token"], scope="full")
    read = await _create(client, pair["access_token"], scope="read")
    key = full["key"]
    prefix = full["prefix"]
    forged = {
        "other secret, same prefix": f"rf_live_{prefix}_{'A' * 43}",
        "one character changed": key[:-1] + ("A" if key[-1] != "A" else "B"),
        "truncated": key[:-5],
        "malformed": "rf_live_nothex!!!!!!_x",
        "made up": f"rf_live_{'0' * 12}_{'x' * 43}",
    }
    for name, token in forged.items():
        r = await client.get("/api/v1/me", headers=bearer(token))
        assert r.status == 401, name
        assert (await r.json())["code"] == "auth.invalid_api_key", name
        assert r.headers["WWW-Authenticate"].startswith("Bearer")

    # read scope: GET and HEAD only, at the gateway's own routes and at proxied ones
    r = await client.get("/api/v1/jobs", headers=bearer(read["key"]))
    assert r.status == 200
    for method, path in [
        ("POST", "/api/v1/videos"),
        ("DELETE", "/api/v1/videos/abc"),
        ("POST", f"/api/v1/jobs/{uuid.uuid4()}/cancel"),
        ("DELETE", f"/api/v1/auth/keys/{full['id']}"),
        ("POST", "/api/v1/auth/keys"),
        ("POST", "/api/v1/auth/logout"),
    ]:
        r = await client.request(method, path, headers=bearer(read["key"]), json={})
        assert r.status == 403, (method, path)
        assert (await r.json())["code"] == "auth.insufficient_scope", (method, path)

    # keys are made with a password login only, and a key does not log out
    for path in ("/api/v1/auth/keys", "/api/v1/auth/logout"):
        r = await client.post(path, headers=bearer(key), json={"name": "more", "scope": "full"})
        assert r.status == 403 and (await r.json())["code"] == "auth.session_required", path

    # revocation (here with the full key itself) is refused from the very next request on
    r = await client.delete(f"/api/v1/auth/keys/{full['id']}", headers=bearer(key))
    assert r.status == 204
    r = await client.get("/api/v1/me", headers=bearer(key))
    assert r.status == 401 and (await r.json())["code"] == "auth.api_key_revoked"
    r = await client.get("/api/v1/auth/keys", headers=bearer(pair["access_token"]))
    assert [k["id"] for k in (await r.json())["items"]] == [read["id"]]
    # revoking twice is the same revocation; the login session is untouched
    r = await client.delete(f"/api/v1/auth/keys/{full['id']}", headers=bearer(pair["access_token"]))
    assert r.status == 204


async def test_revocation_on_one_replica_is_refused_by_another_at_once(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    a = await start_gateway(gateway_settings)
    b = await start_gateway(gateway_settings)
    pair = await register_and_login(a)
    created = await _create(a, pair["access_token"])
    for replica in (a, b):  # both have accepted it (a cache, if any, would now hold it)
        r = await replica.get("/api/v1/me", headers=bearer(created["key"]))
        assert r.status == 200
    r = await a.delete(f"/api/v1/auth/keys/{created['id']}", headers=bearer(pair["access_token"]))
    assert r.status == 204
    r = await b.get("/api/v1/me", headers=bearer(created["key"]))
    assert r.status == 401 and (await r.json())["code"] == "auth.api_key_revoked"


async def test_a_key_reaches_a_service_as_its_owners_access_token(
    start_gateway: GatewayFactory,
    gateway_settings: GatewaySettings,
    fake_upstream: Callable[..., Awaitable[TestServer]],
) -> None:
    ingest = await fake_upstream("ingest")
    billing = await fake_upstream("billing")
    settings = gateway_settings.with_(
        upstream_ingest=str(ingest.make_url("")).rstrip("/"),
        upstream_billing=str(billing.make_url("")).rstrip("/"),
    )
    client = await start_gateway(settings)
    pair = await register_and_login(client)
    created = await _create(client, pair["access_token"], scope="read")
    r = await client.get("/api/v1/videos?limit=5", headers=bearer(created["key"]))
    assert r.status == 200, await r.text()
    seen = ingest.app[SEEN][-1]
    assert seen["path_qs"] == "/api/v1/videos?limit=5"
    forwarded = seen["headers"]["Authorization"]
    assert created["key"] not in forwarded  # the key never leaves the gateway
    # what a service runs (common.auth.JWKSVerifier against the gateway's JWKS) accepts it as the owner
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    verifier = JWKSVerifier(audience=settings.jwt_audience, issuer=settings.jwt_issuer, jwks=jwks)
    principal = await verifier.verify(forwarded.removeprefix("Bearer "))
    assert str(principal.user_id) == pair["user"]["id"]
    assert principal.claims["scope"] == "read" and principal.claims["key_id"] == created["id"]
    assert principal.expires_at - principal.claims["iat"] == settings.api_key_token_ttl_s

    # such a minted token is for services only: the gateway refuses it from a client
    r = await client.get("/api/v1/me", headers={"Authorization": forwarded})
    assert r.status == 401 and (await r.json())["code"] == "auth.invalid_token"

    # a public route does not pass the key on either
    r = await client.get("/api/v1/billing/prices", headers=bearer(created["key"]))
    assert r.status == 200
    assert "Authorization" not in billing.app[SEEN][-1]["headers"]


async def test_a_read_key_makes_playback_links_and_changes_nothing(
    start_gateway: GatewayFactory,
    gateway_settings: GatewaySettings,
    fake_upstream: Callable[..., Awaitable[TestServer]],
) -> None:
    """Minting a signed playback link is reading (``reelforge download`` does it): the one POST a read key may
    make. Everything else that is not GET/HEAD stays refused at the gateway, before any service sees it."""
    upstreams = {name: await fake_upstream(name) for name in ("ingest", "streaming", "captions", "render")}
    settings = gateway_settings.with_(
        **{f"upstream_{name}": str(server.make_url("")).rstrip("/") for name, server in upstreams.items()}
    )
    client = await start_gateway(settings)
    pair = await register_and_login(client)
    read = await _create(client, pair["access_token"], scope="read")
    video = uuid.uuid4()

    r = await client.post(f"/api/v1/videos/{video}/playback", headers=bearer(read["key"]), json={})
    assert r.status == 200, await r.text()
    seen = upstreams["streaming"].app[SEEN]
    assert [(s["method"], s["path_qs"]) for s in seen] == [("POST", f"/api/v1/videos/{video}/playback")]
    assert read["key"] not in seen[0]["headers"]["Authorization"]  # the owner's minted token, as for a GET

    refused = [
        ("PUT", f"/api/v1/videos/{video}/playback"),
        ("DELETE", f"/api/v1/videos/{video}/playback"),
        ("POST", f"/api/v1/videos/{video}/playback/"),
        ("POST", f"/api/v1/videos/{video}/playback/more"),
        ("POST", f"/api/v1/videos/{video}/x/playback"),
        ("POST", "/api/v1/videos//playback"),
        ("POST", f"/api/v1/videos/{video}/stream"),
        ("POST", f"/api/v1/videos/{video}/captions"),
        ("PATCH", f"/api/v1/videos/{video}"),
        ("POST", "/api/v1/videos"),
        ("POST", "/api/v1/webhooks"),
        ("POST", "/api/v1/rankings"),
    ]
    for method, path in refused:
        r = await client.request(method, path, headers=bearer(read["key"]), json={})
        assert r.status == 403, (method, path, r.status)
        assert (await r.json())["code"] == "auth.insufficient_scope", (method, path)
    assert len(seen) == 1 and all(not upstreams[n].app[SEEN] for n in ("ingest", "captions", "render"))

    # a full key and a login session make links as before
    full = await _create(client, pair["access_token"], scope="full")
    for token in (full["key"], pair["access_token"]):
        r = await client.post(f"/api/v1/videos/{video}/playback", headers=bearer(token))
        assert r.status == 200, await r.text()
    assert len(seen) == 3


async def test_each_key_has_its_own_rate_limit_and_a_cap_on_keys(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    client = await start_gateway(
        gateway_settings.with_(rate_limit_api_key=3, rate_limit_default=50, api_keys_per_user=2)
    )
    pair = await register_and_login(client)
    one = await _create(client, pair["access_token"], name="one")
    two = await _create(client, pair["access_token"], name="two")
    statuses = [(await client.get("/api/v1/me", headers=bearer(one["key"]))).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    r = await client.get("/api/v1/me", headers=bearer(one["key"]))
    assert r.headers["RateLimit-Limit"] == "3" and r.headers["Retry-After"]
    # the other key and the login session each have their own budget
    assert (await client.get("/api/v1/me", headers=bearer(two["key"]))).status == 200
    assert (await client.get("/api/v1/me", headers=bearer(pair["access_token"]))).status == 200

    r = await client.post("/api/v1/auth/keys", json={"name": "three"}, headers=bearer(pair["access_token"]))
    assert r.status == 409 and (await r.json())["code"] == "api_key.limit_reached"
    await client.delete(f"/api/v1/auth/keys/{two['id']}", headers=bearer(pair["access_token"]))
    r = await client.post("/api/v1/auth/keys", json={"name": "three"}, headers=bearer(pair["access_token"]))
    assert r.status == 201 and (await r.json())["scope"] == "read"  # least privilege unless asked
    r = await client.post(
        "/api/v1/auth/keys", json={"name": "", "scope": "admin"}, headers=bearer(pair["access_token"])
    )
    assert r.status == 422


async def test_a_revoked_keys_socket_is_closed(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    client = await start_gateway(gateway_settings.with_(ws_revocation_check_s=0.2))
    pair = await register_and_login(client)
    created = await _create(client, pair["access_token"], scope="read")
    ws = await client.ws_connect("/api/v1/ws", headers=bearer(created["key"]))
    hello = await ws.receive_json(timeout=5)
    assert hello == {"type": "hello", "user_id": pair["user"]["id"]}
    r = await client.delete(f"/api/v1/auth/keys/{created['id']}", headers=bearer(pair["access_token"]))
    assert r.status == 204
    msg = await ws.receive(timeout=10)
    assert ws.close_code == 4003, msg
