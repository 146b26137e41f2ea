"""kill -9 of a real ``python -m ingest worker`` in the middle of a URL import, then a new worker: the import still
ends ``succeeded`` once, with one video, one ``video.ingested.v1`` and no temp files left behind."""

from __future__ import annotations

import asyncio
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
from common.storage.fs import FileStore
from common.testing.bus import RabbitBusFactory
from common.testing.media import make_video
from common.testing.process import ServiceProcess
from common.testing.waiting import wait_for

from ..conftest import REPO, MediaServer, queue_import

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def slow_media() -> AsyncIterator[MediaServer]:
    """A media server whose ``/slow/clip.mp4`` (a 6 s clip, ~340 KB) trickles out in 8 KiB chunks."""
    ms = MediaServer({"clip.mp4": make_video(seconds=6.0)})
    ms.server = TestServer(ms.app(), host="127.0.0.1")
    await ms.server.start_server()
    yield ms
    await ms.server.close()


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
        job_id, import_id = await queue_import(pool, url, uuid.uuid4())

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
