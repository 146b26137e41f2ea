"""Security regressions found in review: numbers a caller sends that Postgres cannot hold answer 422, not 500."""

from __future__ import annotations

import base64
import json
import time

import pytest
from structlog.testing import capture_logs

from billing import webhook
from billing.app import create_app

SECRET = "whsec_test_0123456789"  # = conftest.WEBHOOK_SECRET


@pytest.fixture
async def client(billing_settings, aiohttp_client, memory_bus, token_factory):
    app = create_app(billing_settings, role="api", bus=memory_bus, verifier=token_factory.verifier())
    return await aiohttp_client(app)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_a_ledger_cursor_beyond_bigint_is_refused_not_an_internal_error(
    client, books, token_factory
) -> None:
    # any user could answer themselves a 500 (and an "internal error" log line and counter tick) at will
    user = await books.register()
    with capture_logs() as logs:
        for text in ("9223372036854775808", "9" * 40, "-1", "0", "s1"):
            resp = await client.get(
                "/api/v1/billing/ledger",
                params={"cursor": _cursor(text)},
                headers=token_factory.headers(user),
            )
            assert (resp.status, (await resp.json())["code"]) == (422, "validation.invalid"), text
    assert not [e for e in logs if e["event"] == "http.unhandled"]
    # the largest real cursor still works
    resp = await client.get(
        "/api/v1/billing/ledger",
        params={"cursor": _cursor("9223372036854775807")},
        headers=token_factory.headers(user),
    )
    assert resp.status == 200 and [e["kind"] for e in (await resp.json())["items"]] == ["grant"]


async def test_a_signed_webhook_amount_beyond_bigint_is_refused_not_an_internal_error(
    client, books, token_factory
) -> None:
    # a 500 makes the provider retry the delivery forever; a 422 says the notification itself is unusable
    user = await books.register()
    resp = await client.post(
        "/api/v1/billing/topups", json={"amount": 100}, headers=token_factory.headers(user)
    )
    order = await resp.json()
    body = {"orderId": order["order_id"], "paymentKey": "pk_huge", "amount": 2**63, "status": "DONE"}
    raw = json.dumps(body).encode()
    headers = {**webhook.signed_headers(SECRET, int(time.time()), raw), "Content-Type": "application/json"}
    with capture_logs() as logs:
        resp = await client.post("/api/v1/billing/payments/webhook", data=raw, headers=headers)
    assert (resp.status, (await resp.json())["code"]) == (422, "validation.invalid")
    assert not [e for e in logs if e["event"] == "http.unhandled"]
    assert (await books.account(user)).balance == 100
    assert await books.violations() == []


async def test_a_nul_byte_in_a_path_segment_is_a_4xx_not_a_postgres_error(
    client, books, token_factory
) -> None:
    # issue 14: GET /api/v1/billing/topups/ord_%00x reached asyncpg (CharacterNotInRepertoireError → 500)
    from yarl import URL

    user = await books.register()
    with capture_logs() as logs:
        resp = await client.get(
            URL("/api/v1/billing/topups/ord_%00x", encoded=True), headers=token_factory.headers(user)
        )
        assert (resp.status, (await resp.json())["code"]) == (400, "request.invalid_characters")
    assert not [e for e in logs if e["event"] == "http.unhandled"]
