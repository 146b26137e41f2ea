"""The credit saga against the real Postgres, through the worker's handler code path (inbox → ledger → outbox)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from billing import ledger
from common.errors import CodedError
from common.events.billing import CreditsHoldRequested, CreditsSettleRequested
from common.events.gateway import UserRegistered


async def test_signup_grant_once_even_when_delivered_twice(books) -> None:
    user = uuid.uuid4()
    event = UserRegistered(user_id=user, email="a@example.test")
    await books.deliver(event)
    await books.deliver(event)  # the same message redelivered
    await books.deliver(UserRegistered(user_id=user, email="a@example.test"))  # re-published with a new id
    await asyncio.gather(*(books.deliver(UserRegistered(user_id=user, email="a@x")) for _ in range(5)))

    account = await books.account(user)
    assert (account.balance, account.held) == (books.settings.signup_grant, 0)
    assert await books.entries(user, "grant") == 1
    assert await books.violations() == []


async def test_200_concurrent_holds_on_an_account_that_affords_37_grant_exactly_37(books) -> None:
    user = await books.register()  # 100 credits
    async with books.pool.acquire() as conn:
        await ledger.adjust(conn, account_id=user, amount=-26, reason="leave 74 = 37 holds of 2")
    refs = [f"h-{i}" for i in range(200)]
    await asyncio.gather(*(books.hold(user, 2, ref=ref) for ref in refs))

    granted = await books.answers("credits.hold_granted.v1")
    rejected = await books.answers("credits.hold_rejected.v1")
    assert len(granted) == 37
    assert len(rejected) == 163
    assert {r.code for r in rejected} == {"credits.insufficient"}
    account = await books.account(user)
    assert (account.balance, account.held, account.available) == (74, 74, 0)
    assert await books.violations() == []


async def test_capture_and_release_leave_balance_equal_to_ledger_and_nothing_held(books) -> None:
    user = await books.register()
    ref = await books.hold(user, 30)
    assert (await books.account(user)).available == 70
    await books.settle(user, ref, 12)

    captured = await books.answers("credits.captured.v1", ref)
    released = await books.answers("credits.released.v1", ref)
    assert [(e.amount, e.balance_after) for e in captured] == [(12, 88)]
    assert [(e.amount, e.reason) for e in released] == [(18, "settled")]
    account = await books.account(user)
    assert (account.balance, account.held) == (88, 0)
    assert await books.ledger_sum(user) == 88
    assert await books.violations() == []


async def test_settle_with_zero_capture_releases_everything_and_writes_no_entry(books) -> None:
    user = await books.register()
    ref = await books.hold(user, 40)
    await books.settle(user, ref, 0)
    assert await books.answers("credits.captured.v1", ref) == []
    assert [e.amount for e in await books.answers("credits.released.v1", ref)] == [40]
    assert await books.entries(user) == 1  # only the grant
    assert (await books.account(user)).available == 100


async def test_a_duplicated_settle_does_nothing(books) -> None:
    user = await books.register()
    ref = await books.hold(user, 50)
    settle = CreditsSettleRequested(hold_ref=ref, account_id=user, capture=50)
    await books.deliver(settle)
    await books.deliver(settle)  # redelivery
    await asyncio.gather(  # re-sent with new ids, concurrently
        *(
            books.deliver(CreditsSettleRequested(hold_ref=ref, account_id=user, capture=c))
            for c in (50, 10, 0)
        )
    )
    assert await books.entries(user, "capture") == 1
    assert len(await books.answers("credits.captured.v1", ref)) == 1
    assert (await books.account(user)).balance == 50
    assert await books.violations() == []


async def test_a_duplicated_hold_request_places_one_hold(books) -> None:
    user = await books.register()
    req = CreditsHoldRequested(hold_ref="dup", account_id=user, amount=30)
    await asyncio.gather(books.deliver(req), books.deliver(req))
    await asyncio.gather(*(books.hold(user, 30, ref="dup") for _ in range(4)))
    assert (await books.account(user)).held == 30
    assert len(await books.answers("credits.hold_granted.v1", "dup")) == 1


async def test_an_expired_hold_is_released_by_the_sweeper_and_cannot_be_captured_later(books) -> None:
    user = await books.register()
    ref = await books.hold(user, 60, ttl_s=60)
    other = await books.hold(user, 10)  # the default 1 h
    assert await books.sweep() == 0  # nothing due yet
    assert await books.sweep(datetime.now(UTC) + timedelta(seconds=61)) == 1

    assert [(e.amount, e.reason) for e in await books.answers("credits.released.v1", ref)] == [
        (60, "expired")
    ]
    account = await books.account(user)
    assert (account.balance, account.held) == (100, 10)
    await books.settle(user, ref, 60)  # too late: an expired hold is void
    assert await books.answers("credits.captured.v1", ref) == []
    assert (await books.account(user)).balance == 100
    await books.settle(user, other, 10)
    assert (await books.account(user)).balance == 90
    assert await books.violations() == []


async def test_the_worker_sweeper_releases_a_short_hold_by_itself(
    books, billing_settings, memory_bus, aiohttp_server
):
    from billing.app import create_app

    user = await books.register()
    ref = await books.hold(user, 25, ttl_s=1)
    assert (await books.account(user)).held == 25
    app = create_app(billing_settings, role="worker", bus=memory_bus, verifier=None, use_auth=False)
    await aiohttp_server(app)
    for _ in range(100):
        if (await books.account(user)).held == 0:
            break
        await asyncio.sleep(0.05)
    assert (await books.account(user)).held == 0
    assert [e.reason for e in await books.answers("credits.released.v1", ref)] == ["expired"]


async def test_a_settle_before_its_hold_is_applied_when_the_hold_arrives(books) -> None:
    user = await books.register()
    await books.settle(user, "early", 7)
    assert await books.answers(hold_ref="early") == []  # nothing to answer yet, nothing spent
    assert (await books.account(user)).balance == 100

    await books.hold(user, 20, ref="early")
    types = [e.type for e in await books.answers(hold_ref="early")]
    assert types == ["credits.hold_granted.v1", "credits.captured.v1", "credits.released.v1"]
    account = await books.account(user)
    assert (account.balance, account.held) == (93, 0)
    await books.hold(user, 20, ref="early")  # and the hold is not placed a second time
    await books.settle(user, "early", 7)
    assert (await books.account(user)).balance == 93
    assert await books.violations() == []


async def test_a_cancel_before_its_hold_means_the_hold_is_never_reserved(books) -> None:
    user = await books.register()
    await books.settle(user, "gave-up", 0)
    await books.hold(user, 100, ref="gave-up")
    assert [e.type for e in await books.answers(hold_ref="gave-up")] == [
        "credits.hold_granted.v1",
        "credits.released.v1",
    ]
    assert (await books.account(user)).available == 100


async def test_an_early_settle_for_an_unaffordable_hold_spends_nothing(books) -> None:
    user = await books.register()
    await books.settle(user, "big", 150)
    await books.hold(user, 150, ref="big")
    [answer] = await books.answers(hold_ref="big")
    assert (answer.type, answer.code) == ("credits.hold_rejected.v1", "credits.insufficient")
    assert (await books.account(user)).balance == 100


async def test_concurrent_hold_and_settle_of_one_ref_settle_exactly_once(books) -> None:
    for i in range(15):
        user = await books.register()
        ref = f"race-{i}"
        await asyncio.gather(books.settle(user, ref, 5), books.hold(user, 10, ref=ref))
        account = await books.account(user)
        assert (account.balance, account.held) == (95, 0), ref
    assert await books.violations() == []


async def test_a_capture_above_the_hold_is_clamped_to_the_hold(books) -> None:
    user = await books.register()
    ref = await books.hold(user, 10)
    await books.settle(user, ref, 500)
    assert (await books.account(user)).balance == 90


async def test_a_hold_for_an_unknown_account_is_retried_then_rejected(books) -> None:
    from billing.handlers import AccountNotOpenYet
    from common.events.billing import CreditsHoldRequested

    req = CreditsHoldRequested(hold_ref=f"hold-{uuid.uuid4().hex[:12]}", account_id=uuid.uuid4(), amount=1)
    for attempt in (1, 2, 3):  # the signup may still be in flight: the bus retries with back-off
        with pytest.raises(AccountNotOpenYet):
            await books.deliver(req, attempt=attempt)
        assert await books.answers(hold_ref=req.hold_ref) == []
    await books.deliver(req, attempt=4)
    [answer] = await books.answers(hold_ref=req.hold_ref)
    assert answer.code == "credits.no_account"


async def test_a_hold_that_overtook_the_signup_is_granted_on_retry(books) -> None:
    from billing.handlers import AccountNotOpenYet
    from common.events.billing import CreditsHoldGranted, CreditsHoldRequested

    user = uuid.uuid4()
    req = CreditsHoldRequested(hold_ref=f"hold-{uuid.uuid4().hex[:12]}", account_id=user, amount=5)
    with pytest.raises(AccountNotOpenYet):
        await books.deliver(req)
    await books.register(user)
    await books.deliver(req, attempt=2)
    [answer] = await books.answers(hold_ref=req.hold_ref)
    assert isinstance(answer, CreditsHoldGranted) and answer.amount == 5


async def test_a_negative_settle_is_dead_lettered_not_applied(books) -> None:
    from common.bus.base import PermanentError

    user = await books.register()
    ref = await books.hold(user, 10)
    with pytest.raises(PermanentError):
        await books.settle(user, ref, -5)
    assert (await books.account(user)).held == 10


async def test_ledger_rows_cannot_be_updated_or_deleted(books) -> None:
    user = await books.register()
    async with books.pool.acquire() as conn:
        with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
            await conn.execute("UPDATE ledger_entries SET amount = 1000 WHERE account_id = $1", user)
        with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
            await conn.execute("DELETE FROM ledger_entries WHERE account_id = $1", user)
        with pytest.raises(asyncpg.RestrictViolationError, match="immutable"):
            await conn.execute("TRUNCATE ledger_entries CASCADE")
        with pytest.raises(asyncpg.CheckViolationError):  # and the balance can never go negative
            await conn.execute("UPDATE accounts SET balance = -1 WHERE id = $1", user)
    assert await books.ledger_sum(user) == 100


async def test_refund_of_a_capture_returns_credits_once(books) -> None:
    user = await books.register()
    ref = await books.hold(user, 40)
    await books.settle(user, ref, 40)
    async with books.pool.acquire() as conn:
        first = await ledger.refund(conn, hold_ref=ref, amount=None, reason="render failed after capture")
        again = await ledger.refund(conn, hold_ref=ref, amount=None, reason="twice")
        with pytest.raises(CodedError) as err:
            await ledger.refund(conn, hold_ref="nope", amount=1, reason="x")
    assert err.value.code == "billing.no_capture"
    assert first.id == again.id
    assert (first.kind, first.amount, first.balance_after) == ("refund", 40, 100)
    assert await books.violations() == []
