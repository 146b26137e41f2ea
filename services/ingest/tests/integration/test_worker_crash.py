"""kill -9 of a real ``python -m ingest worker`` in the middle of a URL import, then a new worker: the import still
ends ``succeeded`` once, with one video, one ``video.ingested.v1`` and no temp files left behind."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from common import db
from common.events.ingest import VideoIngested
from common.events.jobs import JobProgress
from common.jobs import create_job
from common.storage.fs import FileStore
from common.testing.bus import RabbitBusFactory, delete_queues, service_queues
from common.testing.media import make_video
from common.testing.process import ServiceProcess, free_port, process_env
from common.testing.waiting import wait_for
from ingest import store as ingest_store

from ..conftest import MIGRATIONS, MediaServer

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[4]
LEASE_S = 2.0


@pytest.fixture
async def slow_media() -> AsyncIterator[MediaServer]:
    """A media server whose ``/slow/clip.mp4`` (a 6 s clip, ~340 KB) trickles out in 8 KiB chunks."""
    ms = MediaServer({"clip.mp4": make_video(seconds=6.0)})
    ms.server = TestServer(ms.app(), host="127.0.0.1")
    await ms.server.start_server()
    yield ms
    await ms.server.close()


@pytest.fixture
async def worker_env(
    make_schema: Any, database_url: str, amqp_url: str, rabbit_bus_factory: RabbitBusFactory, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    schema = await make_schema("ingest", MIGRATIONS)
    queue = f"ingest-crash-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = process_env(
        database_url=database_url,
        schema=schema,
        bus=rabbit_bus_factory,
        queue=queue,
        port=port,
        files=tmp_path,
        BUS_RETRY_DELAYS_MS="200",
        IMPORT_ALLOW_PRIVATE="true",  # the media server is on 127.0.0.1
        # a short lease: the new worker takes the killed one's job over soon after it died
        JOB_LEASE_S=str(LEASE_S),
        JOB_POLL_INTERVAL_S="0.2",
        JOB_PROGRESS_INTERVAL_S="0.1",
        # the killed worker's half download is swept soon; a live download touches its file every chunk
        TMP_MAX_AGE_S="2",
        TMP_SWEEP_INTERVAL_S="0.5",
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
    )
    yield env
    await delete_queues(amqp_url, service_queues(queue, ["200"]))


async def _queue_import(pool: asyncpg.Pool, url: str, owner: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """What ``POST /api/v1/imports`` writes: the job (+ its snapshot in the outbox) and the import row."""
    import_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        job = await create_job(
            conn,
            kind="import",
            owner_id=owner,
            producer="ingest",
            stage="queued",
            params={"url": url, "import_id": str(import_id)},
        )
        await ingest_store.create_import(
            conn,
            import_id=import_id,
            job_id=job.id,
            owner_id=owner,
            url=url,
            title="",
            allow_audio_only=False,
        )
    return job.id, import_id


async def test_a_killed_worker_mid_download_is_taken_over_and_the_import_ends_once(
    worker_env: dict[str, str],
    rabbit_bus_factory: RabbitBusFactory,
    slow_media: MediaServer,
    database_url: str,
    tmp_path: Path,
) -> None:
    env = worker_env
    observer = await rabbit_bus_factory()
    events: list[Any] = []

    async def collect(event: Any, delivery: Any) -> None:
        events.append(event)

    await observer.subscribe(f"{env['BUS_QUEUE']}.observer", [VideoIngested, JobProgress], collect)
    scratch = Path(env["TMP_DIR"]) / "ingest"
    pool: asyncpg.Pool = await db.create_pool(database_url, schema=env["DB_SCHEMA"], max_size=2)
    worker = ServiceProcess("ingest", env, int(env["WORKER_PORT"]), tmp_path / "worker.log", cwd=REPO)
    try:
        await worker.start()
        slow_media.chunk_delay_s = 0.1  # ~4 s for the whole file: plenty of time to kill it mid-way
        url = slow_media.url("/slow/clip.mp4")
        job_id, import_id = await _queue_import(pool, url, uuid.uuid4())

        async def mid_download() -> bool:
            async with pool.acquire() as conn:
                row = await conn.fetchrow("SELECT status, stage, progress FROM jobs WHERE id = $1", job_id)
            return bool(row and row["status"] == "running" and row["stage"] == "downloading")

        async def some_progress() -> float:
            async with pool.acquire() as conn:
                pct = await conn.fetchval("SELECT progress FROM jobs WHERE id = $1", job_id)
            return float(pct) if 10 <= pct < 80 else 0.0

        await wait_for(mid_download, timeout=20, interval=0.05)
        killed_at = await wait_for(some_progress, timeout=20, interval=0.05)
        worker.kill()
        left = [p for p in scratch.iterdir() if p.name.startswith(f"import-{job_id}-")]
        assert len(left) == 1 and any(left[0].iterdir()), left  # the dead worker's half download
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == "running"
            assert await conn.fetchval("SELECT count(*) FROM videos") == 0

        slow_media.chunk_delay_s = 0.01
        await worker.start()  # claims the job once the dead worker's lease has expired

        async def ended() -> str | None:
            async with pool.acquire() as conn:
                status = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
            return status if status in ("succeeded", "failed", "canceled") else None

        assert await wait_for(ended, timeout=30, interval=0.1) == "succeeded"
        async with pool.acquire() as conn:
            attempts = await conn.fetchval("SELECT attempts FROM job_runs WHERE job_id = $1", job_id)
            videos = await conn.fetch("SELECT id, source_ref FROM videos")
            imp = await conn.fetchrow("SELECT video_id FROM imports WHERE id = $1", import_id)
            result = await conn.fetchval("SELECT result FROM jobs WHERE id = $1", job_id)
        assert attempts == 2
        assert [(v["id"], v["source_ref"]) for v in videos] == [(imp["video_id"], f"import:{import_id}")]
        assert result["video_id"] == str(imp["video_id"])
        stored = [o.key async for o in FileStore(tmp_path / "store").list("originals/")]
        assert stored == [f"originals/{imp['video_id']}/source.mp4"]

        def ingested() -> list[VideoIngested]:
            return [e for e in events if isinstance(e, VideoIngested)]

        def succeeded() -> list[JobProgress]:
            return [
                e
                for e in events
                if isinstance(e, JobProgress) and e.job_id == job_id and e.status == "succeeded"
            ]

        await wait_for(lambda: ingested() and succeeded(), timeout=20, interval=0.05)
        await asyncio.sleep(1.0)  # a duplicate, if one were published, would have arrived by now
        assert [e.video_id for e in ingested()] == [imp["video_id"]]
        assert len(succeeded()) == 1
        stages = {e.stage for e in events if isinstance(e, JobProgress) and e.job_id == job_id}
        assert {"downloading", "probing", "done"} <= stages, stages
        # the sweeper of the new worker removed the dead one's workspace; the live one removed its own
        await wait_for(lambda: not any(scratch.iterdir()), timeout=15, interval=0.1)
        print(
            f"killed at {killed_at:.1f} %; attempts={attempts}; videos={len(videos)}; ingested={len(ingested())}"
        )
    finally:
        worker.stop()
        await pool.close()
