"""kill -9 of the real `python -m billing worker` process between hold and settle loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from common.events.billing import (
    CreditsCaptured,
    CreditsHoldGranted,
    CreditsHoldRequested,
    CreditsSettleRequested,
)
from common.events.gateway import UserRegistered
from common.testing.bus import delete_queues, service_queues
from common.testing.process import ServiceProcess, free_port, process_env
from common.testing.waiting import wait_for


@pytest.fixture
async def worker(billing_settings, rabbit_bus_factory, amqp_url, tmp_path) -> AsyncIterator[ServiceProcess]:
    port = free_port()
    queue = billing_settings.queue
    env = process_env(
        database_url=billing_settings.database_url,
        schema=billing_settings.schema,
        bus=rabbit_bus_factory,
        queue=queue,
        port=port,
        BUS_RETRY_DELAYS_MS="50,200",
        JWKS_URL="http://127.0.0.1:9/jwks.json",
    )
    proc = ServiceProcess("billing", env, port, tmp_path / "worker.log")
    yield proc
    proc.stop()
    await delete_queues(amqp_url, service_queues(queue, ["50", "200"]))


async def test_killing_the_worker_between_hold_and_settle_loses_nothing(worker, requester, books) -> None:
    bus, answers = requester
    await worker.start()
    user = uuid.uuid4()
    await bus.publish(UserRegistered(user_id=user, email="crash@example.test"))

    async def has_account() -> bool:
        async with books.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT balance > 0 FROM accounts WHERE id = $1", user))

    await wait_for(has_account, timeout=20)  # the signup comes first in life; handlers run concurrently
    await bus.publish(CreditsHoldRequested(hold_ref="job-1", account_id=user, amount=40))
    await wait_for(lambda: any(isinstance(a, CreditsHoldGranted) for a in answers), timeout=20)

    worker.kill()  # between hold and settle
    settle = CreditsSettleRequested(hold_ref="job-1", account_id=user, capture=25)
    await bus.publish(settle)
    await bus.publish(settle)  # and the requester's relay re-published it
    await worker.start()
    await wait_for(lambda: any(isinstance(a, CreditsCaptured) for a in answers), timeout=20)

    # round 2: kill it while it is working through a burst of holds and settles
    refs = [f"burst-{i}" for i in range(40)]
    for ref in refs:
        await bus.publish(CreditsHoldRequested(hold_ref=ref, account_id=user, amount=1))
        await bus.publish(CreditsSettleRequested(hold_ref=ref, account_id=user, capture=1))
    await asyncio.sleep(0.05)
    worker.kill()
    await worker.start()

    async def all_settled() -> bool:
        async with books.pool.acquire() as conn:
            n = await conn.fetchval("SELECT count(*) FROM holds WHERE status = 'captured'")
        return n == 1 + len(refs)

    await wait_for(all_settled, timeout=30, interval=0.1)
    await wait_for(lambda: Counter(type(a) for a in answers)[CreditsCaptured] >= 41, timeout=20)
    await asyncio.sleep(0.5)  # a duplicate answer, if any were produced, would arrive by now

    account = await books.account(user)
    assert (account.balance, account.held) == (100 - 25 - 40, 0)
    assert await books.entries(user, "capture") == 41
    assert await books.entries(user, "grant") == 1
    by_type = Counter((type(a).__name__, a.hold_ref) for a in answers)
    assert by_type[("CreditsCaptured", "job-1")] == 1
    assert by_type[("CreditsReleased", "job-1")] == 1
    # answers are at-least-once (a kill between publish and mark re-publishes), effects exactly once
    assert {a.hold_ref for a in answers if isinstance(a, CreditsCaptured)} == {"job-1", *refs}
    assert await books.violations() == []
