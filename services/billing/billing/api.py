"""HTTP handlers under /api/v1/billing: parse, authorise, call the ledger, answer."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
import msgspec
from aiohttp import web

from common import db, outbox
from common.auth import require_user
from common.http import Problem, json_response, read_json
from common.service import POOL, SETTINGS

from . import ledger, metrics, store, webhook
from .config import PRICE_UNITS, BillingSettings
from .models import Entry
from .openapi import document

PREFIX = "/api/v1/billing"
#: Postgres ``bigint``: a number outside it is refused as invalid input, never sent to the database (a 500)
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


class TopupRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /topups body."""

    amount: int


class PaymentNotification(msgspec.Struct, rename="camel"):
    """The provider's confirmation (Toss Payments style; other fields the provider sends are ignored)."""

    order_id: str
    payment_key: str
    amount: Annotated[int, msgspec.Meta(ge=BIGINT_MIN, le=BIGINT_MAX)]
    status: str


def _settings(request: web.Request) -> BillingSettings:
    settings = request.app[SETTINGS]
    assert isinstance(settings, BillingSettings)
    return settings


@asynccontextmanager
async def _tx(request: web.Request) -> AsyncIterator[asyncpg.Connection]:
    """A transaction; ledger refusals become problems (after the rollback)."""
    try:
        async with db.transaction(request.app[POOL]) as conn:
            yield conn
    except ledger.BillingError as e:
        raise Problem(e.status, e.code, e.message) from e


async def balance(request: web.Request) -> web.Response:
    """GET /balance: the caller's balance, what is held, and what is available."""
    user = await require_user(request)
    async with request.app[POOL].acquire() as conn:
        account = await store.get_account(conn, account_id=user.user_id)
    bal, held = (account.balance, account.held) if account else (0, 0)
    return json_response({"account_id": user.user_id, "balance": bal, "held": held, "available": bal - held})


def _cursor(entry: Entry) -> str:
    return base64.urlsafe_b64encode(f"s{entry.seq}".encode()).decode().rstrip("=")


def _parse_cursor(raw: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if not text.startswith("s"):
            raise ValueError(text)
        seq = int(text[1:])
        if not 0 < seq <= BIGINT_MAX:
            raise ValueError(text)
        return seq
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise Problem(422, "validation.invalid", "malformed cursor") from e


async def ledger_entries(request: web.Request) -> web.Response:
    """GET /ledger?limit=&cursor=: the caller's entries, newest first, with a cursor to the next page."""
    user = await require_user(request)
    settings = _settings(request)
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError as e:
        raise Problem(422, "validation.invalid", "limit must be an integer") from e
    if not 1 <= limit <= settings.ledger_page_max:
        raise Problem(422, "validation.invalid", f"limit must be between 1 and {settings.ledger_page_max}")
    cursor = request.query.get("cursor")
    before = _parse_cursor(cursor) if cursor else None
    async with request.app[POOL].acquire() as conn:
        entries = await store.ledger_page(conn, account_id=user.user_id, before_seq=before, limit=limit + 1)
    page, more = entries[:limit], len(entries) > limit
    return json_response(
        {
            "items": [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "amount": e.amount,
                    "balance_after": e.balance_after,
                    "reference": e.reference,
                    "memo": e.memo,
                    "created_at": e.created_at,
                }
                for e in page
            ],
            "next_cursor": _cursor(page[-1]) if more else None,
        }
    )


async def prices(request: web.Request) -> web.Response:
    """GET /prices: the public price list (no token needed: it is what a pricing page shows)."""
    settings = _settings(request)
    price_list = settings.price_list()
    return json_response(
        {
            "unit": "credit",
            "prices": price_list,
            "per": {name: PRICE_UNITS.get(name, "unit") for name in price_list},
            "credit_price": {"amount": settings.credit_price, "currency": settings.payment_currency},
            "signup_grant": settings.signup_grant,
            "topup": {"min": settings.topup_min_credits, "max": settings.topup_max_credits},
        },
        headers={"Cache-Control": "public, max-age=60"},
    )


async def create_topup(request: web.Request) -> web.Response:
    """POST /topups {amount}: a pending order to pay at the provider."""
    user = await require_user(request)
    body = await read_json(request, TopupRequest)
    settings = _settings(request)
    policy = ledger.TopupPolicy(
        credit_price=settings.credit_price,
        currency=settings.payment_currency,
        min_credits=settings.topup_min_credits,
        max_credits=settings.topup_max_credits,
    )
    async with _tx(request) as conn:
        order = await ledger.create_order(conn, account_id=user.user_id, credits=body.amount, policy=policy)
    return json_response(
        order.public(), status=201, headers={"Location": f"{PREFIX}/topups/{order.order_id}"}
    )


async def get_topup(request: web.Request) -> web.Response:
    """GET /topups/{order_id}: the caller's order (404 for anyone else's)."""
    user = await require_user(request)
    async with request.app[POOL].acquire() as conn:
        order = await store.get_order(conn, order_id=request.match_info["order_id"])
    if order is None or order.account_id != user.user_id:
        raise Problem(404, "not_found", "no such top-up order")
    return json_response(order.public())


async def payment_webhook(request: web.Request) -> web.Response:
    """POST /payments/webhook: the provider's signed confirmation; credits an order exactly once."""
    settings = _settings(request)
    if not settings.payment_webhook_secret:
        raise Problem(503, "payment.webhook_not_configured", "PAYMENT_WEBHOOK_SECRET is not set")
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
        metrics.WEBHOOKS.labels("stale" if e.code == "payment.signature_expired" else "forged").inc()
        raise Problem(401, e.code, e.message) from e
    try:
        note = msgspec.json.decode(raw, type=PaymentNotification)
    except msgspec.ValidationError as e:
        raise Problem(422, "validation.invalid", str(e)) from e
    except msgspec.DecodeError as e:
        raise Problem(400, "request.malformed_json", f"malformed JSON: {e}") from e
    async with _tx(request) as conn:
        result = await ledger.confirm_payment(
            conn, order_id=note.order_id, payment_key=note.payment_key, amount=note.amount, status=note.status
        )
        for event in result.events:
            await outbox.add(conn, event)
    # refusals are committed (recorded) first, then answered with a problem; repeats answer the same
    if result.outcome == "amount_mismatch":
        raise Problem(422, "payment.amount_mismatch", f"the amount does not match order {note.order_id}")
    if result.outcome == "order_already_paid":
        raise Problem(409, "payment.order_already_paid", f"order {note.order_id} was paid by another payment")
    return json_response(
        {
            "order_id": result.order.order_id,
            "order_status": result.order.status,
            "outcome": result.outcome,
            "duplicate": result.duplicate,
        }
    )


async def openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: this service's public paths."""
    return json_response(document())


def add_routes(app: web.Application) -> None:
    """Register billing's public routes."""
    app.router.add_get(f"{PREFIX}/balance", balance)
    app.router.add_get(f"{PREFIX}/ledger", ledger_entries)
    app.router.add_get(f"{PREFIX}/prices", prices)
    app.router.add_post(f"{PREFIX}/topups", create_topup)
    app.router.add_get(f"{PREFIX}/topups/{{order_id}}", get_topup)
    app.router.add_post(f"{PREFIX}/payments/webhook", payment_webhook)
    app.router.add_get("/openapi.json", openapi)
