"""The billing HTTP API over a real aiohttp server and the real Postgres: balance, ledger, prices, top-ups, webhook."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from openapi_spec_validator import validate

from billing import ledger, webhook
from billing.app import create_app
from common.errors import CodedError
from common.events.base import decode
from common.settings import SettingsError

SECRET = "whsec_test_0123456789"  # = conftest.WEBHOOK_SECRET


@pytest.fixture
async def client(billing_settings, aiohttp_client, memory_bus, token_factory):
    app = create_app(billing_settings, role="api", bus=memory_bus, verifier=token_factory.verifier())
    return await aiohttp_client(app)


def signed(body: dict, *, secret: str = SECRET, at: float | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = webhook.signed_headers(secret, int(at if at is not None else time.time()), raw)
    return raw, {**headers, "Content-Type": "application/json"}


async def new_order(client, token_factory, user: uuid.UUID, credits: int = 500) -> dict:
    resp = await client.post(
        "/api/v1/billing/topups", json={"amount": credits}, headers=token_factory.headers(user)
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_balance_shows_balance_held_and_available(client, books, token_factory) -> None:
    user = await books.register()
    await books.hold(user, 30)
    resp = await client.get("/api/v1/billing/balance", headers=token_factory.headers(user))
    assert resp.status == 200
    assert await resp.json() == {"account_id": str(user), "balance": 100, "held": 30, "available": 70}


async def test_every_user_route_needs_a_valid_token(client, token_factory) -> None:
    for method, path in [
        ("GET", "/api/v1/billing/balance"),
        ("GET", "/api/v1/billing/ledger"),
        ("POST", "/api/v1/billing/topups"),
        ("GET", "/api/v1/billing/topups/ord_x"),
    ]:
        resp = await client.request(method, path)
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["code"] == "auth.missing_token"
    resp = await client.get("/api/v1/billing/balance", headers={"Authorization": "Bearer nonsense"})
    assert (await resp.json())["code"] == "auth.invalid_token"


async def test_ledger_is_newest_first_and_paginated(client, books, token_factory) -> None:
    user = await books.register()
    for i in range(4):
        ref = await books.hold(user, 10 + i)
        await books.settle(user, ref, 1 + i)
    seen: list[dict] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/api/v1/billing/ledger", params=query, headers=token_factory.headers(user))
        assert resp.status == 200
        page = await resp.json()
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["kind"] for e in seen] == ["capture"] * 4 + ["grant"]
    assert [e["amount"] for e in seen] == [-4, -3, -2, -1, 100]
    assert [e["balance_after"] for e in seen] == [90, 94, 97, 99, 100]
    assert seen[-1]["reference"] == "signup"
    other = await client.get("/api/v1/billing/ledger", headers=token_factory.headers(uuid.uuid4()))
    assert (await other.json())["items"] == []  # nobody sees another account's entries
    bad = await client.get("/api/v1/billing/ledger?limit=0", headers=token_factory.headers(user))
    assert (bad.status, (await bad.json())["code"]) == (422, "validation.invalid")
    bad = await client.get("/api/v1/billing/ledger?cursor=%%%", headers=token_factory.headers(user))
    assert (bad.status, (await bad.json())["code"]) == (422, "validation.invalid")


async def test_prices_come_from_settings_and_need_no_token(
    billing_settings, aiohttp_client, memory_bus
) -> None:
    settings = billing_settings.with_(
        prices=("captions_per_minute=3", "analysis_per_video=7", "dubbing_per_minute=9")
    )
    client = await aiohttp_client(create_app(settings, role="api", bus=memory_bus, use_auth=False))
    resp = await client.get("/api/v1/billing/prices")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["prices"] == {"captions_per_minute": 3, "analysis_per_video": 7, "dubbing_per_minute": 9}
    assert doc["per"]["captions_per_minute"] == "started minute of source audio"
    assert doc["credit_price"] == {"amount": 10, "currency": "KRW"}


async def test_topup_creates_a_priced_pending_order_owned_by_the_caller(client, books, token_factory) -> None:
    user = await books.register()
    order = await new_order(client, token_factory, user, 250)
    assert order["status"] == "pending"
    assert order["amount"] == 250
    assert order["price"] == {"amount": 2500, "currency": "KRW"}
    mine = await client.get(
        f"/api/v1/billing/topups/{order['order_id']}", headers=token_factory.headers(user)
    )
    assert (await mine.json())["order_id"] == order["order_id"]
    theirs = await client.get(
        f"/api/v1/billing/topups/{order['order_id']}", headers=token_factory.headers(uuid.uuid4())
    )
    assert theirs.status == 404
    for bad in ({"amount": 0}, {"amount": 5}, {"amount": 10**9}):
        resp = await client.post("/api/v1/billing/topups", json=bad, headers=token_factory.headers(user))
        assert (resp.status, (await resp.json())["code"]) == (422, "billing.invalid_amount")
    resp = await client.post(
        "/api/v1/billing/topups", json={"amount": "x"}, headers=token_factory.headers(user)
    )
    assert (resp.status, (await resp.json())["code"]) == (422, "validation.invalid")


async def test_a_valid_webhook_credits_exactly_once(client, books, token_factory, memory_bus) -> None:
    user = await books.register()
    order = await new_order(client, token_factory, user, 500)
    note = {
        "orderId": order["order_id"],
        "paymentKey": "pk_1",
        "amount": 5000,
        "status": "DONE",
        "method": "card",
    }
    raw, headers = signed(note)
    results = await asyncio.gather(
        *(client.post("/api/v1/billing/payments/webhook", data=raw, headers=headers) for _ in range(5))
    )
    bodies = [await r.json() for r in results]
    assert all(r.status == 200 for r in results)
    assert sorted(b["duplicate"] for b in bodies) == [False, True, True, True, True]
    assert {b["outcome"] for b in bodies} == {"credited"}
    raw, headers = signed(note)  # the provider's retry, freshly signed
    again = await client.post("/api/v1/billing/payments/webhook", data=raw, headers=headers)
    assert (await again.json())["duplicate"] is True

    account = await books.account(user)
    assert account.balance == 600
    assert await books.entries(user, "topup") == 1
    status = await client.get(
        f"/api/v1/billing/topups/{order['order_id']}", headers=token_factory.headers(user)
    )
    assert (await status.json())["status"] == "paid"
    # the top-up is announced through the outbox
    for _ in range(100):
        if any(rk == "credits.topped_up.v1" for rk, _ in memory_bus.published):
            break
        await asyncio.sleep(0.02)
    [event] = [decode(body) for rk, body in memory_bus.published if rk == "credits.topped_up.v1"]
    assert (event.account_id, event.amount, event.balance_after) == (user, 500, 600)
    assert await books.violations() == []


async def test_a_payment_key_pays_one_order_only_even_when_notifications_race(
    client, books, token_factory
) -> None:
    user = await books.register()
    first, second = [await new_order(client, token_factory, user, 500) for _ in range(2)]

    def note(order: dict) -> dict:
        return {"orderId": order["order_id"], "paymentKey": "pk_shared", "amount": 5000, "status": "DONE"}

    # two orders named with one payment key at the same moment: one is credited, the other refused, none is a 500
    results = await asyncio.gather(
        *(
            client.post("/api/v1/billing/payments/webhook", data=raw, headers=headers)
            for raw, headers in (signed(note(first)), signed(note(second)))
        )
    )
    assert sorted(r.status for r in results) == [200, 409]
    [refused] = [await r.json() for r in results if r.status == 409]
    assert refused["code"] == "payment.key_conflict"
    # a later notification naming the other order with that key is refused the same way, not answered "credited"
    paid = next(o for o, r in zip((first, second), results, strict=True) if r.status == 200)
    other = second if paid is first else first
    raw, headers = signed(note(other))
    again = await client.post("/api/v1/billing/payments/webhook", data=raw, headers=headers)
    assert (again.status, (await again.json())["code"]) == (409, "payment.key_conflict")
    assert (await books.account(user)).balance == 600 and await books.entries(user, "topup") == 1
    statuses = {
        o["order_id"]: (
            await (
                await client.get(
                    f"/api/v1/billing/topups/{o['order_id']}", headers=token_factory.headers(user)
                )
            ).json()
        )["status"]
        for o in (first, second)
    }
    assert statuses == {paid["order_id"]: "paid", other["order_id"]: "pending"}
    assert await books.violations() == []


async def test_forged_replayed_or_mismatched_webhooks_credit_nothing(client, books, token_factory) -> None:
    user = await books.register()
    order = await new_order(client, token_factory, user, 100)
    good = {"orderId": order["order_id"], "paymentKey": "pk_x", "amount": 1000, "status": "DONE"}
    url = "/api/v1/billing/payments/webhook"

    raw, headers = signed(good, secret="not-the-secret")
    resp = await client.post(url, data=raw, headers=headers)
    assert (resp.status, (await resp.json())["code"]) == (401, "payment.signature_invalid")

    raw, headers = signed(good)
    tampered = raw.replace(b"1000", b"9000")  # body changed after signing
    resp = await client.post(url, data=tampered, headers=headers)
    assert (resp.status, (await resp.json())["code"]) == (401, "payment.signature_invalid")

    resp = await client.post(url, data=raw, headers={"Content-Type": "application/json"})
    assert (resp.status, (await resp.json())["code"]) == (401, "payment.signature_missing")

    raw, headers = signed(good, at=time.time() - 3600)  # a captured delivery replayed an hour later
    resp = await client.post(url, data=raw, headers=headers)
    assert (resp.status, (await resp.json())["code"]) == (401, "payment.signature_expired")

    raw, headers = signed({**good, "paymentKey": "pk_cheap", "amount": 10})
    for _ in range(2):  # and its retry answers the same
        resp = await client.post(url, data=raw, headers=headers)
        assert (resp.status, (await resp.json())["code"]) == (422, "payment.amount_mismatch")

    raw, headers = signed({**good, "orderId": "ord_nope"})
    resp = await client.post(url, data=raw, headers=headers)
    assert (resp.status, (await resp.json())["code"]) == (404, "order.not_found")

    raw, headers = signed({**good, "status": "WAITING_FOR_DEPOSIT"})
    resp = await client.post(url, data=raw, headers=headers)
    assert (resp.status, (await resp.json())["outcome"]) == (200, "ignored")

    assert (await books.account(user)).balance == 100  # nothing credited so far
    raw, headers = signed(good)
    resp = await client.post(url, data=raw, headers=headers)
    assert (await resp.json())["outcome"] == "credited"
    raw, headers = signed({**good, "paymentKey": "pk_second"})  # a second payment of a paid order
    resp = await client.post(url, data=raw, headers=headers)
    assert (resp.status, (await resp.json())["code"]) == (409, "payment.order_already_paid")
    assert (await books.account(user)).balance == 200
    assert await books.violations() == []


async def test_an_aborted_payment_fails_the_order(client, books, token_factory) -> None:
    user = await books.register()
    order = await new_order(client, token_factory, user, 100)
    raw, headers = signed(
        {"orderId": order["order_id"], "paymentKey": "pk_a", "amount": 1000, "status": "ABORTED"}
    )
    resp = await client.post("/api/v1/billing/payments/webhook", data=raw, headers=headers)
    assert (await resp.json())["order_status"] == "failed"
    assert (await books.account(user)).balance == 100


async def test_the_webhook_refuses_everything_without_a_configured_secret(
    billing_settings, aiohttp_client, memory_bus
) -> None:
    app = create_app(
        billing_settings.with_(payment_webhook_secret=""), role="api", bus=memory_bus, use_auth=False
    )
    client = await aiohttp_client(app)
    raw, headers = signed({"orderId": "o", "paymentKey": "k", "amount": 1, "status": "DONE"}, secret="")
    resp = await client.post("/api/v1/billing/payments/webhook", data=raw, headers=headers)
    assert (resp.status, (await resp.json())["code"]) == (503, "payment.webhook_not_configured")


async def test_a_test_payment_runs_the_real_webhook_and_credits_the_order_once(
    billing_settings, aiohttp_client, memory_bus, token_factory, books
) -> None:
    app = create_app(
        billing_settings.with_(billing_test_payments=True),
        role="api",
        bus=memory_bus,
        verifier=token_factory.verifier(),
    )
    client = await aiohttp_client(app)
    prices = await (await client.get("/api/v1/billing/prices")).json()
    assert prices["topup"]["test_payments"] is True  # the page shows its "Pay (test)" button
    user = await books.register()
    order = await new_order(client, token_factory, user, 300)
    url = f"/api/v1/billing/topups/{order['order_id']}/test-pay"
    someone = await client.post(url, headers=token_factory.headers(uuid.uuid4()))
    assert (someone.status, (await someone.json())["code"]) == (404, "topup.not_found")

    first, again = [await client.post(url, headers=token_factory.headers(user)) for _ in range(2)]
    assert first.status == 200, await first.text()
    assert await first.json() == {
        "order_id": order["order_id"],
        "order_status": "paid",
        "outcome": "credited",
        "duplicate": False,
    }
    assert (again.status, (await again.json())["duplicate"]) == (200, True)
    assert (await books.account(user)).balance == 100 + 300
    assert await books.entries(user, "topup") == 1
    status = await client.get(
        f"/api/v1/billing/topups/{order['order_id']}", headers=token_factory.headers(user)
    )
    assert (await status.json())["status"] == "paid"
    assert await books.violations() == []


async def test_test_payments_are_refused_unless_enabled_and_never_allowed_in_production(
    client, books, token_factory, billing_settings
) -> None:
    user = await books.register()
    order = await new_order(client, token_factory, user, 100)
    resp = await client.post(
        f"/api/v1/billing/topups/{order['order_id']}/test-pay", headers=token_factory.headers(user)
    )
    assert (resp.status, (await resp.json())["code"]) == (403, "payment.test_payments_disabled")
    assert (await (await client.get("/api/v1/billing/prices")).json())["topup"]["test_payments"] is False
    assert (await books.account(user)).balance == 100
    with pytest.raises(SettingsError, match="BILLING_TEST_PAYMENTS"):
        billing_settings.with_(billing_test_payments=True, environment="production")


async def test_admin_adjustment_refuses_to_go_below_what_is_held(books) -> None:
    user = await books.register()
    await books.hold(user, 80)
    async with books.pool.acquire() as conn:
        with pytest.raises(CodedError) as err:
            await ledger.adjust(conn, account_id=user, amount=-30, reason="too much")
    assert err.value.code == "credits.insufficient"


async def test_openapi_document_is_valid_and_lists_the_public_paths(client) -> None:
    resp = await client.get("/openapi.json")
    doc = await resp.json()
    validate(doc)
    assert set(doc["paths"]) == {
        "/api/v1/billing/balance",
        "/api/v1/billing/ledger",
        "/api/v1/billing/prices",
        "/api/v1/billing/topups",
        "/api/v1/billing/topups/{order_id}",
        "/api/v1/billing/topups/{order_id}/test-pay",
        "/api/v1/billing/payments/webhook",
    }
    routes = {r.resource.canonical for r in client.app.router.routes() if r.resource is not None}
    assert set(doc["paths"]) <= routes
