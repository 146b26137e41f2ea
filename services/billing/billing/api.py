"""HTTP handlers under /api/v1/billing: parse, authorise, call the ledger, answer."""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
from aiohttp import web

from common import db, outbox
from common.auth import require_user
from common.errors import CodedError, NotFound
from common.http import decode_json, json_response, read_json
from common.openapi import Api, Route
from common.pagination import Page, Paging, page_of, page_request
from common.service import HTTP_CLIENT, POOL, settings_of

from . import ledger, metrics, store, webhook
from .config import PRICE_UNITS, BillingSettings
from .models import (
    BIGINT_MAX,
    BalanceView,
    BillingCode,
    LedgerEntryView,
    MoneyView,
    OrderStatus,
    OrderView,
    PaymentNotification,
    PaymentResultView,
    PriceListView,
    TopupLimitsView,
    TopupRequest,
)

PREFIX = "/api/v1/billing"
_TOPUP = f"{PREFIX}/topups/{{order_id}}"
_NO_TOPUP = {404: [BillingCode.TOPUP_NOT_FOUND]}
LEDGER_PAGING = Paging(default=50, maximum=200)
#: the keyset position of a ledger page: an entry's ``seq`` (a positive bigint)
LedgerSeq = Annotated[int, msgspec.Meta(ge=1, le=BIGINT_MAX)]


async def balance(request: web.Request) -> web.Response:
    """GET /balance: the caller's balance, what is held, and what is available."""
    user = await require_user(request)
    async with request.app[POOL].acquire() as conn:
        account = await store.get_account(conn, account_id=user.user_id)
    bal, held = (account.balance, account.held) if account else (0, 0)
    return json_response(BalanceView(account_id=user.user_id, balance=bal, held=held, available=bal - held))


async def ledger_entries(request: web.Request) -> web.Response:
    """The caller's immutable ledger entries, newest first."""
    user = await require_user(request)
    page = page_request(request, LEDGER_PAGING, LedgerSeq)
    async with request.app[POOL].acquire() as conn:
        entries = await store.ledger_page(
            conn, account_id=user.user_id, before_seq=page.after, limit=page.limit + 1
        )
    return json_response(page_of(entries, page, key=lambda e: e.seq, view=LedgerEntryView.of))


async def prices(request: web.Request) -> web.Response:
    """The price list in credits (public: it is what a pricing page shows)."""
    settings = settings_of(request, BillingSettings)
    price_list = settings.price_list()
    return json_response(
        PriceListView(
            unit="credit",
            prices=price_list,
            per={name: PRICE_UNITS.get(name, "unit") for name in price_list},
            credit_price=MoneyView(amount=settings.credit_price, currency=settings.payment_currency),
            signup_grant=settings.signup_grant,
            topup=TopupLimitsView(
                min=settings.topup_min_credits,
                max=settings.topup_max_credits,
                test_payments=settings.billing_test_payments,
            ),
        ),
        headers={"Cache-Control": "public, max-age=60"},
    )


async def create_topup(request: web.Request) -> web.Response:
    """Create a pending top-up order to pay at the payment provider."""
    user = await require_user(request)
    body = await read_json(request, TopupRequest)
    settings = settings_of(request, BillingSettings)
    policy = ledger.TopupPolicy(
        credit_price=settings.credit_price,
        currency=settings.payment_currency,
        min_credits=settings.topup_min_credits,
        max_credits=settings.topup_max_credits,
    )
    async with db.transaction(request.app[POOL]) as conn:
        order = await ledger.create_order(conn, account_id=user.user_id, credits=body.amount, policy=policy)
    return json_response(
        OrderView.of(order), status=201, headers={"Location": f"{PREFIX}/topups/{order.order_id}"}
    )


async def get_topup(request: web.Request) -> web.Response:
    """One of the caller's top-up orders (404 for anyone else's)."""
    user = await require_user(request)
    async with request.app[POOL].acquire() as conn:
        order = await store.get_order(conn, order_id=request.match_info["order_id"])
    if order is None or order.account_id != user.user_id:
        raise NotFound("topup", "no such top-up order")
    return json_response(OrderView.of(order))


async def payment_webhook(request: web.Request) -> web.Response:
    """The payment provider's confirmation (HMAC-signed, no user token); credits an order exactly once."""
    settings = settings_of(request, BillingSettings)
    if not settings.payment_webhook_secret:
        raise CodedError(BillingCode.WEBHOOK_NOT_CONFIGURED, "PAYMENT_WEBHOOK_SECRET is not set", status=503)
    raw = await request.read()
    try:
        webhook.verify(
            settings.payment_webhook_secret,
            request.headers,
            raw,
            now=time.time(),
            tolerance_s=settings.payment_webhook_tolerance_s,
        )
    except webhook.SignatureError as e:
        metrics.WEBHOOKS.labels("stale" if e.code == BillingCode.SIGNATURE_EXPIRED else "forged").inc()
        raise
    note = decode_json(raw, PaymentNotification)
    async with db.transaction(request.app[POOL]) as conn:
        result = await ledger.confirm_payment(
            conn, order_id=note.order_id, payment_key=note.payment_key, amount=note.amount, status=note.status
        )
        for event in result.events:
            await outbox.add(conn, event)
    # refusals are committed (recorded) first, then answered with a problem; repeats answer the same
    if result.outcome == "amount_mismatch":
        raise CodedError(BillingCode.AMOUNT_MISMATCH, f"the amount does not match order {note.order_id}")
    if result.outcome == "order_already_paid":
        raise CodedError(
            BillingCode.ORDER_ALREADY_PAID, f"order {note.order_id} was paid by another payment", status=409
        )
    return json_response(
        PaymentResultView(
            order_id=result.order.order_id,
            order_status=OrderStatus(result.order.status),
            outcome=result.outcome,
            duplicate=result.duplicate,
        )
    )


def _own_address(request: web.Request) -> str:
    """This process's own listening address (the socket the request came in on), as a loopback-reachable URL."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple):
        raise web.HTTPServiceUnavailable(reason="billing does not listen on TCP")
    host, port = str(sockname[0]), int(sockname[1])
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def test_pay(request: web.Request) -> web.Response:
    """Development and tests only (BILLING_TEST_PAYMENTS): pay one of the caller's orders as the provider would,
    by POSTing a signed DONE notification to billing's own webhook; answers what the webhook answered."""
    user = await require_user(request)
    settings = settings_of(request, BillingSettings)
    if not settings.billing_test_payments:
        raise CodedError(
            BillingCode.TEST_PAYMENTS_DISABLED, "test payments are off (BILLING_TEST_PAYMENTS)", status=403
        )
    if not settings.payment_webhook_secret:
        raise CodedError(BillingCode.WEBHOOK_NOT_CONFIGURED, "PAYMENT_WEBHOOK_SECRET is not set", status=503)
    async with request.app[POOL].acquire() as conn:
        order = await store.get_order(conn, order_id=request.match_info["order_id"])
    if order is None or order.account_id != user.user_id:
        raise NotFound("topup", "no such top-up order")
    # one payment key per order: paying twice is the provider's retry (duplicate), not a second payment
    note = PaymentNotification(
        order_id=order.order_id, payment_key=f"test_{order.order_id}", amount=order.price, status="DONE"
    )
    raw = msgspec.json.encode(note)
    headers = {
        **webhook.signed_headers(settings.payment_webhook_secret, int(time.time()), raw),
        "Content-Type": "application/json",
    }
    url = f"{_own_address(request)}{PREFIX}/payments/webhook"
    async with request.app[HTTP_CLIENT].post(url, data=raw, headers=headers) as resp:
        body = await resp.read()
        return web.Response(body=body, status=resp.status, content_type=resp.content_type)


ROUTES = (
    Route("GET", f"{PREFIX}/balance", balance, response=BalanceView),
    Route("GET", f"{PREFIX}/ledger", ledger_entries, response=Page[LedgerEntryView], paging=LEDGER_PAGING),
    Route("GET", f"{PREFIX}/prices", prices, response=PriceListView, public=True),
    Route(
        "POST",
        f"{PREFIX}/topups",
        create_topup,
        body=TopupRequest,
        response=OrderView,
        status=201,
        errors={422: [BillingCode.INVALID_AMOUNT]},
    ),
    Route("GET", _TOPUP, get_topup, response=OrderView, path_types={"order_id": str}, errors=_NO_TOPUP),
    Route(
        "POST",
        f"{_TOPUP}/test-pay",
        test_pay,
        response=PaymentResultView,
        path_types={"order_id": str},
        description=(
            "Development and tests only (`BILLING_TEST_PAYMENTS=true`; refused at startup in production): plays"
            " the payment provider, POSTing a signed `DONE` notification for the order's price to billing's own"
            " payment webhook, and answers what the webhook answered. Paying twice is a duplicate."
        ),
        errors={
            403: [BillingCode.TEST_PAYMENTS_DISABLED],
            **_NO_TOPUP,
            409: [BillingCode.ORDER_ALREADY_PAID],
            503: [BillingCode.WEBHOOK_NOT_CONFIGURED],
        },
    ),
    Route(
        "POST",
        f"{PREFIX}/payments/webhook",
        payment_webhook,
        body=PaymentNotification,
        response=PaymentResultView,
        security=("paymentSignature",),
        description=(
            "Headers X-Payment-Timestamp (unix seconds) and X-Payment-Signature: "
            "v1=hex(HMAC-SHA256(secret, timestamp + '.' + raw body)). Idempotent by paymentKey."
        ),
        errors={
            401: [
                BillingCode.SIGNATURE_MISSING,
                BillingCode.SIGNATURE_INVALID,
                BillingCode.SIGNATURE_EXPIRED,
            ],
            404: [BillingCode.ORDER_NOT_FOUND],
            409: [BillingCode.ORDER_ALREADY_PAID, BillingCode.KEY_CONFLICT],
            422: [BillingCode.AMOUNT_MISMATCH],
            503: [BillingCode.WEBHOOK_NOT_CONFIGURED],
        },
    ),
)

API = Api(
    title="Reelforge billing",
    description="Credit balance, ledger, prices and top-ups.",
    routes=ROUTES,
    security_schemes={"paymentSignature": {"type": "apiKey", "in": "header", "name": "X-Payment-Signature"}},
)
