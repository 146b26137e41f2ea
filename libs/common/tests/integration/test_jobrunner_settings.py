"""LeasedJobRunner.from_settings: the JOB_* settings configure a real runner on the service's schema."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from common import jobs
from common.jobrunner import JobContext, LeasedJobRunner
from common.settings import ServiceSettings
from common.testing.waiting import wait_for


async def test_a_runner_from_settings_runs_jobs_as_the_job_settings_say(
    database_url: str, fresh_schema: str, pg_pool: asyncpg.Pool
) -> None:
    settings = ServiceSettings.from_env(
        {
            "SERVICE": "svc",
            "DATABASE_URL": database_url,
            "DB_SCHEMA": fresh_schema,
            "JOB_CONCURRENCY": "3",
            "JOB_POLL_INTERVAL_S": "0.1",
            "JOB_PROGRESS_INTERVAL_S": "0.05",
            "JOB_RETRY_DELAYS_S": "0.05",
            "JOB_MAX_ATTEMPTS": "2",
        }
    )
    together = asyncio.Barrier(3)  # passes only when three jobs run at once
    attempts: dict[uuid.UUID, list[int]] = {}

    async def handler(ctx: JobContext) -> None:
        attempts.setdefault(ctx.job.id, []).append(ctx.attempt)
        if ctx.attempt == 1:
            await asyncio.wait_for(together.wait(), timeout=10)
            raise RuntimeError("a storage blip: retried after JOB_RETRY_DELAYS_S")

    runner = LeasedJobRunner.from_settings(settings, pool=pg_pool, bus=None, kinds=["work"], handler=handler)
    assert (runner.producer, runner.schema, runner.lease_s) == ("svc", fresh_schema, 60.0)
    async with pg_pool.acquire() as conn, conn.transaction():
        ids = [
            (await jobs.create_job(conn, kind="work", owner_id=uuid.uuid4(), producer="test")).id
            for _ in range(3)
        ]
    await runner.start()
    try:

        async def all_succeeded() -> bool:
            async with pg_pool.acquire() as conn:
                got = [await jobs.get_job(conn, i) for i in ids]
            return all(j is not None and j.status == jobs.JobStatus.SUCCEEDED for j in got)

        await wait_for(all_succeeded, timeout=20)
    finally:
        await runner.stop(timeout_s=2)
    assert attempts == {i: [1, 2] for i in ids}
