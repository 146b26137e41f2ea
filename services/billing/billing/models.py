"""The billing records as the domain and the API see them (rows of the billing schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from common.views import View, view_of

#: Postgres ``bigint``: a number outside it is refused as invalid input, never sent to the database (a 500)
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
BigInt = Annotated[int, msgspec.Meta(ge=BIGINT_MIN, le=BIGINT_MAX)]


class BillingCode(StrEnum):
    """Every error code billing answers with (besides ``common.errors.CommonError``)."""

    INVALID_AMOUNT = "billing.invalid_amount"
    REASON_REQUIRED = "billing.reason_required"
    REFERENCE_REUSED = "billing.reference_reused"
    ACCOUNT_NOT_FOUND = "account.not_found"
    NO_CAPTURE = "billing.no_capture"
    TOPUP_NOT_FOUND = "topup.not_found"
    ORDER_NOT_FOUND = "order.not_found"
    KEY_CONFLICT = "payment.key_conflict"
    AMOUNT_MISMATCH = "payment.amount_mismatch"
    ORDER_ALREADY_PAID = "payment.order_already_paid"
    WEBHOOK_NOT_CONFIGURED = "payment.webhook_not_configured"
    SIGNATURE_MISSING = "payment.signature_missing"
    SIGNATURE_INVALID = "payment.signature_invalid"
    SIGNATURE_EXPIRED = "payment.signature_expired"
    TEST_PAYMENTS_DISABLED = "payment.test_payments_disabled"
    # hold refusals, sent in credits.hold_rejected.v1 (never over HTTP)
    CREDITS_INSUFFICIENT = "credits.insufficient"
    CREDITS_NO_ACCOUNT = "credits.no_account"
    CREDITS_INVALID_AMOUNT = "credits.invalid_amount"


class EntryKind(StrEnum):
    """Why the balance moved."""

    GRANT = "grant"
    TOPUP = "topup"
    CAPTURE = "capture"
    REFUND = "refund"
    ADJUSTMENT = "adjustment"


class HoldStatus(StrEnum):
    """Where a hold is in its life; only ``held`` counts towards an account's ``held``."""

    AWAITING_HOLD = "awaiting_hold"  # its settle arrived first
    HELD = "held"
    CAPTURED = "captured"
    RELEASED = "released"
    EXPIRED = "expired"
    REJECTED = "rejected"


class OrderStatus(StrEnum):
    """A top-up order's state."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """A user's credit account."""

    id: uuid.UUID
    balance: int
    held: int
    email: str = ""

    @property
    def available(self) -> int:
        """Credits that a new hold may reserve."""
        return self.balance - self.held


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One immutable ledger entry."""

    seq: int
    id: uuid.UUID
    account_id: uuid.UUID
    kind: str
    amount: int
    balance_after: int
    reference: str
    memo: str
    created_at: datetime


class Hold(msgspec.Struct, frozen=True, kw_only=True):
    """A reservation of credits under a requester's ``hold_ref``."""

    hold_ref: str
    account_id: uuid.UUID
    amount: int | None
    status: str
    reason: str
    reject_code: str | None
    captured: int
    refunded: int
    settle_capture: int | None
    expires_at: datetime | None
    created_at: datetime
    settled_at: datetime | None


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """A top-up order waiting for (or paid by) the payment provider."""

    order_id: str
    account_id: uuid.UUID
    credits: int
    price: int
    currency: str
    status: str
    payment_key: str | None
    created_at: datetime
    paid_at: datetime | None


# -- the API's bodies ------------------------------------------------------------------------------------------


class TopupRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /topups body."""

    amount: Annotated[BigInt, msgspec.Meta(description="credits to buy")]


class PaymentNotification(msgspec.Struct, rename="camel"):
    """The provider's confirmation (Toss Payments style; other fields the provider sends are ignored)."""

    order_id: str
    payment_key: str
    amount: Annotated[BigInt, msgspec.Meta(description="money, in the currency's smallest unit")]
    status: Annotated[str, msgspec.Meta(description="DONE credits; ABORTED/EXPIRED fail the order")]


class BalanceView(msgspec.Struct, kw_only=True):
    """The caller's balance (the sum of the ledger), what open holds reserve, and what is available."""

    account_id: uuid.UUID
    balance: int
    held: int
    available: int


class LedgerEntryView(View, kw_only=True):
    """One immutable ledger entry; ``amount`` is signed (captures are negative)."""

    id: uuid.UUID
    kind: EntryKind
    amount: int
    balance_after: int
    reference: Annotated[str, msgspec.Meta(description="hold_ref, order id, 'signup' or an adjustment key")]
    memo: str
    created_at: datetime


class MoneyView(msgspec.Struct, kw_only=True):
    """An amount of money in a currency's smallest unit."""

    amount: int
    currency: str


class TopupLimitsView(msgspec.Struct, kw_only=True):
    """How many credits one top-up may buy, and whether test payments (development) can pay an order."""

    min: int
    max: int
    test_payments: bool = False


class PriceListView(msgspec.Struct, kw_only=True):
    """The price list in credits (``prices``: credits per unit, e.g. captions_per_minute per started minute)."""

    unit: Literal["credit"]
    prices: dict[str, int]
    per: dict[str, str]
    credit_price: MoneyView
    signup_grant: int
    topup: TopupLimitsView


class OrderView(msgspec.Struct, kw_only=True):
    """A top-up order; ``order_id`` is the orderId to hand to the payment provider, ``amount`` is credits."""

    order_id: str
    amount: int
    price: MoneyView
    status: OrderStatus
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def of(cls, order: Order) -> OrderView:
        """The order as the API shows it."""
        return view_of(
            cls, order, amount=order.credits, price=MoneyView(amount=order.price, currency=order.currency)
        )


class PaymentResultView(msgspec.Struct, kw_only=True):
    """What a payment notification did (a repeat answers the same, with ``duplicate``)."""

    order_id: str
    order_status: OrderStatus
    outcome: str
    duplicate: bool
