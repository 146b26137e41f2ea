"""Fixtures for billing tests: a fresh migrated billing schema, settings on it, and a view of its books."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from billing import handlers, store
from billing.config import BillingSettings
from billing.models import Account
from common import db
from common.bus.base import Delivery
from common.bus.rabbit import RabbitBus
from common.credits import credits_router
from common.events.base import Event, decode
from common.events.billing import CreditsHoldRequested, CreditsSettleRequested
from common.events.gateway import UserRegistered
from common.testing.bus import RabbitBusFactory, unique_name
from common.testing.db import SettingsFactory

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
WEBHOOK_SECRET = "whsec_test_0123456789"


@pytest.fixture
def migrations_dir() -> Path:
    """billing's SQL migrations."""
    return MIGRATIONS


@pytest.fixture
async def billing_settings(make_settings: SettingsFactory, amqp_url: str) -> BillingSettings:
    """Settings on a fresh billing schema, with a private queue name and a known webhook secret."""
    return await make_settings(
        BillingSettings,
        MIGRATIONS,
        amqp_url=amqp_url,
        db_pool_max=20,
        payment_webhook_secret=WEBHOOK_SECRET,
        hold_sweep_interval_s=0.2,
    )


@pytest.fixture
async def billing_pool(billing_settings: BillingSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test schema."""
    async with db.settings_pool(billing_settings, max_size=20) as pool:
        yield pool


class Books:
    """Drives billing through its real handler code path (inbox → ledger → outbox) and reads its books."""

    def __init__(self, pool: asyncpg.Pool, settings: BillingSettings) -> None:
        self.pool, self.settings = pool, settings
        self.handler = handlers.router(settings).handler(pool=pool)

    async def deliver(self, event: Event, *, attempt: int = 1) -> None:
        """Deliver one event as the bus would (``attempt`` > 1: a retry)."""
        await self.handler(event, Delivery(routing_key=event.type, attempt=attempt))

    async def register(self, user_id: uuid.UUID | None = None) -> uuid.UUID:
        """A registered user (signup grant posted)."""
        user_id = user_id or uuid.uuid4()
        await self.deliver(UserRegistered(user_id=user_id, email=f"{user_id.hex[:8]}@example.test"))
        return user_id

    async def hold(
        self, account: uuid.UUID, amount: int, *, ref: str | None = None, ttl_s: int = 3600
    ) -> str:
        """Request a hold; return its ref."""
        ref = ref or f"hold-{uuid.uuid4().hex[:12]}"
        await self.deliver(CreditsHoldRequested(hold_ref=ref, account_id=account, amount=amount, ttl_s=ttl_s))
        return ref

    async def settle(self, account: uuid.UUID, ref: str, capture: int) -> None:
        """Settle a hold."""
        await self.deliver(CreditsSettleRequested(hold_ref=ref, account_id=account, capture=capture))

    async def account(self, account_id: uuid.UUID) -> Account:
        """The account row."""
        async with self.pool.acquire() as conn:
            account = await store.get_account(conn, account_id=account_id)
        assert account is not None
        return account

    async def ledger_sum(self, account_id: uuid.UUID) -> int:
        """Sum of the account's ledger."""
        async with self.pool.acquire() as conn:
            return await store.ledger_sum(conn, account_id=account_id)

    async def entries(self, account_id: uuid.UUID, kind: str | None = None) -> int:
        """How many entries (of ``kind``)."""
        async with self.pool.acquire() as conn:
            return await store.count_entries(conn, account_id=account_id, kind=kind)

    async def violations(self) -> list[str]:
        """Every broken invariant in the schema."""
        async with self.pool.acquire() as conn:
            return await store.invariant_violations(conn)

    async def sweep(self, now: datetime | None = None) -> int:
        """Run the hold sweeper once."""
        return await handlers.sweep_holds(self.pool, batch=50, now=now)

    async def answers(self, event_type: str | None = None, hold_ref: str | None = None) -> list[Any]:
        """Events billing wrote to its outbox (its answers), oldest first."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT body FROM outbox ORDER BY seq")
        events = [decode(bytes(r["body"])) for r in rows]
        return [
            e
            for e in events
            if (event_type is None or e.type == event_type)
            and (hold_ref is None or getattr(e, "hold_ref", None) == hold_ref)
        ]


@pytest.fixture
def books(billing_pool: asyncpg.Pool, billing_settings: BillingSettings) -> Books:
    """The billing books of the test schema."""
    return Books(billing_pool, billing_settings)


@pytest.fixture
async def requester(rabbit_bus_factory: RabbitBusFactory) -> tuple[RabbitBus, list[Event]]:
    """Another service's bus on the test exchange, and the list it records billing's answers to its requests in."""
    bus = await rabbit_bus_factory()
    answers: list[Event] = []

    async def record(event: Event, delivery: Delivery) -> None:
        answers.append(event)

    # billing's answers: what a paid service's credits router binds its queue to
    await bus.subscribe(unique_name("requester"), credits_router().event_types, record)
    return bus, answers
