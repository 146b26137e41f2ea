"""/api/v1/webhooks: register (secret once), list, delete, re-enable; validation; owner scoping."""

from __future__ import annotations

import asyncio
import uuid

from common.storage.fs import FileStore
from common.testing.auth import TokenFactory

from .conftest import AppFactory

HOOK = {"url": "http://127.0.0.1:9/hook", "events": ["stream.ready", "stream.failed"]}


async def test_the_secret_is_shown_once_and_endpoints_are_listed_without_it(
    app_factory: AppFactory, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store)
    user = uuid.uuid4()
    resp = await client.post("/api/v1/webhooks", json=HOOK, headers=token_factory.headers(user))
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    assert created["events"] == ["stream.ready", "stream.failed"] and created["url"] == HOOK["url"]
    assert resp.headers["Location"] == f"/api/v1/webhooks/{created['id']}"

    listed = await (await client.get("/api/v1/webhooks", headers=token_factory.headers(user))).json()
    assert [h["id"] for h in listed["items"]] == [created["id"]]
    assert "secret" not in listed["items"][0]
    one = await (
        await client.get(f"/api/v1/webhooks/{created['id']}", headers=token_factory.headers(user))
    ).json()
    assert "secret" not in one and one["enabled"] is True and one["disabled_reason"] is None
    listing = await (await client.get("/api/v1/webhooks", headers=token_factory.headers(user))).text()
    assert created["secret"] not in listing


async def test_bad_urls_and_events_are_refused_with_stable_codes(
    app_factory: AppFactory, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store, webhook_allow_private=False)
    h = token_factory.headers(uuid.uuid4())
    cases = [
        ({"url": "ftp://example.com/x", "events": ["stream.ready"]}, 422, "webhook.invalid_url"),
        ({"url": "http://127.0.0.1:8000/x", "events": ["stream.ready"]}, 422, "webhook.forbidden_address"),
        (
            {"url": "http://169.254.169.254/latest", "events": ["stream.ready"]},
            422,
            "webhook.forbidden_address",
        ),
        ({"url": "http://localhost:8000/x", "events": ["stream.ready"]}, 422, "webhook.forbidden_address"),
        # numeric and hex spellings of 127.0.0.1 resolve to loopback: caught by resolving the name
        ({"url": "http://2130706433:8000/x", "events": ["stream.ready"]}, 422, "webhook.forbidden_address"),
        ({"url": "http://0x7f.1:8000/x", "events": ["stream.ready"]}, 422, "webhook.forbidden_address"),
        (
            {"url": "http://no-such-host.invalid/x", "events": ["stream.ready"]},
            422,
            "webhook.unresolvable_host",
        ),
        (
            {"url": "https://hooks.example.com/x", "events": ["stream.exploded"]},
            422,
            "webhook.invalid_events",
        ),
        ({"url": "https://hooks.example.com/x", "events": []}, 422, "webhook.invalid_events"),
        ({"url": "https://hooks.example.com/x"}, 422, "validation.invalid"),
    ]
    for body, status, code in cases:
        resp = await client.post("/api/v1/webhooks", json=body, headers=h)
        assert resp.status == status, body
        assert (await resp.json())["code"] == code, body
    resp = await client.post(
        "/api/v1/webhooks", data=b"{not json", headers={**h, "Content-Type": "application/json"}
    )
    assert resp.status == 400
    listed = await (await client.get("/api/v1/webhooks", headers=h)).json()
    assert listed["items"] == []


async def test_another_users_endpoint_is_invisible(
    app_factory: AppFactory, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store)
    owner, stranger = uuid.uuid4(), uuid.uuid4()
    hook = await (
        await client.post("/api/v1/webhooks", json=HOOK, headers=token_factory.headers(owner))
    ).json()
    hs = token_factory.headers(stranger)
    for method, path in (
        ("GET", f"/api/v1/webhooks/{hook['id']}"),
        ("DELETE", f"/api/v1/webhooks/{hook['id']}"),
        ("GET", f"/api/v1/webhooks/{hook['id']}/deliveries"),
        ("POST", f"/api/v1/webhooks/{hook['id']}/enable"),
    ):
        resp = await client.request(method, path, headers=hs)
        assert resp.status == 404 and (await resp.json())["code"] == "webhook.not_found", (method, path)
    assert (await (await client.get("/api/v1/webhooks", headers=hs)).json())["items"] == []
    # still there for its owner
    assert (
        await client.get(f"/api/v1/webhooks/{hook['id']}", headers=token_factory.headers(owner))
    ).status == 200


async def test_delete_removes_the_endpoint(
    app_factory: AppFactory, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store)
    h = token_factory.headers(uuid.uuid4())
    hook = await (await client.post("/api/v1/webhooks", json=HOOK, headers=h)).json()
    assert (await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=h)).status == 204
    assert (await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=h)).status == 404
    assert (await (await client.get("/api/v1/webhooks", headers=h)).json())["items"] == []


async def test_endpoints_per_account_are_limited_and_a_jwt_is_required(
    app_factory: AppFactory, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store, webhook_max_per_user=2)
    h = token_factory.headers(uuid.uuid4())
    for _ in range(2):
        assert (await client.post("/api/v1/webhooks", json=HOOK, headers=h)).status == 201
    resp = await client.post("/api/v1/webhooks", json=HOOK, headers=h)
    assert resp.status == 409 and (await resp.json())["code"] == "webhook.limit_reached"
    assert (await client.get("/api/v1/webhooks")).status == 401
    assert (await client.post("/api/v1/webhooks", json=HOOK)).status == 401


async def test_concurrent_creations_cannot_exceed_the_per_account_limit(
    app_factory: AppFactory, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store, webhook_max_per_user=2)
    h = token_factory.headers(uuid.uuid4())
    responses = await asyncio.gather(
        *(client.post("/api/v1/webhooks", json=HOOK, headers=h) for _ in range(8))
    )
    assert sorted(r.status for r in responses) == [201, 201] + [409] * 6
    assert len((await (await client.get("/api/v1/webhooks", headers=h)).json())["items"]) == 2
