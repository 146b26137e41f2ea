"""LeasedJobRunner on the real Postgres: exclusive claims, takeover after a dead worker, attempts cap, cancel,
graceful hand-back, prompt wake-up."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from common import jobs
from common.jobrunner import JobContext, LeasedJobRunner, claim_job, job_attempts
from common.testing.waiting import wait_for

KIND = "work"


async def _queue(pool: asyncpg.Pool, n: int = 1, kind: str = KIND) -> list[uuid.UUID]:
    ids = []
    async with pool.acquire() as conn, conn.transaction():
        for _ in range(n):
            job = await jobs.create_job(conn, kind=kind, owner_id=uuid.uuid4(), producer="test")
            ids.append(job.id)
    return ids


async def _job(pool: asyncpg.Pool, job_id: uuid.UUID) -> jobs.Job:
    async with pool.acquire() as conn:
        job = await jobs.get_job(conn, job_id)
    assert job is not None
    return job


async def _attempts(pool: asyncpg.Pool, job_id: uuid.UUID) -> int:
    async with pool.acquire() as conn:
        return await job_attempts(conn, job_id=job_id)


@pytest.fixture
async def runners(pg_pool: asyncpg.Pool) -> AsyncIterator[Callable[..., LeasedJobRunner]]:
    """``make(handler, **options)`` → a started runner on the test schema (stopped at teardown)."""
    made: list[LeasedJobRunner] = []

    def make(handler: Any, **kw: Any) -> LeasedJobRunner:
        kw.setdefault("poll_interval_s", 0.1)
        kw.setdefault("progress_interval_s", 0.05)
        runner = LeasedJobRunner(pool=pg_pool, bus=None, kinds=[KIND], handler=handler, producer="test", **kw)
        made.append(runner)
        return runner

    yield make
    for r in made:
        await r.stop(timeout_s=2)


async def test_two_runners_never_run_the_same_job(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    ran: Counter[uuid.UUID] = Counter()
    by: dict[uuid.UUID, str] = {}

    async def handler(ctx: JobContext) -> None:
        ran[ctx.job.id] += 1
        by[ctx.job.id] = ctx.worker
        await asyncio.sleep(0.05)

    a, b = runners(handler, concurrency=3), runners(handler, concurrency=3)
    await a.start()
    await b.start()
    ids = await _queue(pg_pool, 20)

    async def all_done() -> bool:
        async with pg_pool.acquire() as conn:
            n = await conn.fetchval("SELECT count(*) FROM jobs WHERE status = 'succeeded'")
        return bool(n == len(ids))

    await wait_for(all_done, timeout=20, interval=0.1)
    assert set(ran) == set(ids) and set(ran.values()) == {1}
    assert set(by.values()) == {a.worker, b.worker}  # both worked, neither twice
    assert [await _attempts(pg_pool, i) for i in ids] == [1] * len(ids)


async def test_new_jobs_start_promptly_through_notify(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    started: dict[uuid.UUID, float] = {}

    async def handler(ctx: JobContext) -> None:
        started[ctx.job.id] = time.monotonic()

    runner = runners(handler, poll_interval_s=30.0)  # only a notification can wake it in time
    await runner.start()
    await asyncio.sleep(0.3)  # idle, waiting
    t0 = time.monotonic()
    [job_id] = await _queue(pg_pool)
    await wait_for(lambda: job_id in started, timeout=5, interval=0.01)
    assert started[job_id] - t0 < 2.0


async def test_a_dead_workers_job_is_taken_over_after_its_lease_expires(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    [job_id] = await _queue(pg_pool)
    async with pg_pool.acquire() as conn, conn.transaction():  # a worker claimed it and was killed
        assert await claim_job(conn, kinds=[KIND], worker="dead", lease_s=0.8) == (job_id, 1)
        await jobs.update_job(conn, job_id, producer="test", status="running", stage="working")
    seen: list[tuple[int, str]] = []

    async def handler(ctx: JobContext) -> None:
        seen.append((ctx.attempt, ctx.job.stage))

    runner = runners(handler)
    await runner.start()
    await asyncio.sleep(0.4)
    assert seen == []  # the lease still runs: nobody else may touch the job
    await wait_for(lambda: seen, timeout=5, interval=0.05)
    assert seen == [(2, "resuming")]
    await wait_for(lambda: _status(pg_pool, job_id, "succeeded"), timeout=5)


async def _status(pool: asyncpg.Pool, job_id: uuid.UUID, status: str) -> bool:
    return (await _job(pool, job_id)).status == status


async def test_a_live_lease_is_renewed_and_a_lost_one_stops_the_work(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    stopped = threading.Event()

    async def handler(ctx: JobContext) -> None:
        while not ctx.cancel.is_set():  # like a worker thread polling the signal
            await asyncio.sleep(0.02)
        stopped.set()
        ctx.raise_if_stopped()

    runner = runners(handler, lease_s=0.6)
    await runner.start()
    [job_id] = await _queue(pg_pool)
    await wait_for(lambda: job_id in runner.running, timeout=5, interval=0.02)
    await asyncio.sleep(1.5)  # well past one lease: renewed in the background
    assert not stopped.is_set() and (await _job(pg_pool, job_id)).status == "running"
    async with pg_pool.acquire() as conn:  # another worker took it over
        await conn.execute("UPDATE job_runs SET worker = 'other' WHERE job_id = $1", job_id)
    await wait_for(stopped.is_set, timeout=3, interval=0.02)
    await wait_for(lambda: job_id not in runner.running, timeout=3, interval=0.02)
    job = await _job(pg_pool, job_id)
    assert job.status == "running"  # left alone for the worker that owns it now


async def test_attempts_are_capped_and_a_crashing_job_fails_with_internal_error(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    failures: list[tuple[str, str]] = []

    async def on_failure(conn: asyncpg.Connection, job: jobs.Job, failure: jobs.JobFailure) -> None:
        failures.append((job.status, failure.code))

    calls: list[int] = []

    async def crashing(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        raise RuntimeError("disk on fire")

    runner = runners(crashing, max_attempts=3, retry_delays_s=(0.1, 0.2), on_failure=on_failure)
    await runner.start()
    [job_id] = await _queue(pg_pool)
    await wait_for(lambda: _status(pg_pool, job_id, "failed"), timeout=10)
    assert calls == [1, 2, 3]
    job = await _job(pg_pool, job_id)
    assert job.error == {"code": "internal.error", "message": "an internal error occurred"}
    assert failures == [("failed", "internal.error")]

    # a job whose worker died at every attempt is not started a fourth time
    async with pg_pool.acquire() as conn, conn.transaction():
        poison = (await jobs.create_job(conn, kind=KIND, owner_id=uuid.uuid4(), producer="test")).id
        await conn.execute(
            "INSERT INTO job_runs (job_id, worker, lease_until, attempts) VALUES ($1, 'dead', now(), 3)",
            poison,
        )
        await conn.execute("UPDATE jobs SET status = 'running' WHERE id = $1", poison)
    await wait_for(lambda: _status(pg_pool, poison, "failed"), timeout=5)
    assert (await _job(pg_pool, poison)).error == {
        "code": "internal.error",
        "message": "the job was interrupted 3 times; giving up",
    }
    assert calls == [1, 2, 3] and failures[-1] == ("failed", "internal.error")


async def test_a_job_the_database_failed_is_retried_even_without_retry_delays(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    """A full connection table (or a restarting server) mid-job is the platform's trouble, not the job's: the job
    is tried again after a back-off rather than failed with internal.error."""
    calls: list[int] = []

    async def flaky(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            raise asyncpg.TooManyConnectionsError("sorry, too many clients already")

    runner = runners(flaky, max_attempts=3)
    assert runner.retry_delays_s == ()
    await runner.start()
    [job_id] = await _queue(pg_pool)
    await wait_for(lambda: _status(pg_pool, job_id, "succeeded"), timeout=15, interval=0.1)
    assert calls == [1, 2]


async def test_a_job_failure_ends_the_job_with_its_code(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    async def handler(ctx: JobContext) -> None:
        await ctx.checkpoint(10, "checking", force=True)
        raise jobs.JobFailure("media.unreadable", "not a video")

    runner = runners(handler, retry_delays_s=(0.1,))
    await runner.start()
    [job_id] = await _queue(pg_pool)
    await wait_for(lambda: _status(pg_pool, job_id, "failed"), timeout=5)
    job = await _job(pg_pool, job_id)
    assert job.error == {"code": "media.unreadable", "message": "not a video"}
    assert await _attempts(pg_pool, job_id) == 1  # a stable failure is not retried


async def test_cancel_stops_a_running_job_and_it_ends_canceled(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    failures: list[str] = []

    async def on_failure(conn: asyncpg.Connection, job: jobs.Job, failure: jobs.JobFailure) -> None:
        failures.append(failure.code)

    async def handler(ctx: JobContext) -> None:
        # a thread doing the work sees only the event; it stops by raising its own exception
        def work() -> None:
            if not ctx.cancel.wait(timeout=10):
                raise AssertionError("never canceled")
            raise InterruptedError("stopped at a frame boundary")

        await asyncio.to_thread(work)

    runner = runners(handler, lease_s=30.0, on_failure=on_failure)  # no heartbeat in time: NOTIFY does it
    await runner.start()
    [job_id] = await _queue(pg_pool)
    await wait_for(lambda: job_id in runner.running, timeout=5, interval=0.02)
    t0 = time.monotonic()
    async with pg_pool.acquire() as conn, conn.transaction():
        await jobs.request_cancel(conn, job_id, producer="test")
    await wait_for(lambda: _status(pg_pool, job_id, "canceled"), timeout=5, interval=0.02)
    assert time.monotonic() - t0 < 3
    job = await _job(pg_pool, job_id)
    assert job.error is not None and job.error["code"] == "job.canceled" and failures == ["job.canceled"]


async def test_graceful_stop_hands_the_job_back_for_another_worker(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    finished: list[str] = []

    async def slow(ctx: JobContext) -> None:
        for i in range(200):
            await ctx.checkpoint(i / 2, "working")
            await asyncio.sleep(0.02)
        finished.append(ctx.worker)

    first = runners(slow)
    await first.start()
    [job_id] = await _queue(pg_pool)
    await wait_for(lambda: job_id in first.running, timeout=5, interval=0.02)
    await asyncio.sleep(0.2)
    await first.stop(timeout_s=5)
    job = await _job(pg_pool, job_id)
    assert (job.status, job.stage) == ("queued", "requeued") and finished == []
    assert await _attempts(pg_pool, job_id) == 0  # a clean hand-back costs no attempt

    async def quick(ctx: JobContext) -> None:
        finished.append(ctx.worker)

    second = runners(quick)
    await second.start()  # claims at once: the lease was released, not left to expire
    await wait_for(lambda: _status(pg_pool, job_id, "succeeded"), timeout=3, interval=0.02)
    assert finished == [second.worker]


async def test_a_job_canceled_while_queued_never_runs(
    pg_pool: asyncpg.Pool, runners: Callable[..., LeasedJobRunner]
) -> None:
    ran: list[uuid.UUID] = []

    async def handler(ctx: JobContext) -> None:
        ran.append(ctx.job.id)

    [job_id] = await _queue(pg_pool)
    async with pg_pool.acquire() as conn, conn.transaction():
        await jobs.request_cancel(conn, job_id, producer="test")
    runner = runners(handler)
    await runner.start()
    [other] = await _queue(pg_pool)
    await wait_for(lambda: _status(pg_pool, other, "succeeded"), timeout=5)
    assert ran == [other] and (await _job(pg_pool, job_id)).status == "canceled"
