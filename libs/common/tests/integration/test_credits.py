"""common.credits against the real Postgres, without billing: the claim gate, the settle, the answers in any order."""

from __future__ import annotations

import itertools
import uuid

import asyncpg
import pytest

from common import credits
from common.bus.base import Delivery
from common.credit_holds import HoldStatus
from common.events.base import Event, decode_as
from common.events.billing import (
    CreditsCaptured,
    CreditsHoldGranted,
    CreditsHoldRejected,
    CreditsHoldRequested,
    CreditsReleased,
    CreditsSettleRequested,
)
from common.jobrunner import claim_job
from common.jobs import Job, JobStatus, create_job, get_job, request_cancel, update_job

PRODUCER = "paidsvc"
KIND = "paid.thing"


async def paid_job(pool: asyncpg.Pool, *, amount: int = 10) -> tuple[Job, str, uuid.UUID]:
    owner = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        job = await credits.request_paid_job(
            conn, kind=KIND, owner_id=owner, params={}, amount=amount, reason="test", producer=PRODUCER
        )
    return job, f"{PRODUCER}:{job.id}", owner


async def deliver(pool: asyncpg.Pool, event: Event) -> None:
    # the handlers themselves, without the inbox: they must be idempotent on their own (fresh ids, same meaning)
    handlers = {
        CreditsHoldGranted: credits.on_hold_granted,
        CreditsHoldRejected: credits.on_hold_rejected,
        CreditsCaptured: credits.on_captured,
        CreditsReleased: credits.on_released,
    }
    async with pool.acquire() as conn, conn.transaction():
        await handlers[type(event)](conn, event, Delivery(routing_key=event.type))  # type: ignore[operator]


async def settles(pool: asyncpg.Pool) -> list[CreditsSettleRequested]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT body FROM outbox WHERE routing_key = 'credits.settle_requested.v1' ORDER BY seq"
        )
    return [decode_as(bytes(r["body"]), CreditsSettleRequested) for r in rows]


async def claim(pool: asyncpg.Pool) -> uuid.UUID | None:
    async with pool.acquire() as conn, conn.transaction():
        claimed = await claim_job(conn, kinds=[KIND, "free.thing"], worker="w", lease_s=30)
    return claimed[0] if claimed else None


async def test_request_writes_the_job_the_hold_and_the_request(pg_pool: asyncpg.Pool) -> None:
    job, ref, owner = await paid_job(pg_pool, amount=7)
    assert (job.status, job.stage) == ("queued", credits.AWAITING_CREDITS)
    async with pg_pool.acquire() as conn:
        hold = await credits.get_hold(conn, job.id)
        rows = await conn.fetch("SELECT routing_key, body FROM outbox ORDER BY seq")
    assert hold is not None and (hold.hold_ref, hold.status, hold.amount) == (ref, HoldStatus.REQUESTED, 7)
    assert rows[-1]["routing_key"] == "credits.hold_requested.v1"
    request = decode_as(bytes(rows[-1]["body"]), CreditsHoldRequested)
    assert (request.hold_ref, request.account_id, request.amount) == (ref, owner, 7)


async def test_only_a_granted_paid_job_is_claimed_and_free_jobs_are_unaffected(pg_pool: asyncpg.Pool) -> None:
    job, ref, owner = await paid_job(pg_pool)
    assert await claim(pg_pool) is None
    async with pg_pool.acquire() as conn, conn.transaction():
        free = await create_job(conn, kind="free.thing", owner_id=owner, producer=PRODUCER)
    assert await claim(pg_pool) == free.id
    await deliver(pg_pool, CreditsHoldGranted(hold_ref=ref, account_id=owner, amount=10))
    async with pg_pool.acquire() as conn:
        funded = await get_job(conn, job.id)
    assert funded is not None and funded.stage == credits.FUNDED
    assert await claim(pg_pool) == job.id


async def test_a_job_ends_once_so_its_settle_is_written_once(pg_pool: asyncpg.Pool) -> None:
    job, ref, owner = await paid_job(pg_pool, amount=10)
    await deliver(pg_pool, CreditsHoldGranted(hold_ref=ref, account_id=owner, amount=10))
    async with pg_pool.acquire() as conn, conn.transaction():
        await credits.record_usage(conn, job_id=job.id, used=6)
        await update_job(conn, job.id, producer=PRODUCER, status=JobStatus.SUCCEEDED)
    async with pg_pool.acquire() as conn, conn.transaction():
        await request_cancel(conn, job.id, producer=PRODUCER)  # too late: no second end, no second settle
    assert [(s.hold_ref, s.capture) for s in await settles(pg_pool)] == [(ref, 6)]


async def test_an_unreported_success_captures_the_hold_and_a_failure_nothing(pg_pool: asyncpg.Pool) -> None:
    ok, ok_ref, owner = await paid_job(pg_pool, amount=9)
    bad, bad_ref, _ = await paid_job(pg_pool, amount=4)
    for ref in (ok_ref, bad_ref):
        await deliver(pg_pool, CreditsHoldGranted(hold_ref=ref, account_id=owner, amount=0))
    async with pg_pool.acquire() as conn, conn.transaction():
        await update_job(conn, ok.id, producer=PRODUCER, status=JobStatus.SUCCEEDED)
        await update_job(conn, bad.id, producer=PRODUCER, status=JobStatus.FAILED, error={"code": "x.y"})
    assert {s.hold_ref: s.capture for s in await settles(pg_pool)} == {ok_ref: 9, bad_ref: 0}


async def test_usage_must_fit_the_hold(pg_pool: asyncpg.Pool) -> None:
    job, _, owner = await paid_job(pg_pool, amount=5)
    async with pg_pool.acquire() as conn:
        with pytest.raises(ValueError, match="cannot use 6"):
            await credits.record_usage(conn, job_id=job.id, used=6)
        free = await create_job(conn, kind="free.thing", owner_id=owner, producer=PRODUCER)
        with pytest.raises(ValueError, match="not a paid job"):
            await credits.record_usage(conn, job_id=free.id, used=1)


async def test_another_services_hold_and_another_account_are_ignored(pg_pool: asyncpg.Pool) -> None:
    job, ref, owner = await paid_job(pg_pool)
    await deliver(pg_pool, CreditsHoldGranted(hold_ref=f"other:{job.id}", account_id=owner, amount=10))
    await deliver(pg_pool, CreditsHoldRejected(hold_ref=ref, account_id=uuid.uuid4(), amount=10, code="c.x"))
    async with pg_pool.acquire() as conn:
        hold = await credits.get_hold(conn, job.id)
    assert hold is not None and hold.status == HoldStatus.REQUESTED


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_billings_answers_in_any_order_and_twice_end_in_one_state(
    pg_pool: asyncpg.Pool, order: tuple[int, ...]
) -> None:
    job, ref, owner = await paid_job(pg_pool, amount=10)
    await deliver(pg_pool, CreditsHoldGranted(hold_ref=ref, account_id=owner, amount=10))
    async with pg_pool.acquire() as conn, conn.transaction():
        await credits.record_usage(conn, job_id=job.id, used=3)
        await update_job(conn, job.id, producer=PRODUCER, status=JobStatus.SUCCEEDED)
    answers: list[Event] = [
        CreditsCaptured(hold_ref=ref, account_id=owner, amount=3, balance_after=97),
        CreditsReleased(hold_ref=ref, account_id=owner, amount=7, reason="settled"),
        CreditsHoldGranted(hold_ref=ref, account_id=owner, amount=10),  # a late duplicate grant
    ]
    for i in [*order, *order]:
        await deliver(pg_pool, answers[i])
    async with pg_pool.acquire() as conn:
        hold = await credits.get_hold(conn, job.id)
        ended = await get_job(conn, job.id)
    assert hold is not None and (hold.status, hold.capture, hold.captured) == (HoldStatus.CAPTURED, 3, 3)
    assert ended is not None and ended.status == "succeeded"
    assert len(await settles(pg_pool)) == 1
