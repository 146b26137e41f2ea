"""Credit saga events (ARCHITECTURE §5). Billing owns them; paid services publish the requests."""

from __future__ import annotations

import uuid

from .base import Event


class HoldEvent(Event, frozen=True, kw_only=True):
    """Base of the events about one hold of one account (its fields come first)."""

    hold_ref: str
    account_id: uuid.UUID


class CreditsHoldRequested(HoldEvent, tag="credits.hold_requested.v1", frozen=True, kw_only=True):
    """A paid service asks billing to reserve ``amount`` credits under ``hold_ref``."""

    amount: int
    reason: str = ""
    ttl_s: int = 3600


class CreditsHoldGranted(HoldEvent, tag="credits.hold_granted.v1", frozen=True, kw_only=True):
    """The hold is placed."""

    amount: int
    expires_at: str = ""


class CreditsHoldRejected(HoldEvent, tag="credits.hold_rejected.v1", frozen=True, kw_only=True):
    """The hold could not be placed (``credits.insufficient``, ``credits.no_account``, ...)."""

    amount: int
    code: str
    message: str = ""


class CreditsSettleRequested(HoldEvent, tag="credits.settle_requested.v1", frozen=True, kw_only=True):
    """Capture ``capture`` credits of the hold (0 on failure) and release the rest."""

    capture: int


class CreditsCaptured(HoldEvent, tag="credits.captured.v1", frozen=True, kw_only=True):
    """Credits were captured into the ledger."""

    amount: int
    balance_after: int


class CreditsReleased(HoldEvent, tag="credits.released.v1", frozen=True, kw_only=True):
    """The rest of a hold was released (settled with less, or expired)."""

    amount: int
    reason: str = "settled"  # settled | expired


class CreditsToppedUp(Event, tag="credits.topped_up.v1", frozen=True, kw_only=True):
    """A confirmed payment credited the account."""

    account_id: uuid.UUID
    amount: int
    order_id: str
    balance_after: int
