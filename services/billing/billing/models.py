"""The billing records as the domain and the API see them (rows of the billing schema)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import msgspec


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

    def public(self) -> dict[str, object]:
        """The order as the API shows it."""
        return {
            "order_id": self.order_id,
            "amount": self.credits,
            "price": {"amount": self.price, "currency": self.currency},
            "status": self.status,
            "created_at": self.created_at,
            "paid_at": self.paid_at,
        }
