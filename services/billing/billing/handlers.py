"""Event handlers: thin. Inbox claim → ledger rule → outbox, all in one transaction (``common.inbox``)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from common import inbox, outbox
from common.bus.base import Delivery, Handler, PermanentError
from common.errors import CodedError
from common.events.base import Event
from common.events.billing import CreditsHoldRequested, CreditsSettleRequested
from common.events.gateway import UserRegistered

from . import ledger
from .config import BillingSettings

CONSUMER = "billing"


class AccountNotOpenYet(Exception):
    """A hold arrived before its account's ``user.registered``: let the bus retry it with back-off."""


EVENT_TYPES: list[type[Event]] = [UserRegistered, CreditsHoldRequested, CreditsSettleRequested]


class EventHandlers:
    """The worker's reactions to ``user.registered``, ``credits.hold_requested`` and ``credits.settle_requested``."""

    def __init__(self, settings: BillingSettings) -> None:
        self.settings = settings
        self.policy = ledger.HoldPolicy(
            default_ttl_s=settings.hold_default_ttl_s, max_ttl_s=settings.hold_max_ttl_s
        )

    async def handle(self, conn: asyncpg.Connection, event: Event, delivery: Delivery) -> None:
        """Dispatch one event (inside the inbox transaction) and write the answers to the outbox."""
        try:
            if isinstance(event, UserRegistered):
                await ledger.open_account(
                    conn, account_id=event.user_id, email=event.email, signup_grant=self.settings.signup_grant
                )
                answers: list[Event] = []
            elif isinstance(event, CreditsHoldRequested):
                if (
                    delivery.attempt <= self.settings.hold_account_wait_attempts
                    and not await ledger.account_exists(conn, account_id=event.account_id)
                ):
                    raise AccountNotOpenYet(str(event.account_id))
                answers = await ledger.place_hold(conn, event, now=datetime.now(UTC), policy=self.policy)
            elif isinstance(event, CreditsSettleRequested):
                answers = await ledger.settle(conn, event)
            else:
                raise PermanentError(f"billing does not handle {event.type}")
        except CodedError as e:
            # a malformed request cannot succeed on retry: dead-letter it where operators see it
            raise PermanentError(e.code) from e
        for answer in answers:
            await outbox.add(conn, answer)


def idempotent_handler(pool: asyncpg.Pool, settings: BillingSettings) -> Handler:
    """The bus handler of the worker: the event handlers behind the inbox."""
    return inbox.idempotent(pool, CONSUMER, EventHandlers(settings).handle, service=settings.service)
