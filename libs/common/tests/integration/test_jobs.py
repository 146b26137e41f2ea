"""The job model on the real Postgres: transitions, outbox snapshots, cancellation, progress."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from common import jobs
from common.bus import MemoryBus
from common.events.base import decode
from common.events.jobs import JobProgress


async def outbox_events(conn: asyncpg.Connection) -> list[JobProgress]:
    rows = await conn.fetch("SELECT body FROM outbox ORDER BY seq")
    out = [decode(bytes(r["body"])) for r in rows]
    return [e for e in out if isinstance(e, JobProgress)]


async def test_lifecycle_writes_status_changes_to_outbox(pg_pool: asyncpg.Pool) -> None:
    owner = uuid.uuid4()
    async with pg_pool.acquire() as conn, conn.transaction():
        job = await jobs.create_job(
            conn, kind="import", owner_id=owner, producer="ingest", params={"url": "u"}
        )
    async with pg_pool.acquire() as conn, conn.transaction():
        await jobs.update_job(conn, job.id, producer="ingest", status="running", stage="downloading")
        await jobs.update_job(conn, job.id, producer="ingest", progress=50)  # progress only: no outbox row
        done = await jobs.update_job(
            conn, job.id, producer="ingest", status="succeeded", result={"video_id": "v"}
        )
    assert done.progress == 100 and done.result == {"video_id": "v"} and done.seq == 4
    async with pg_pool.acquire() as conn:
        evs = await outbox_events(conn)
    assert [e.status for e in evs] == ["queued", "running", "succeeded"]
    assert [e.seq for e in evs] == [1, 2, 4] and evs[-1].owner_id == owner


async def test_terminal_jobs_cannot_move(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as conn, conn.transaction():
        job = await jobs.create_job(conn, kind="k", owner_id=uuid.uuid4(), producer="p")
        await jobs.update_job(
            conn,
            job.id,
            producer="p",
            status="failed",
            error=jobs.JobFailure("source.unavailable", "404 at the source"),
        )
        with pytest.raises(jobs.InvalidTransition):
            await jobs.update_job(conn, job.id, producer="p", status="running")
        failed = await jobs.get_job(conn, job.id)
    assert failed is not None and failed.error == {
        "code": "source.unavailable",
        "message": "404 at the source",
    }


async def test_cancel_queued_is_immediate_and_running_at_next_checkpoint(pg_pool: asyncpg.Pool) -> None:
    bus = MemoryBus()
    async with pg_pool.acquire() as conn, conn.transaction():
        queued = await jobs.create_job(conn, kind="k", owner_id=uuid.uuid4(), producer="p")
        running = await jobs.create_job(conn, kind="k", owner_id=uuid.uuid4(), producer="p")
        await jobs.update_job(conn, running.id, producer="p", status="running")
        c1 = await jobs.request_cancel(conn, queued.id, producer="p")
        c2 = await jobs.request_cancel(conn, running.id, producer="p")
    assert c1 is not None and c1.status == "canceled" and c1.error and c1.error["code"] == "job.canceled"
    assert c2 is not None and c2.status == "running" and c2.cancel_requested
    reporter = jobs.ProgressReporter(pg_pool, bus, running.id, producer="p", min_interval_s=0)
    with pytest.raises(jobs.JobFailure) as exc:
        await reporter.update(10, "working")
    assert exc.value.code == "job.canceled"


async def test_progress_reporter_throttles_and_publishes_directly(pg_pool: asyncpg.Pool) -> None:
    bus = MemoryBus()
    async with pg_pool.acquire() as conn, conn.transaction():
        job = await jobs.create_job(conn, kind="transcode", owner_id=uuid.uuid4(), producer="streaming")
        await jobs.update_job(conn, job.id, producer="streaming", status="running")
    reporter = jobs.ProgressReporter(pg_pool, bus, job.id, producer="streaming", min_interval_s=60)
    for pct in range(0, 100, 5):
        await reporter.update(pct, "encoding")
    await reporter.update(97, "encoding", force=True)
    published = [decode(b) for _, b in bus.published]
    assert len(published) == 2  # the first update and the forced one; the rest were throttled
    assert isinstance(published[-1], JobProgress) and published[-1].percent == 97
    async with pg_pool.acquire() as conn:
        current = await jobs.get_job(conn, job.id)
    assert current is not None and current.progress == 97 and current.stage == "encoding"
