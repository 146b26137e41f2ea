"""Credit saga events (ARCHITECTURE §5). Billing owns them; paid services publish the requests."""

from __future__ import annotations

import uuid

from .base import Event


class CreditsHoldRequested(Event, tag="credits.hold_requested.v1", frozen=True, kw_only=True):
    """A paid service asks billing to reserve ``amount`` credits under ``hold_ref``."""

    hold_ref: str
    account_id: uuid.UUID
    amount: int
    reason: str = ""
    ttl_s: int = 3600


class CreditsHoldGranted(Event, tag="credits.hold_granted.v1", frozen=True, kw_only=True):
    """The hold is placed."""

    hold_ref: str
    account_id: uuid.UUID
    amount: int
    expires_at: str = ""


class CreditsHoldRejected(Event, tag="credits.hold_rejected.v1", frozen=True, kw_only=True):
    """The hold could not be placed (``credits.insufficient``, ``credits.no_account``, ...)."""

    hold_ref: str
    account_id: uuid.UUID
    amount: int
    code: str
    message: str = ""


class CreditsSettleRequested(Event, tag="credits.settle_requested.v1", frozen=True, kw_only=True):
    """Capture ``capture`` credits of the hold (0 on failure) and release the rest."""

    hold_ref: str
    account_id: uuid.UUID
    capture: int


class CreditsCaptured(Event, tag="credits.captured.v1", frozen=True, kw_only=True):
    """Credits were captured into the ledger."""

    hold_ref: str
    account_id: uuid.UUID
    amount: int
    balance_after: int


class CreditsReleased(Event, tag="credits.released.v1", frozen=True, kw_only=True):
    """The rest of a hold was released (settled with less, or expired)."""

    hold_ref: str
    account_id: uuid.UUID
    amount: int
    reason: str = "settled"  # settled | expired


class CreditsToppedUp(Event, tag="credits.topped_up.v1", frozen=True, kw_only=True):
    """A confirmed payment credited the account."""

    account_id: uuid.UUID
    amount: int
    order_id: str
    balance_after: int
