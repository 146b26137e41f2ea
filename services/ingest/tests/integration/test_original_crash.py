"""A crash between storing an original and committing its row (issue 14 item 4), made to happen exactly then.

A real ``python -m ingest worker`` runs with ``FAULT_PAUSE_AFTER_ORIGINAL_S``: it stops right after the object is
written, before the transaction that registers the video; the test sees the object appear and SIGKILLs it there.
Then a retried import reuses the import's video id and leaves one copy, a render output's registration and a
bucket import (``import-bucket``) redelivered by RabbitMQ do the same, and an import that is never retried (canceled
after the crash) leaves nothing once the sweep has run. The same moment in a real ``python -m ingest api`` (an upload): its client gets an error, no video
exists, and the sweep removes the object. Real Postgres, RabbitMQ, filesystem store, yt-dlp against 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from common import db
from common.events import Event
from common.events.render import RenderCompleted
from common.events.streaming import MigrationRequested
from common.jobs import request_cancel
from common.storage import ObjectStore
from common.storage.fs import FileStore
from common.testing.auth import TokenFactory
from common.testing.bus import RabbitBusFactory
from common.testing.http import serving
from common.testing.process import ServiceProcess
from common.testing.waiting import wait_for
from ingest import store
from ingest.config import IngestSettings
from ingest.originals import Originals, event_video_id, import_video_id

from ..conftest import REPO, MediaServer, originals, queue_import

pytestmark = pytest.mark.timeout(120)
T = TypeVar("T")


@pytest.fixture
async def env_pool(worker_env: dict[str, str], database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the worker processes' schema."""
    pool: asyncpg.Pool = await db.create_pool(database_url, schema=worker_env["DB_SCHEMA"], max_size=2)
    yield pool
    await pool.close()


async def _kill_after_storing(
    env: dict[str, str], tmp_path: Path, start: Callable[[], Awaitable[T]], *, role: str = "worker"
) -> tuple[T, list[str]]:
    """Run a paused ``role`` process, ``start()`` the work, and SIGKILL the process once the original is stored
    (before its row is committed): ``(what start returned, the stored keys)``."""
    paused = ServiceProcess(
        "ingest",
        # unbuffered: the log line proving where the process stopped must reach the file before the SIGKILL
        {**env, "FAULT_PAUSE_AFTER_ORIGINAL_S": "300", "PYTHONUNBUFFERED": "1"},
        int(env["WORKER_PORT"]),
        tmp_path / f"paused-{role}.log",
        role=role,
        cwd=REPO,
    )
    objects = FileStore(tmp_path / "store")
    try:
        await paused.start()
        started = await start()
        # logged once put_file has returned, right before it sleeps 300 s instead of committing the row
        await wait_for(
            lambda: "ingest.fault_pause_after_original" in paused.tail(50000), timeout=40, interval=0.02
        )
        paused.kill()  # so the kill lands exactly between storing the original and committing its row
    finally:
        paused.stop()
    return started, await originals(objects)


async def _crash_after_storing(
    env: dict[str, str], pool: asyncpg.Pool, url: str, tmp_path: Path
) -> tuple[uuid.UUID, uuid.UUID, list[str]]:
    """Queue an import, let a worker store its original and SIGKILL it before the row is committed."""
    (job_id, import_id), stored = await _kill_after_storing(
        env, tmp_path, lambda: queue_import(pool, url, uuid.uuid4())
    )
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM videos") == 0
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == "running"
        intents = await conn.fetchval("SELECT array_agg(video_id) FROM original_intents")
    # what issue 14 saw orphaned, now named by its intent
    assert stored == [f"originals/{import_video_id(import_id)}/source.mp4"], stored
    assert intents == [import_video_id(import_id)]
    return job_id, import_id, stored


async def _ended(pool: asyncpg.Pool, job_id: uuid.UUID) -> str:
    async def status() -> str | None:
        s = await pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
        return s if s in ("succeeded", "failed", "canceled") else None

    return str(await wait_for(status, timeout=40, interval=0.1))


async def test_a_retried_import_reuses_its_video_id_and_stores_one_copy(
    worker_env: dict[str, str],
    env_pool: asyncpg.Pool,
    media_server: MediaServer,
    mp4_bytes: bytes,
    tmp_path: Path,
) -> None:
    job_id, import_id, stored = await _crash_after_storing(
        worker_env, env_pool, media_server.url("/media/clip.mp4"), tmp_path
    )
    worker = ServiceProcess(
        "ingest", worker_env, int(worker_env["WORKER_PORT"]), tmp_path / "worker.log", cwd=REPO
    )
    try:
        await worker.start()  # takes the job over once the killed worker's lease has expired
        assert await _ended(env_pool, job_id) == "succeeded"
    finally:
        worker.stop()
    video_id = import_video_id(import_id)
    async with env_pool.acquire() as conn:
        assert [r["id"] for r in await conn.fetch("SELECT id FROM videos")] == [video_id]
        assert await conn.fetchval("SELECT video_id FROM imports WHERE id = $1", import_id) == video_id
        assert await conn.fetchval("SELECT attempts FROM job_runs WHERE job_id = $1", job_id) == 2
        assert await conn.fetchval("SELECT count(*) FROM original_intents") == 0
    objects = FileStore(tmp_path / "store")
    assert await originals(objects) == stored  # the same key, written again: one copy
    assert await objects.read_bytes(stored[0]) == mp4_bytes


async def test_an_import_never_retried_after_the_crash_leaves_nothing_after_the_sweep(
    worker_env: dict[str, str],
    env_pool: asyncpg.Pool,
    media_server: MediaServer,
    tmp_path: Path,
) -> None:
    job_id, _, _ = await _crash_after_storing(
        worker_env, env_pool, media_server.url("/media/clip.mp4"), tmp_path
    )
    async with env_pool.acquire() as conn, conn.transaction():
        await request_cancel(conn, job_id, producer="ingest")  # the owner gives up while no worker runs
    async with _sweeping_worker(worker_env, tmp_path) as worker:
        assert await _ended(env_pool, job_id) == "canceled"
        await wait_for(lambda: _nothing_left(env_pool, tmp_path), timeout=30, interval=0.1)
    async with env_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM videos") == 0
        failed = await conn.fetchval(
            "SELECT body FROM outbox WHERE routing_key = 'video.ingest_failed.v1' ORDER BY seq DESC LIMIT 1"
        )
    assert b'"code":"job.canceled"' in bytes(failed)
    assert "ingest.orphan_swept" in worker.tail(50000)


async def test_an_upload_killed_after_storing_fails_for_its_client_and_leaves_nothing_after_the_sweep(
    worker_env: dict[str, str],
    env_pool: asyncpg.Pool,
    token_factory: TokenFactory,
    mp4_bytes: bytes,
    tmp_path: Path,
) -> None:
    """``POST /api/v1/videos`` to a real ``python -m ingest api``, SIGKILLed once the original is stored."""
    jwks = web.Application()
    jwks.router.add_get("/jwks.json", lambda _: web.json_response(token_factory.jwks()))
    async with serving(jwks) as (host, port), aiohttp.ClientSession() as http:
        env = {**worker_env, "JWKS_URL": f"http://{host}:{port}/jwks.json"}
        form = aiohttp.FormData()
        form.add_field("title", "crash")
        form.add_field("file", mp4_bytes, filename="crash.mp4", content_type="video/mp4")

        async def upload() -> int:
            url = f"http://127.0.0.1:{env['HTTP_PORT']}/api/v1/videos"
            async with http.post(url, data=form, headers=token_factory.headers(uuid.uuid4())) as r:
                return r.status

        async def start() -> asyncio.Task[int]:
            return asyncio.create_task(upload())

        answer, stored = await _kill_after_storing(env, tmp_path, start, role="api")
        with pytest.raises(aiohttp.ClientError):  # the connection dies with the process: no 201, no id
            await answer
    assert len(stored) == 1 and stored[0].startswith("originals/"), stored
    video_id = uuid.UUID(stored[0].split("/")[1])
    async with env_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM videos") == 0
        assert await conn.fetchval("SELECT array_agg(video_id) FROM original_intents") == [video_id]
    async with _sweeping_worker(worker_env, tmp_path) as worker:
        await wait_for(lambda: _nothing_left(env_pool, tmp_path), timeout=30, interval=0.1)
    lines = worker.tail(50000).splitlines()
    assert any("ingest.orphan_swept" in line and str(video_id) in line for line in lines)
    assert await env_pool.fetchval("SELECT count(*) FROM videos") == 0


@contextlib.asynccontextmanager
async def _sweeping_worker(env: dict[str, str], tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    """A worker (on ``env``'s store) whose sweep deletes what an intent left a second after it was recorded."""
    sweeping = {**env, "ORIGINALS_ORPHAN_AGE_S": "1", "ORIGINALS_SWEEP_INTERVAL_S": "0.5"}
    worker = ServiceProcess("ingest", sweeping, int(env["WORKER_PORT"]), tmp_path / "worker.log", cwd=REPO)
    try:
        await worker.start()
        yield worker
    finally:
        worker.stop()


async def _nothing_left(pool: asyncpg.Pool, tmp_path: Path) -> bool:
    """No intent and no original left in the store of the processes of ``tmp_path``."""
    intents = await pool.fetchval("SELECT count(*) FROM original_intents")
    return intents == 0 and await originals(FileStore(tmp_path / "store")) == []


def _registration(kind: str, env: dict[str, str], key: str) -> tuple[Event, str, str | None]:
    """The event that makes an object of ``key`` a video, the ``source_ref`` ingest names it by, and the
    ``correlation_id`` of its answer: a render's output, or an object of an existing bucket (``import-bucket``)."""
    if kind == "render":
        render_id = uuid.uuid4()
        event: Event = RenderCompleted(
            render_id=render_id,
            project_id=uuid.uuid4(),
            owner_id=uuid.uuid4(),
            storage_key=key,
            duration_s=2.0,
        )
        return event, f"render:{render_id}", str(render_id)
    source_url = env["STORAGE_URL"]  # the bucket being migrated is the store the worker writes to
    event = MigrationRequested(source_url=source_url, source_key=key, owner_id=uuid.uuid4(), title="migrated")
    return event, f"migration:{source_url}#{key}", None


@pytest.mark.parametrize(
    ("kind", "key"),
    [("render", f"renders/{uuid.uuid4()}/output.mp4"), ("migration", "bucket/old/clip.mp4")],
    ids=["render-output", "bucket-import"],
)
async def test_a_registration_killed_after_storing_is_redelivered_into_one_copy(
    worker_env: dict[str, str],
    env_pool: asyncpg.Pool,
    rabbit_bus_factory: RabbitBusFactory,
    mp4_bytes: bytes,
    tmp_path: Path,
    kind: str,
    key: str,
) -> None:
    """A render output's registration and a bucket import (``MigrationRequested``) share ``_register``: each is
    SIGKILLed between storing the original and committing its row, and RabbitMQ's redelivery makes one copy."""
    objects = FileStore(tmp_path / "store")
    await objects.put(key, mp4_bytes, content_type="video/mp4")
    event, source_ref, correlation = _registration(kind, worker_env, key)
    producer = await rabbit_bus_factory()

    async def publish() -> None:
        await producer.publish(event)

    _, stored = await _kill_after_storing(worker_env, tmp_path, publish)
    video_id = event_video_id(source_ref, event.id)
    assert stored == [f"originals/{video_id}/source.mp4"], stored
    worker = ServiceProcess(
        "ingest", worker_env, int(worker_env["WORKER_PORT"]), tmp_path / "worker.log", cwd=REPO
    )
    try:
        await worker.start()  # RabbitMQ redelivers the unacked event to it

        async def registered() -> list[uuid.UUID]:
            return [r["id"] for r in await env_pool.fetch("SELECT id FROM videos")]

        assert await wait_for(registered, timeout=40, interval=0.1) == [video_id]
    finally:
        worker.stop()
    assert sorted(await originals(objects)) == stored  # rewritten under the same id: one copy
    assert await objects.read_bytes(stored[0]) == mp4_bytes
    assert await env_pool.fetchval("SELECT count(*) FROM original_intents") == 0
    answers = await env_pool.fetch("SELECT body FROM outbox WHERE routing_key = 'video.ingested.v1'")
    assert len(answers) == 1, answers
    if correlation is not None:
        assert f'"correlation_id":"{correlation}"'.encode() in bytes(answers[0]["body"])


async def test_the_sweep_spares_registered_videos_and_a_late_commit_rolls_back(
    settings: IngestSettings, pool: asyncpg.Pool, fs_store: ObjectStore, mp4: Path
) -> None:
    """In process: the sweep and the registering transaction meet on the intent row, so they cannot both win."""
    originals_ = Originals.of(settings, pool=pool, objects=fs_store)
    owner = uuid.uuid4()
    registered = await originals_.keep(mp4, video_id=uuid.uuid4(), owner_id=owner, source="upload")
    async with pool.acquire() as conn, conn.transaction():
        assert await store.insert_video(conn, video=registered) is not None
        await store.record_original_intent(conn, video_id=registered.id)  # a racing attempt's leftover intent
    late = await originals_.keep(mp4, video_id=uuid.uuid4(), owner_id=owner, source="upload")

    assert await originals_.sweep(older_than_s=0) == 1
    assert await originals(fs_store) == [registered.storage_key]
    assert await pool.fetchval("SELECT count(*) FROM original_intents") == 0
    with pytest.raises(store.OriginalSwept):
        async with pool.acquire() as conn, conn.transaction():
            await store.insert_video(conn, video=late)
    assert [r["id"] for r in await pool.fetch("SELECT id FROM videos")] == [registered.id]
