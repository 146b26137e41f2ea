"""Kill a real ``python -m streaming worker`` mid-transcode, restart it: the video still ends ``ready``, once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from common import db
from common.events.ingest import VideoIngested
from common.events.streaming import StreamPlayable, StreamReady
from common.storage.fs import FileStore
from common.testing.bus import delete_queues, service_queues
from common.testing.media import make_video
from common.testing.process import ServiceProcess, crash_worker_env
from common.testing.waiting import wait_for
from streaming import store as media_store

pytestmark = pytest.mark.timeout(240)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
async def worker_env(
    make_schema: Any, database_url: str, amqp_url: str, rabbit_bus_factory: Any, tmp_path: Path
) -> AsyncIterator[tuple[dict[str, str], Any, str]]:
    schema = await make_schema("streaming", MIGRATIONS_DIR)
    bus = await rabbit_bus_factory()
    env = crash_worker_env(
        "streaming",
        database_url=database_url,
        schema=schema,
        bus=rabbit_bus_factory,
        files=tmp_path,
        # a short lease: the restarted worker takes the killed one's job over soon after it died
        JOB_LEASE_S="2",
        # a slower preset so there is a transcode in flight to kill
        STREAMING_X264_PRESET="slow",
    )
    queue = env["BUS_QUEUE"]
    yield env, bus, queue
    await delete_queues(
        amqp_url,
        [
            *service_queues(queue, ["200"]),
            *service_queues(f"{queue}.webhooks", ["200"]),
            f"{queue}.observer",
            f"{queue}.observer.dead",
        ],
    )


async def test_killed_worker_resumes_and_ends_ready_without_duplicate_renditions(
    worker_env: tuple[dict[str, str], Any, str], tmp_path: Path, database_url: str
) -> None:
    env, bus, queue = worker_env
    events: list[Any] = []

    async def collect(event: Any, delivery: Any) -> None:
        events.append(event)

    await bus.subscribe(f"{queue}.observer", [StreamPlayable, StreamReady], collect)
    store = FileStore(tmp_path / "store")
    vid, owner = uuid.uuid4(), uuid.uuid4()
    key = f"originals/{vid}/source.mp4"
    await store.put_file(key, make_video(seconds=6, width=640, height=360, fps=30))
    pool: asyncpg.Pool = await db.create_pool(database_url, schema=env["DB_SCHEMA"], max_size=2)
    worker = ServiceProcess("streaming", env, int(env["WORKER_PORT"]), tmp_path / "worker.log", cwd=REPO)
    try:
        await worker.start()
        await bus.publish(VideoIngested(video_id=vid, owner_id=owner, storage_key=key, duration_s=6.0))

        async def mid_transcode() -> bool:
            async with pool.acquire() as conn:
                row = await conn.fetchrow("SELECT progress FROM jobs")
                s = await media_store.get_stream(conn, video_id=vid)
            return bool(row and s and s.status == "playable" and 5 <= row["progress"] < 90)

        await wait_for(mid_transcode, timeout=60, interval=0.05)
        worker.kill()
        async with pool.acquire() as conn:
            killed = await media_store.get_stream(conn, video_id=vid)
            src_done = await conn.fetchval("SELECT completed_at FROM renditions WHERE name = 'src'")
        assert killed is not None and killed.status == "playable"
        assert {r.name for r in killed.renditions} == {"src", "audio"}  # the ladder was not finished

        await worker.start()  # the new process claims the job once the dead one's lease has expired

        async def ready() -> bool:
            async with pool.acquire() as conn:
                s = await media_store.get_stream(conn, video_id=vid)
            return bool(s and s.status == "ready")

        await wait_for(ready, timeout=120, interval=0.1)
        async with pool.acquire() as conn:
            final = await media_store.get_stream(conn, video_id=vid)
            counts = await media_store.count_renditions(conn, video_id=vid)
            src_again = await conn.fetchval("SELECT completed_at FROM renditions WHERE name = 'src'")
            job = await conn.fetchrow("SELECT status, result FROM jobs")
        assert final is not None and final.attempts == 2
        assert counts == {"src": 1, "audio": 1, "360p": 1, "240p": 1}
        assert src_again == src_done  # finished work was skipped, not redone
        assert job["status"] == "succeeded"
        files = sorted(
            p.name
            for p in (tmp_path / "store" / "streams" / str(vid) / "360p").iterdir()
            if not p.name.endswith("#meta")
        )
        assert files == ["index.m3u8", "init.mp4", "seg_00001.m4s", "seg_00002.m4s", "seg_00003.m4s"]
        await wait_for(lambda: any(e.type == "stream.ready.v1" for e in events), timeout=30)
        await asyncio.sleep(0.5)
        assert sum(e.type == "stream.ready.v1" for e in events) == 1
        assert sum(e.type == "stream.playable.v1" for e in events) == 1
    finally:
        worker.stop()
        await pool.close()
