"""Event handlers: thin. Inbox claim → ledger rule → outbox, all in one transaction (``common.bus.Router``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from common import db, outbox
from common.bus import Delivery, Router
from common.errors import CodedError
from common.events.base import Event
from common.events.billing import CreditsHoldRequested, CreditsSettleRequested
from common.events.gateway import UserRegistered

from . import ledger
from .config import BillingSettings

CONSUMER = "billing"


class AccountNotOpenYet(Exception):
    """A hold arrived before its account's ``user.registered``: let the bus retry it with back-off."""


def router(settings: BillingSettings) -> Router:
    """The worker's reactions to ``user.registered``, ``credits.hold_requested`` and ``credits.settle_requested``.

    A ``CodedError`` (a malformed request) cannot succeed on retry: it is dead-lettered at once, where
    operators see it.
    """
    policy = ledger.HoldPolicy(default_ttl_s=settings.hold_default_ttl_s, max_ttl_s=settings.hold_max_ttl_s)
    r = Router(consumer=CONSUMER, permanent=[CodedError])

    @r.on(UserRegistered)
    async def on_user_registered(conn: asyncpg.Connection, event: UserRegistered, delivery: Delivery) -> None:
        await ledger.open_account(
            conn, account_id=event.user_id, email=event.email, signup_grant=settings.signup_grant
        )

    @r.on(CreditsHoldRequested)
    async def on_hold_requested(
        conn: asyncpg.Connection, event: CreditsHoldRequested, delivery: Delivery
    ) -> None:
        if delivery.attempt <= settings.hold_account_wait_attempts and not await ledger.account_exists(
            conn, account_id=event.account_id
        ):
            raise AccountNotOpenYet(str(event.account_id))
        await _answer(conn, await ledger.place_hold(conn, event, now=datetime.now(UTC), policy=policy))

    @r.on(CreditsSettleRequested)
    async def on_settle_requested(
        conn: asyncpg.Connection, event: CreditsSettleRequested, delivery: Delivery
    ) -> None:
        await _answer(conn, await ledger.settle(conn, event))

    return r


async def sweep_holds(pool: asyncpg.Pool, *, batch: int, now: datetime | None = None) -> int:
    """Release every hold due at ``now`` (default: the current time), ``batch`` per transaction; how many.

    Replicas may sweep side by side: rows are skip-locked. A sweep interrupted mid-batch is rolled back and redone.
    """
    total = 0
    while True:
        async with db.transaction(pool) as conn:
            events = await ledger.expire_due(conn, now=now or datetime.now(UTC), limit=batch)
            await _answer(conn, events)
        total += len(events)
        if len(events) < batch:
            return total


async def _answer(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    for event in events:
        await outbox.add(conn, event)
