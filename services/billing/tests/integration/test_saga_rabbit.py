"""The saga end to end over the real RabbitMQ: a requester publishes, the billing worker answers through its outbox."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest

from billing import ledger
from billing.app import create_app
from common.events.billing import (
    CreditsCaptured,
    CreditsHoldGranted,
    CreditsHoldRequested,
    CreditsReleased,
    CreditsSettleRequested,
)
from common.events.gateway import UserRegistered
from common.testing.waiting import wait_for


@pytest.fixture
async def saga(rabbit_bus_factory, billing_settings, aiohttp_server, requester):
    """A running billing worker on a private exchange, and a requester bus that records billing's answers."""
    settings = billing_settings.with_(
        bus_exchange=rabbit_bus_factory.exchange, bus_dlx=rabbit_bus_factory.dlx
    )
    worker_bus = await rabbit_bus_factory(prefetch=32)
    await aiohttp_server(create_app(settings, role="worker", bus=worker_bus, use_auth=False))
    return requester


async def test_signup_grant_once_when_user_registered_is_delivered_twice(saga, books) -> None:
    requester, _ = saga
    user = uuid.uuid4()
    event = UserRegistered(user_id=user, email="twice@example.test")
    await requester.publish(event)
    await requester.publish(event)
    await requester.publish(UserRegistered(user_id=user, email="twice@example.test"))

    async def granted() -> bool:
        async with books.pool.acquire() as conn:
            n = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_type = 'user.registered.v1'")
        return n == 2  # both distinct event ids handled (the redelivered one deduplicated)

    await wait_for(granted, timeout=30)
    assert (await books.account(user)).balance == 100
    assert await books.entries(user, "grant") == 1


async def test_200_concurrent_hold_requests_over_rabbitmq_grant_exactly_37(saga, books) -> None:
    requester, answers = saga
    user = await books.register()
    async with books.pool.acquire() as conn:
        await ledger.adjust(conn, account_id=user, amount=-63, reason="37 credits left")
    refs = [f"r{i}" for i in range(200)]
    await asyncio.gather(
        *(requester.publish(CreditsHoldRequested(hold_ref=ref, account_id=user, amount=1)) for ref in refs)
    )
    await wait_for(lambda: len(answers) >= 200, timeout=30, interval=0.05)
    kinds = Counter(a.type for a in answers)
    assert kinds == {"credits.hold_granted.v1": 37, "credits.hold_rejected.v1": 163}
    account = await books.account(user)
    assert (account.balance, account.held) == (37, 37)

    granted = [a.hold_ref for a in answers if isinstance(a, CreditsHoldGranted)]
    for ref in granted:  # settle all of them, half captured, each settle sent twice
        settle = CreditsSettleRequested(hold_ref=ref, account_id=user, capture=int(ref[1:]) % 2)
        await requester.publish(settle)
        await requester.publish(settle)
    captured_expected = sum(int(ref[1:]) % 2 for ref in granted)
    await wait_for(lambda: len(answers) >= 200 + 37, timeout=30, interval=0.05)
    await asyncio.sleep(0.3)  # let any duplicate answer arrive, if one were (wrongly) produced
    assert sum(isinstance(a, CreditsCaptured) for a in answers) == captured_expected
    assert sum(isinstance(a, CreditsReleased) for a in answers) == 37 - captured_expected
    account = await books.account(user)
    assert (account.balance, account.held) == (37 - captured_expected, 0)
    assert await books.ledger_sum(user) == account.balance
    assert await books.violations() == []
