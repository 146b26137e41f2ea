"""The credit ledger's rules: signup grants, holds, settles, expiry, adjustments, refunds, top-ups.

Every function runs inside the caller's transaction and returns the events it causes, which the caller
writes to the outbox in that same transaction. Nothing here talks to the broker or knows SQL.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from common.errors import CodedError
from common.events.base import Event
from common.events.billing import (
    CreditsCaptured,
    CreditsHoldGranted,
    CreditsHoldRejected,
    CreditsHoldRequested,
    CreditsReleased,
    CreditsSettleRequested,
    CreditsToppedUp,
)
from common.logging import get_logger

from . import metrics, store
from .models import BillingCode, Entry, EntryKind, Hold, HoldStatus, Order, OrderStatus
from .store import Conn

log = get_logger(__name__)

PRODUCER = "billing"
SIGNUP_REFERENCE = "signup"


@dataclass(frozen=True)
class HoldPolicy:
    """How long holds live."""

    default_ttl_s: int = 3600
    max_ttl_s: int = 24 * 3600

    def ttl(self, requested: int) -> timedelta:
        """The lifetime of a hold that asked for ``requested`` seconds."""
        seconds = requested if requested > 0 else self.default_ttl_s
        return timedelta(seconds=min(seconds, self.max_ttl_s))


# --- accounts -----------------------------------------------------------------------------------------


async def open_account(conn: Conn, *, account_id: uuid.UUID, email: str, signup_grant: int) -> Entry | None:
    """Create the account (if new) and post its signup grant exactly once; the grant entry when posted now."""
    await store.ensure_account(conn, account_id=account_id, email=email)
    if signup_grant <= 0:
        return None
    await store.get_account(conn, account_id=account_id, for_update=True)
    if await store.find_entry(conn, account_id=account_id, kind=EntryKind.GRANT, reference=SIGNUP_REFERENCE):
        return None
    entry = await _post(
        conn,
        account_id=account_id,
        kind=EntryKind.GRANT,
        amount=signup_grant,
        reference=SIGNUP_REFERENCE,
        memo="signup grant",
    )
    return entry


async def _post(conn: Conn, *, account_id: uuid.UUID, kind: EntryKind, amount: int, **entry: Any) -> Entry:
    """Write a ledger entry (``store.post_entry``) and count the credits it moves."""
    posted = await store.post_entry(conn, account_id=account_id, kind=kind, amount=amount, **entry)
    metrics.CREDITS.labels(kind).inc(abs(amount))
    return posted


async def account_exists(conn: Conn, *, account_id: uuid.UUID) -> bool:
    """Whether the account was opened (its signup processed)."""
    return await store.get_account(conn, account_id=account_id) is not None


# --- holds --------------------------------------------------------------------------------------------


async def place_hold(
    conn: Conn, req: CreditsHoldRequested, *, now: datetime, policy: HoldPolicy
) -> list[Event]:
    """Reserve ``req.amount`` credits under ``req.hold_ref`` if available, else reject; idempotent by hold_ref.

    A ref seen before gets no second effect and no second answer (its first answer is in the outbox),
    except a ref whose settle arrived first: that hold is placed and settled at once.
    """
    expires_at = now + policy.ttl(req.ttl_s)
    if req.amount <= 0:
        return [_reject(req, "credits.invalid_amount", "a hold must be for a positive number of credits")]
    if not await store.insert_hold(
        conn,
        hold_ref=req.hold_ref,
        account_id=req.account_id,
        amount=req.amount,
        reason=req.reason,
        expires_at=expires_at,
    ):
        return await _hold_seen_before(conn, req, expires_at=expires_at)
    account = await store.reserve(conn, account_id=req.account_id, amount=req.amount)
    if account is None:
        exists = await store.get_account(conn, account_id=req.account_id) is not None
        code, message = (
            (BillingCode.CREDITS_INSUFFICIENT, "not enough available credits for this operation")
            if exists
            else (BillingCode.CREDITS_NO_ACCOUNT, "no credit account for this user")
        )
        await store.set_hold(conn, hold_ref=req.hold_ref, status=HoldStatus.REJECTED, reject_code=code)
        metrics.HOLDS.labels("rejected").inc()
        return [_reject(req, code, message)]
    metrics.HOLDS.labels("granted").inc()
    return [_grant(req, expires_at)]


def _grant(req: CreditsHoldRequested, expires_at: datetime) -> CreditsHoldGranted:
    return CreditsHoldGranted(
        hold_ref=req.hold_ref,
        account_id=req.account_id,
        amount=req.amount,
        expires_at=expires_at.isoformat(),
        producer=PRODUCER,
        correlation_id=req.correlation_id,
    )


def _reject(req: CreditsHoldRequested, code: str, message: str) -> CreditsHoldRejected:
    return CreditsHoldRejected(
        hold_ref=req.hold_ref,
        account_id=req.account_id,
        amount=req.amount,
        code=code,
        message=message,
        producer=PRODUCER,
        correlation_id=req.correlation_id,
    )


async def _hold_seen_before(conn: Conn, req: CreditsHoldRequested, *, expires_at: datetime) -> list[Event]:
    hold = await store.get_hold(conn, hold_ref=req.hold_ref, for_update=True)
    assert hold is not None  # the insert conflicted on this ref, and holds are never deleted
    if hold.status != HoldStatus.AWAITING_HOLD:
        metrics.HOLDS.labels("duplicate").inc()
        if hold.account_id != req.account_id or hold.amount != req.amount:
            log.warning("billing.hold_ref_reused", hold_ref=req.hold_ref, account_id=str(req.account_id))
        return []
    if hold.account_id != req.account_id:
        # the early settle named another account: trust neither, spend nothing
        log.warning("billing.hold_ref_account_mismatch", hold_ref=req.hold_ref)
        metrics.HOLDS.labels("rejected").inc()
        return [_reject(req, "credits.hold_ref_conflict", "this hold_ref was settled for another account")]
    account = await store.reserve(conn, account_id=req.account_id, amount=req.amount)
    if account is None:
        await store.set_hold(
            conn,
            hold_ref=req.hold_ref,
            status=HoldStatus.REJECTED,
            amount=req.amount,
            reason=req.reason,
            reject_code="credits.insufficient",
        )
        metrics.HOLDS.labels("rejected").inc()
        return [
            _reject(req, BillingCode.CREDITS_INSUFFICIENT, "not enough available credits for this operation")
        ]
    await store.set_hold(
        conn,
        hold_ref=req.hold_ref,
        status=HoldStatus.HELD,
        amount=req.amount,
        reason=req.reason,
        expires_at=expires_at,
    )
    metrics.HOLDS.labels("granted").inc()
    granted = _grant(req, expires_at)
    hold = await store.get_hold(conn, hold_ref=req.hold_ref, for_update=True)
    assert hold is not None
    return [
        granted,
        *await _settle_held(conn, hold, capture=hold.settle_capture or 0, correlation_id=req.correlation_id),
    ]


async def settle(conn: Conn, req: CreditsSettleRequested) -> list[Event]:
    """Capture ``req.capture`` (at most the hold) into the ledger and release the rest; idempotent by hold_ref."""
    if req.capture < 0:
        raise CodedError(
            BillingCode.CREDITS_INVALID_AMOUNT,
            f"settle of {req.hold_ref!r} has a negative capture",
            status=422,
        )
    hold = await store.get_hold(conn, hold_ref=req.hold_ref, for_update=True)
    if hold is None:
        if await store.insert_settle_first(
            conn, hold_ref=req.hold_ref, account_id=req.account_id, capture=req.capture
        ):
            metrics.SETTLES.labels("before_hold").inc()
            log.info("billing.settle_before_hold", hold_ref=req.hold_ref, capture=req.capture)
            return []
        # the hold was claimed concurrently and has committed by now: settle it
        hold = await store.get_hold(conn, hold_ref=req.hold_ref, for_update=True)
        assert hold is not None
    if hold.account_id != req.account_id:
        log.warning("billing.settle_account_mismatch", hold_ref=req.hold_ref, account_id=str(req.account_id))
        metrics.SETTLES.labels("account_mismatch").inc()
        return []
    if hold.status == HoldStatus.EXPIRED:
        # like a card authorisation: an expired hold cannot be captured; its credits went back at expiry
        log.warning("billing.settle_after_expiry", hold_ref=req.hold_ref, capture=req.capture)
        await store.set_hold(
            conn, hold_ref=req.hold_ref, status=HoldStatus.EXPIRED, settle_capture=req.capture
        )
        metrics.SETTLES.labels("after_expiry").inc()
        return []
    if hold.status != HoldStatus.HELD:
        metrics.SETTLES.labels("duplicate").inc()
        return []
    return await _settle_held(conn, hold, capture=req.capture, correlation_id=req.correlation_id)


async def _settle_held(conn: Conn, hold: Hold, *, capture: int, correlation_id: str) -> list[Event]:
    amount = hold.amount or 0
    if capture > amount:
        log.warning("billing.capture_above_hold", hold_ref=hold.hold_ref, capture=capture, held=amount)
        metrics.SETTLES.labels("clamped").inc()
    captured = min(capture, amount)
    events: list[Event] = []
    if captured > 0:
        entry = await _post(
            conn,
            account_id=hold.account_id,
            kind=EntryKind.CAPTURE,
            amount=-captured,
            reference=hold.hold_ref,
            memo=hold.reason,
            release=amount,
        )
        events.append(
            CreditsCaptured(
                hold_ref=hold.hold_ref,
                account_id=hold.account_id,
                amount=captured,
                balance_after=entry.balance_after,
                producer=PRODUCER,
                correlation_id=correlation_id,
            )
        )
    else:
        await store.release(conn, account_id=hold.account_id, amount=amount)
    await store.set_hold(
        conn,
        hold_ref=hold.hold_ref,
        status=HoldStatus.CAPTURED if captured else HoldStatus.RELEASED,
        captured=captured,
        settle_capture=capture,
        settled=True,
    )
    if amount - captured > 0:
        events.append(_released(hold, amount - captured, reason="settled", correlation_id=correlation_id))
    metrics.SETTLES.labels("captured" if captured else "released").inc()
    return events


def _released(hold: Hold, amount: int, *, reason: str, correlation_id: str) -> CreditsReleased:
    return CreditsReleased(
        hold_ref=hold.hold_ref,
        account_id=hold.account_id,
        amount=amount,
        reason=reason,
        producer=PRODUCER,
        correlation_id=correlation_id,
    )


async def expire_due(conn: Conn, *, now: datetime, limit: int) -> list[Event]:
    """Release up to ``limit`` holds past their expiry (several sweepers may run: rows are skip-locked)."""
    events: list[Event] = []
    for hold in await store.due_holds(conn, now=now, limit=limit):
        amount = hold.amount or 0
        await store.release(conn, account_id=hold.account_id, amount=amount)
        await store.set_hold(conn, hold_ref=hold.hold_ref, status=HoldStatus.EXPIRED, settled=True)
        metrics.HOLDS.labels("expired").inc()
        events.append(_released(hold, amount, reason="expired", correlation_id=hold.hold_ref))
    return events


# --- admin --------------------------------------------------------------------------------------------


async def adjust(
    conn: Conn, *, account_id: uuid.UUID, amount: int, reason: str, reference: str | None = None
) -> Entry:
    """Post an admin adjustment (either sign); idempotent by ``reference``; never below what is held."""
    if amount == 0:
        raise CodedError(BillingCode.INVALID_AMOUNT, "an adjustment must not be zero", status=422)
    if not reason.strip():
        raise CodedError(BillingCode.REASON_REQUIRED, "an adjustment needs a reason", status=422)
    reference = reference or f"adj_{uuid.uuid4().hex}"
    account = await store.get_account(conn, account_id=account_id, for_update=True)
    if account is None:
        raise CodedError(BillingCode.ACCOUNT_NOT_FOUND, f"no account {account_id}", status=404)
    earlier = await store.find_entry(
        conn, account_id=account_id, kind=EntryKind.ADJUSTMENT, reference=reference
    )
    if earlier is not None:
        if earlier.amount != amount:
            raise CodedError(
                BillingCode.REFERENCE_REUSED,
                f"reference {reference!r} was used for another amount",
                status=409,
            )
        return earlier
    if account.balance + amount < account.held:
        raise CodedError(
            BillingCode.CREDITS_INSUFFICIENT,
            f"balance {account.balance} with {account.held} held cannot go down by {-amount}",
            status=409,
        )
    entry = await _post(
        conn,
        account_id=account_id,
        kind=EntryKind.ADJUSTMENT,
        amount=amount,
        reference=reference,
        memo=reason,
    )
    return entry


async def refund(conn: Conn, *, hold_ref: str, amount: int | None, reason: str) -> Entry:
    """Give back (part of) what a hold captured, once per hold; ``amount`` None refunds all of it."""
    hold = await store.get_hold(conn, hold_ref=hold_ref, for_update=True)
    if hold is None or hold.status != HoldStatus.CAPTURED:
        raise CodedError(BillingCode.NO_CAPTURE, f"hold {hold_ref!r} captured nothing", status=404)
    if hold.refunded:
        existing = await store.find_entry(
            conn, account_id=hold.account_id, kind=EntryKind.REFUND, reference=hold_ref
        )
        assert existing is not None
        return existing
    amount = hold.captured if amount is None else amount
    if not 0 < amount <= hold.captured:
        raise CodedError(
            BillingCode.INVALID_AMOUNT, f"refund must be between 1 and {hold.captured}", status=422
        )
    await store.add_refunded(conn, hold_ref=hold_ref, amount=amount)
    entry = await _post(
        conn,
        account_id=hold.account_id,
        kind=EntryKind.REFUND,
        amount=amount,
        reference=hold_ref,
        memo=reason,
    )
    return entry


# --- top-ups ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopupPolicy:
    """What credits cost and how many one order may buy."""

    credit_price: int = 10
    currency: str = "KRW"
    min_credits: int = 10
    max_credits: int = 1_000_000


async def create_order(conn: Conn, *, account_id: uuid.UUID, credits: int, policy: TopupPolicy) -> Order:
    """A pending top-up order for the payment provider, priced now."""
    if not policy.min_credits <= credits <= policy.max_credits:
        raise CodedError(
            BillingCode.INVALID_AMOUNT,
            f"a top-up must be between {policy.min_credits} and {policy.max_credits} credits",
            status=422,
        )
    await store.ensure_account(conn, account_id=account_id)
    # Toss order ids: 6-64 characters of [A-Za-z0-9_-]
    order_id = f"ord_{secrets.token_urlsafe(18)}"
    return await store.insert_order(
        conn,
        order_id=order_id,
        account_id=account_id,
        credits=credits,
        price=credits * policy.credit_price,
        currency=policy.currency,
    )


@dataclass(frozen=True)
class PaymentResult:
    """What a payment notification did, the order it concerns, and the events to publish."""

    outcome: str  # credited | ignored | failed | amount_mismatch | order_already_paid
    order: Order
    events: list[Event]
    duplicate: bool = False  # this payment key already reported this status: nothing was done now


# Provider statuses after which the order can never be paid
_FINAL_FAILURES = frozenset({"ABORTED", "EXPIRED"})


async def confirm_payment(
    conn: Conn, *, order_id: str, payment_key: str, amount: int, status: str
) -> PaymentResult:
    """Apply an authenticated payment notification: credit the order's credits exactly once.

    Idempotent by (payment key, status): a repeat answers what the first delivery did. A DONE whose
    amount is not the order's price, or for an order another payment already paid, credits nothing and
    is recorded (operators refund it at the provider). The outcome is recorded in the caller's transaction.
    """
    # one payment key at a time: two notifications of one key naming two orders must not both pass the checks
    await store.lock_payment_key(conn, payment_key=payment_key)
    order = await store.get_order(conn, order_id=order_id, for_update=True)
    if order is None:
        raise CodedError(BillingCode.ORDER_NOT_FOUND, f"no order {order_id!r}", status=404)
    if await store.payment_key_used_elsewhere(conn, payment_key=payment_key, order_id=order_id):
        # a provider's payment key belongs to one order: a notification naming another is not this payment
        metrics.WEBHOOKS.labels("key_conflict").inc()
        log.warning("billing.payment_key_conflict", order_id=order_id, payment_key=payment_key)
        raise CodedError(
            BillingCode.KEY_CONFLICT, "this payment key already belongs to another order", status=409
        )
    previous = await store.payment_outcome(conn, payment_key=payment_key, status=status)
    if previous is not None:
        metrics.WEBHOOKS.labels("duplicate").inc()
        return PaymentResult(previous, order, [], duplicate=True)
    events: list[Event] = []
    if status != "DONE":
        if status in _FINAL_FAILURES and order.status == OrderStatus.PENDING:
            order = await store.set_order_status(conn, order_id=order_id, status=OrderStatus.FAILED)
            outcome = "failed"
        else:
            outcome = "ignored"
    elif amount != order.price:
        outcome = "amount_mismatch"
    elif order.status == OrderStatus.PAID:
        outcome = "order_already_paid"
    else:
        await store.get_account(conn, account_id=order.account_id, for_update=True)
        entry = await _post(
            conn,
            account_id=order.account_id,
            kind=EntryKind.TOPUP,
            amount=order.credits,
            reference=order_id,
            memo=f"payment {payment_key}",
        )
        order = await store.set_order_status(
            conn, order_id=order_id, status=OrderStatus.PAID, payment_key=payment_key
        )
        events.append(
            CreditsToppedUp(
                account_id=order.account_id,
                amount=order.credits,
                order_id=order_id,
                balance_after=entry.balance_after,
                producer=PRODUCER,
                correlation_id=order_id,
            )
        )
        outcome = "credited"
    await store.record_payment(
        conn, payment_key=payment_key, status=status, order_id=order_id, amount=amount, outcome=outcome
    )
    metrics.WEBHOOKS.labels(outcome).inc()
    if outcome in ("amount_mismatch", "order_already_paid"):
        log.warning("billing.payment_refused", outcome=outcome, order_id=order_id, payment_key=payment_key)
    return PaymentResult(outcome, order, events)
