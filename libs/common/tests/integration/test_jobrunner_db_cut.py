"""LeasedJobRunner whose pool reaches Postgres through a TCP proxy: the network to the database is cut while a job
runs (every connection reset, then new ones refused for longer than a lease). The job still ends exactly once: one
``succeeded``, one effect row, one outbox event — and the runner keeps claiming work afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from common import db, jobs, outbox
from common.events.ingest import VideoIngested
from common.jobrunner import JobContext, JobHandler, LeasedJobRunner, job_attempts
from common.testing.netproxy import TcpProxy
from common.testing.waiting import wait_for

pytestmark = pytest.mark.timeout(60)

KIND = "work"
LEASE_S = 1.5


@pytest.fixture
async def proxied_pool(
    database_url: str, fresh_schema: str, db_proxy: TcpProxy, pg_pool: asyncpg.Pool
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test schema whose every connection goes through ``db_proxy``."""
    async with pg_pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE effects (id bigserial PRIMARY KEY, job_id uuid NOT NULL, attempt int NOT NULL)"
        )
    dsn = db_proxy.url_via(database_url)
    pool = await db.create_pool(dsn, schema=fresh_schema, min_size=1, max_size=4)
    yield pool
    pool.terminate()


def _runner(pool: asyncpg.Pool, handler: JobHandler, **options: Any) -> LeasedJobRunner:
    """A runner of ``KIND`` jobs on ``pool`` (no bus) that polls and reports progress quickly."""
    return LeasedJobRunner(
        pool=pool,
        bus=None,
        kinds=[KIND],
        handler=handler,
        producer="test",
        poll_interval_s=0.1,
        progress_interval_s=0.05,
        **options,
    )


async def _queue(pool: asyncpg.Pool) -> uuid.UUID:
    async with pool.acquire() as conn, conn.transaction():
        job = await jobs.create_job(conn, kind=KIND, owner_id=uuid.uuid4(), producer="test")
    return job.id


@pytest.mark.parametrize("stops_on_lost_lease", [True, False], ids=["stops", "finishes-anyway"])
async def test_a_database_cut_mid_job_loses_nothing_and_doubles_nothing(
    pg_pool: asyncpg.Pool, proxied_pool: asyncpg.Pool, db_proxy: TcpProxy, stops_on_lost_lease: bool
) -> None:
    runs: Counter[uuid.UUID] = Counter()
    started: set[uuid.UUID] = set()
    release = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        runs[ctx.job.id] += 1
        started.add(ctx.job.id)
        # the work; the database goes away meanwhile
        while not release.is_set():
            if stops_on_lost_lease:
                ctx.raise_if_stopped()  # like ingest's download: stop when the lease is gone
            await asyncio.sleep(0.02)
        async with ctx.transaction() as conn:  # the final transaction: effect + event + ending, atomically
            await conn.execute(
                "INSERT INTO effects (job_id, attempt) VALUES ($1, $2)", ctx.job.id, ctx.attempt
            )
            await outbox.add(
                conn,
                VideoIngested(
                    video_id=ctx.job.id,
                    owner_id=ctx.job.owner_id,
                    storage_key="k",
                    duration_s=1.0,
                    producer="test",
                ),
            )
            await jobs.update_job(conn, ctx.job.id, producer="test", status="succeeded", stage="done")

    # concurrency 2: a free slot in the same process must not re-claim the job it still runs
    runner = _runner(proxied_pool, handler, concurrency=2, lease_s=LEASE_S)
    await runner.start()
    try:
        job_id = await _queue(pg_pool)
        await wait_for(lambda: job_id in started, timeout=10, interval=0.02)

        assert db_proxy.cut() >= 2  # every pooled connection (the LISTEN one too) is reset at once
        db_proxy.pause()  # and the database stays unreachable for longer than a lease
        await asyncio.sleep(LEASE_S * 2)
        db_proxy.resume()
        await asyncio.sleep(LEASE_S)  # the pool reconnects
        release.set()

        async def ended() -> bool:
            async with pg_pool.acquire() as conn:
                status = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
            return status in ("succeeded", "failed", "canceled")

        await wait_for(ended, timeout=15, interval=0.05)
        # the runner still works after the outage: a job queued now is claimed (through NOTIFY or the poll)
        second = await _queue(pg_pool)
        await wait_for(lambda: second in started, timeout=10, interval=0.02)
        await asyncio.sleep(
            LEASE_S
        )  # a duplicate run of the first job, if one were under way, would end by now

        async with pg_pool.acquire() as conn:
            job = await jobs.get_job(conn, job_id)
            effects = [
                r["attempt"]
                for r in await conn.fetch("SELECT attempt FROM effects WHERE job_id = $1", job_id)
            ]
            events = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE routing_key = 'video.ingested.v1'"
                " AND convert_from(body, 'UTF8') LIKE $1",
                f"%{job_id}%",
            )
            attempts = await job_attempts(conn, job_id=job_id)
        assert job is not None and (job.status, job.stage) == ("succeeded", "done"), job
        assert events == 1
        if stops_on_lost_lease:
            # attempt 1 stopped when its lease ran out unrenewed; the same runner claimed it again afterwards
            assert (runs[job_id], attempts, effects) == (2, 2, [2])
        else:
            # attempt 1 never noticed: nobody else took the job, so its final transaction still held the lease
            assert (runs[job_id], attempts, effects) == (1, 1, [1])
        assert db_proxy.refused > 0  # the runner did try to reach the database during the outage
    finally:
        await runner.stop(timeout_s=2)


async def test_progress_writes_during_a_database_blip_do_not_fail_the_job(
    pg_pool: asyncpg.Pool, proxied_pool: asyncpg.Pool, db_proxy: TcpProxy
) -> None:
    """A checkpoint whose progress write hits a dead connection is skipped, not fatal: the lease owns the job."""
    done = asyncio.Event()
    checkpoints = 0

    async def handler(ctx: JobContext) -> None:
        nonlocal checkpoints
        for i in range(40):  # ~2 s of work reporting progress the whole time
            await ctx.checkpoint(i * 2.5, "working", force=True)
            checkpoints += 1
            await asyncio.sleep(0.05)
        async with ctx.transaction() as conn:
            await conn.execute(
                "INSERT INTO effects (job_id, attempt) VALUES ($1, $2)", ctx.job.id, ctx.attempt
            )
            await jobs.update_job(conn, ctx.job.id, producer="test", status="succeeded", stage="done")
        done.set()

    runner = _runner(proxied_pool, handler, lease_s=10.0)
    await runner.start()
    try:
        job_id = await _queue(pg_pool)
        await wait_for(lambda: checkpoints >= 5, timeout=10, interval=0.02)
        db_proxy.cut()
        db_proxy.pause()
        await asyncio.sleep(0.5)  # shorter than the lease: the same run keeps the job
        db_proxy.resume()
        await asyncio.wait_for(done.wait(), timeout=20)
        async with pg_pool.acquire() as conn:
            job = await jobs.get_job(conn, job_id)
            effects = await conn.fetchval("SELECT count(*) FROM effects WHERE job_id = $1", job_id)
            attempts = await job_attempts(conn, job_id=job_id)
        assert job is not None and job.status == "succeeded" and effects == 1 and attempts == 1
        assert checkpoints == 40
    finally:
        await runner.stop()
