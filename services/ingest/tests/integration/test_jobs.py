"""The worker: URL imports with yt-dlp from 127.0.0.1, SSRF refusals, searches, render outputs, migrations,
cancel and recovery after a dead worker. Real Postgres, PyAV, yt-dlp, object stores; RabbitMQ where it matters."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from common.bus import Bus, MemoryBus
from common.events.base import decode
from common.events.ingest import VideoIngested, VideoIngestFailed
from common.events.jobs import JobCancelRequested, JobProgress
from common.events.render import RenderCompleted
from common.events.streaming import MigrationRequested
from common.jobrunner import claim_job
from common.jobs import JobStatus, update_job
from common.storage import ObjectStore
from common.storage.fs import FileStore
from common.testing.auth import TokenFactory
from common.testing.bus import RabbitBusFactory
from common.testing.waiting import wait_for
from ingest.config import IngestSettings

from ..conftest import FIXTURES, AppFactory, MediaServer, originals, tmp_leftovers

TERMINAL = {"succeeded", "failed", "canceled"}


async def _import(
    api: TestClient[Any, Any], headers: dict[str, str], url: str, **extra: Any
) -> dict[str, Any]:
    resp = await api.post("/api/v1/imports", json={"url": url, **extra}, headers=headers)
    assert resp.status in (200, 202), await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def _finished(
    api: TestClient[Any, Any], headers: dict[str, str], import_id: str, timeout: float = 40
) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        body: dict[str, Any] = await (await api.get(f"/api/v1/imports/{import_id}", headers=headers)).json()
        return body if body["status"] in TERMINAL else None

    got = await wait_for(done, timeout=timeout, interval=0.1)
    assert got is not None
    result: dict[str, Any] = got
    return result


def _published(bus: MemoryBus, cls: type[Any]) -> list[Any]:
    return [decode(body) for rk, body in bus.published if rk == cls.event_type()]


async def _count(pool: asyncpg.Pool, sql: str, *args: Any) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql, *args))


@dataclass
class Imports:
    """An ingest API allowed to import from the test media server (memory bus, file store), and one user."""

    api: TestClient[Any, Any]
    headers: dict[str, str]
    settings: IngestSettings
    start_app: AppFactory
    bus: MemoryBus
    store: ObjectStore

    async def worker(self, **changes: Any) -> TestClient[Any, Any]:
        """A worker on the same schema, bus and store (with ``changes`` to the settings)."""
        return await self.start_app(
            self.settings.with_(**changes), bus=self.bus, store=self.store, role="worker"
        )

    async def start(self, url: str) -> dict[str, Any]:
        """Import ``url`` as the user."""
        return await _import(self.api, self.headers, url)

    async def finished(self, import_id: str, timeout: float = 40) -> dict[str, Any]:
        """The import once it is terminal."""
        return await _finished(self.api, self.headers, import_id, timeout)


ImportsFactory = Callable[..., Awaitable[Imports]]


@pytest.fixture
def imports(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: MemoryBus,
    token_factory: TokenFactory,
    media_server: MediaServer,
) -> ImportsFactory:
    """``await imports(worker=True, **settings changes)``: an API (and a worker) that may fetch from the media server."""

    async def make(*, worker: bool = True, **changes: Any) -> Imports:
        s = settings.with_(import_allowed_hosts=(media_server.hostport,), **changes)
        api = await start_app(s, bus=memory_bus, store=fs_store)
        harness = Imports(
            api=api,
            headers=token_factory.headers(uuid.uuid4()),
            settings=s,
            start_app=start_app,
            bus=memory_bus,
            store=fs_store,
        )
        if worker:
            await harness.worker()
        return harness

    return make


async def test_import_of_a_plain_mp4_with_progress_on_rabbitmq(
    start_app: AppFactory,
    settings: IngestSettings,
    s3_store: ObjectStore,
    rabbit_bus_factory: RabbitBusFactory,
    token_factory: TokenFactory,
    media_server: MediaServer,
    mp4: Path,
    mp4_bytes: bytes,
) -> None:
    settings = settings.with_(import_allowed_hosts=(media_server.hostport,))
    media_server.chunk_delay_s = 0.05
    bus, listener = await rabbit_bus_factory(), await rabbit_bus_factory()
    events: list[Any] = []

    async def collect(event: Any, delivery: Any) -> None:
        events.append(event)

    await listener.subscribe(f"listen-{uuid.uuid4().hex[:8]}", [VideoIngested, JobProgress], collect)
    api = await start_app(settings, bus=bus, store=s3_store)
    await start_app(settings, bus=bus, store=s3_store, role="worker")
    user = uuid.uuid4()
    headers = token_factory.headers(user)
    url = media_server.url("/slow/clip.mp4")
    ids = await _import(api, headers, url)
    done = await _finished(api, headers, ids["import_id"])
    assert done["status"] == "succeeded", done
    video = await (await api.get(f"/api/v1/videos/{done['video_id']}", headers=headers)).json()
    assert (video["source"], video["source_url"], video["width"], video["height"]) == (
        "import",
        url,
        320,
        240,
    )
    assert await s3_store.read_bytes(f"originals/{video['id']}/source.mp4") == mp4_bytes

    ingested = await wait_for(lambda: [e for e in events if isinstance(e, VideoIngested)], timeout=30)
    assert len(ingested) == 1 and ingested[0].source == "import" and str(ingested[0].video_id) == video["id"]
    # a bare file names no creator: yt-dlp's generic extractor gives no uploader, the platform is the site's host
    assert (ingested[0].source_url, ingested[0].uploader, ingested[0].platform) == (url, "", "127.0.0.1")

    def job_progress() -> list[JobProgress]:
        mine = [e for e in events if isinstance(e, JobProgress) and str(e.job_id) == ids["job_id"]]
        return sorted(mine, key=lambda e: e.seq)

    await wait_for(lambda: job_progress() and job_progress()[-1].status == "succeeded", timeout=30)
    progress = job_progress()
    assert progress[0].status == "queued" and (progress[-1].result or {})["video_id"] == video["id"]
    downloading = [e.percent for e in progress if e.stage == "downloading"]
    assert any(0 < pct < 90 for pct in downloading), downloading
    assert downloading == sorted(downloading)
    assert {"probing", "done"} <= {e.stage for e in progress} and all(e.kind == "import" for e in progress)
    assert tmp_leftovers(settings) == []


async def test_import_of_a_json_ld_page_and_the_same_url_twice(
    imports: ImportsFactory,
    memory_bus: MemoryBus,
    token_factory: TokenFactory,
    media_server: MediaServer,
    pool: asyncpg.Pool,
) -> None:
    im = await imports(worker=False)
    api, headers = im.api, im.headers
    url = media_server.url("/page")
    first = await _import(api, headers, url)
    again = await api.post("/api/v1/imports", json={"url": url}, headers=headers)
    assert again.status == 200
    assert {k: v for k, v in (await again.json()).items() if k != "deduplicated"} == {
        k: v for k, v in first.items() if k != "deduplicated"
    }
    # another user importing the same URL gets their own job, and cannot see this one
    stranger = token_factory.headers(uuid.uuid4())
    other = await _import(api, stranger, url)
    assert other["job_id"] != first["job_id"]
    peek = await api.get(f"/api/v1/imports/{first['import_id']}", headers=stranger)
    assert peek.status == 404 and peek.content_type == "application/problem+json"

    await im.worker()
    done = await im.finished(first["import_id"])
    assert done["status"] == "succeeded", done
    video = await (await api.get(f"/api/v1/videos/{done['video_id']}", headers=headers)).json()
    assert (
        video["title"] == "A JSON-LD clip" and video["source_url"] == url and video["video_codec"] == "h264"
    )
    # the page's creator (JSON-LD author, yt-dlp's "uploader") is carried to the services that credit it
    announced = next(e for e in _published(memory_bus, VideoIngested) if str(e.video_id) == video["id"])
    assert (announced.source_url, announced.uploader, announced.platform) == (url, "Mina Park", "127.0.0.1")
    # finished: the same URL now starts a new import
    assert (await api.post("/api/v1/imports", json={"url": url}, headers=headers)).status == 202
    await wait_for(lambda: len(_published(memory_bus, VideoIngested)) >= 2, timeout=30)
    assert await _count(pool, "SELECT count(*) FROM videos WHERE source = 'import'") >= 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v.mp4",
        "http://10.0.0.1/v.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8001/v.mp4",
        "http://localhost:8001/v.mp4",
        "ftp://example.com/v.mp4",
    ],
)
async def test_imports_of_internal_addresses_are_refused_at_once(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: Bus,
    token_factory: TokenFactory,
    pool: asyncpg.Pool,
    url: str,
) -> None:
    """The production default (no private addresses, no allowed hosts)."""
    api = await start_app(settings, bus=memory_bus, store=fs_store)
    resp = await api.post("/api/v1/imports", json={"url": url}, headers=token_factory.headers(uuid.uuid4()))
    assert resp.status == 422
    expected = "source.unsupported" if url.startswith("ftp") else "source.forbidden_address"
    assert (await resp.json())["code"] == expected
    assert await _count(pool, "SELECT count(*) FROM jobs") == 0


async def test_redirects_to_internal_addresses_are_refused(
    imports: ImportsFactory,
    fs_store: ObjectStore,
    memory_bus: MemoryBus,
    media_server: MediaServer,
    pool: asyncpg.Pool,
    mp4: Path,
) -> None:
    """Only the media server's host:port is admitted; a redirect to another (working!) loopback server is not."""
    other = TestServer(MediaServer({"clip.mp4": mp4}).app(), host="127.0.0.1")
    await other.start_server()
    try:
        im = await imports(job_concurrency=3)
        targets = [
            f"http://127.0.0.1:{other.port}/media/clip.mp4",
            "http://10.0.0.1/v.mp4",
            "http://169.254.169.254/latest/meta-data/",
            f"http://[::1]:{other.port}/media/clip.mp4",
            f"http://localhost:{other.port}/media/clip.mp4",
        ]
        started = [await im.start(media_server.url(f"/redirect?to={t}")) for t in targets]
        for ids in started:
            done = await im.finished(ids["import_id"])
            assert done["status"] == "failed" and done["error"]["code"] == "source.forbidden_address", done
        assert await originals(fs_store) == [] and await _count(pool, "SELECT count(*) FROM videos") == 0
        await wait_for(lambda: len(_published(memory_bus, VideoIngestFailed)) == len(targets), timeout=30)
        failed = _published(memory_bus, VideoIngestFailed)
        assert {e.code for e in failed} == {"source.forbidden_address"}
        assert tmp_leftovers(im.settings) == []
    finally:
        await other.close()


async def test_failed_imports_say_why_and_leave_nothing(
    imports: ImportsFactory, fs_store: ObjectStore, media_server: MediaServer, pool: asyncpg.Pool
) -> None:
    im = await imports(job_concurrency=3)
    cases = {
        "/media/notes.mp4": "media.unreadable",
        "/empty-page": "source.unsupported",
        "/media/missing.mp4": "source.unavailable",
    }
    started = {path: await im.start(media_server.url(path)) for path in cases}
    for path, code in cases.items():
        done = await im.finished(started[path]["import_id"])
        assert done["status"] == "failed" and done["error"]["code"] == code, (path, done)
        message = done["error"]["message"]  # plain words: no library text, no paths (issue 14)
        assert message and not re.search(r"Error|Errno|report this issue|yt-dlp|/tmp|\[\w+\]", message), (
            message
        )
    missing = await im.finished(started["/media/missing.mp4"]["import_id"])
    assert missing["error"]["message"] == "the source answered HTTP 404"
    assert await originals(fs_store) == [] and await _count(pool, "SELECT count(*) FROM videos") == 0
    assert tmp_leftovers(im.settings) == []


async def test_import_limits_on_duration_and_size(
    imports: ImportsFactory, fs_store: ObjectStore, media_server: MediaServer, pool: asyncpg.Pool
) -> None:
    for path, extra, code in (
        # a plain file says nothing of its length before it is downloaded: the probe refuses it
        ("/media/clip.mp4", {"max_duration_s": 1.0}, "media.too_long"),
        # a page that declares its video's duration (JSON-LD "PT2S") is refused before the download
        ("/page", {"max_duration_s": 1.0}, "source.too_long"),
        ("/media/clip.mp4", {"import_max_bytes": 20_000}, "source.too_large"),
    ):
        im = await imports(worker=False, **extra)
        worker = await im.worker()
        ids = await im.start(media_server.url(path))
        done = await im.finished(ids["import_id"])
        assert done["status"] == "failed" and done["error"]["code"] == code, done
        await worker.close()
    assert await originals(fs_store) == [] and await _count(pool, "SELECT count(*) FROM videos") == 0


async def test_cancel_stops_a_running_import(
    imports: ImportsFactory,
    fs_store: ObjectStore,
    memory_bus: MemoryBus,
    token_factory: TokenFactory,
    media_server: MediaServer,
    pool: asyncpg.Pool,
) -> None:
    media_server.chunk_delay_s = 0.4  # ~6 s for the whole file
    im = await imports()
    user = uuid.uuid4()
    im.headers = token_factory.headers(user)
    ids = await im.start(media_server.url("/slow/clip.mp4"))

    async def downloading() -> bool:
        body = await (await im.api.get(f"/api/v1/imports/{ids['import_id']}", headers=im.headers)).json()
        return bool(body["stage"] == "downloading")

    await wait_for(downloading, timeout=20, interval=0.05)
    await memory_bus.publish(
        JobCancelRequested(job_id=uuid.UUID(ids["job_id"]), owner_id=user, kind="import")
    )
    done = await im.finished(ids["import_id"], timeout=10)
    assert done["status"] == "canceled" and done["error"]["code"] == "job.canceled"
    assert await originals(fs_store) == [] and await _count(pool, "SELECT count(*) FROM videos") == 0
    await wait_for(lambda: tmp_leftovers(im.settings) == [], timeout=30)


async def test_a_job_left_by_a_dead_worker_is_finished_exactly_once(
    imports: ImportsFactory,
    fs_store: ObjectStore,
    memory_bus: MemoryBus,
    media_server: MediaServer,
    pool: asyncpg.Pool,
) -> None:
    im = await imports(worker=False)
    ids = await im.start(media_server.url("/media/clip.mp4"))
    # a worker claimed it, started, and was killed: the job is running under a lease nobody renews
    async with pool.acquire() as conn, conn.transaction():
        claimed = await claim_job(conn, kinds=["import"], worker="dead-worker", lease_s=0.3)
        assert claimed == (uuid.UUID(ids["job_id"]), 1)
        await update_job(conn, claimed[0], producer="ingest", status=JobStatus.RUNNING, stage="downloading")
    leftover = im.settings.scratch_dir / f"import-{ids['job_id']}-dead"
    leftover.mkdir(parents=True)
    (leftover / "source.mp4.part").write_bytes(b"half a download")
    for p in (leftover / "source.mp4.part", leftover):
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    await asyncio.sleep(0.4)

    await im.worker(tmp_max_age_s=600.0)
    done = await im.finished(ids["import_id"])
    assert done["status"] == "succeeded", done
    assert await _count(pool, "SELECT count(*) FROM videos") == 1
    assert (
        await _count(pool, "SELECT attempts FROM job_runs WHERE job_id = $1", uuid.UUID(ids["job_id"])) == 2
    )
    await asyncio.sleep(0.3)
    assert len(_published(memory_bus, VideoIngested)) == 1 and len(await originals(fs_store)) == 1
    assert not leftover.exists()  # swept at worker start


async def test_search_job_stores_results_sorted(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: MemoryBus,
    token_factory: TokenFactory,
) -> None:
    calls: list[tuple[str, int]] = []
    fixtures = {
        "ytsearch5:cat fails compilation": "ytsearch5_cat_fails.json",
        "https://www.tiktok.com/tag/catfails": "tiktok_tag_catfails.json",
    }

    def recorded(target: str, limit: int, proxy: str | None) -> dict[str, Any]:
        """yt-dlp's answer as recorded; only the network call is replaced."""
        calls.append((target, limit))
        result: dict[str, Any] = json.loads((FIXTURES / fixtures[target]).read_text())
        return result

    api = await start_app(settings, bus=memory_bus, store=fs_store)
    await start_app(settings, bus=memory_bus, store=fs_store, role="worker", search_fn=recorded)
    user, stranger = uuid.uuid4(), uuid.uuid4()
    headers = token_factory.headers(user)
    resp = await api.post(
        "/api/v1/searches",
        json={"platform": "youtube", "query": "cat fails compilation", "limit": 5},
        headers=headers,
    )
    assert resp.status == 202
    sid = (await resp.json())["search_id"]

    async def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = await (
            await api.get(f"/api/v1/searches/{sid}?sort=views", headers=headers)
        ).json()
        return body if body["status"] in TERMINAL else None

    result = await wait_for(finished, timeout=20, interval=0.1)
    assert result["status"] == "succeeded" and calls == [("ytsearch5:cat fails compilation", 5)]
    # the search job's progress went out as job.progress.v1 snapshots for its owner, ending at 100 %

    def search_snapshots() -> list[Any]:
        return sorted(
            (p for p in _published(memory_bus, JobProgress) if p.owner_id == user and p.kind == "search"),
            key=lambda p: p.seq,
        )

    await wait_for(lambda: any(p.status == "succeeded" for p in search_snapshots()), timeout=20)
    snaps = search_snapshots()
    statuses = [p.status for p in snaps]
    assert statuses[0] == "queued" and "running" in statuses
    assert (snaps[-1].status, snaps[-1].percent) == ("succeeded", 100)
    views = [r["view_count"] for r in result["results"]]
    assert views == [12450987, 2501337, 1843210, 96231, None]
    top = result["results"][0]
    assert (top["url"], top["uploader"], top["duration_s"]) == (
        "https://www.youtube.com/watch?v=x1T9kLr0mQs",
        "FunnyPaws",
        480.0,
    )
    assert top["thumbnail_url"].startswith("https://i.ytimg.com/vi/x1T9kLr0mQs/")
    relevance = await (await api.get(f"/api/v1/searches/{sid}", headers=headers)).json()
    assert [r["position"] for r in relevance["results"]] == [1, 2, 3, 4, 5]
    assert (await api.get(f"/api/v1/searches/{sid}", headers=token_factory.headers(stranger))).status == 404

    resp = await api.post(
        "/api/v1/searches", json={"platform": "tiktok", "query": "#catfails", "limit": 10}, headers=headers
    )
    sid = (await resp.json())["search_id"]
    await wait_for(finished, timeout=20, interval=0.1)
    likes = await (await api.get(f"/api/v1/searches/{sid}?sort=likes", headers=headers)).json()
    assert [r["like_count"] for r in likes["results"]] == [81000, 45000]
    by_views = await (await api.get(f"/api/v1/searches/{sid}?sort=views", headers=headers)).json()
    assert [r["view_count"] for r in by_views["results"]] == [2100000, 530000]
    for bad in (
        {"platform": "vimeo", "query": "x"},
        {"platform": "youtube", "query": "x", "limit": 51},
        {"platform": "tiktok", "query": "funny cats"},
    ):
        resp = await api.post("/api/v1/searches", json=bad, headers=headers)
        assert resp.status == 422


async def test_render_outputs_become_videos_once(
    start_app: AppFactory,
    settings: IngestSettings,
    store: ObjectStore,
    memory_bus: MemoryBus,
    pool: asyncpg.Pool,
    mp4: Path,
    mp4_bytes: bytes,
    bad_media: dict[str, Path],
) -> None:
    await start_app(settings, bus=memory_bus, store=store, role="worker")
    owner, render_id = uuid.uuid4(), uuid.uuid4()
    await store.put(f"renders/{render_id}/short.mp4", mp4_bytes, content_type="video/mp4")
    event = RenderCompleted(
        render_id=render_id,
        project_id=uuid.uuid4(),
        owner_id=owner,
        storage_key=f"renders/{render_id}/short.mp4",
        duration_s=2.0,
        width=320,
        height=240,
        title="Top 5 cat fails",
    )
    await memory_bus.publish(event)
    await memory_bus.publish(event)  # redelivered
    await memory_bus.publish(msgspec.structs.replace(event, id=uuid.uuid4()))  # re-sent by render
    ingested = await wait_for(lambda: _published(memory_bus, VideoIngested), timeout=20)
    await memory_bus.drain()
    await asyncio.sleep(0.3)
    assert len(_published(memory_bus, VideoIngested)) == 1
    assert (ingested[0].source, ingested[0].title, ingested[0].owner_id) == (
        "render",
        "Top 5 cat fails",
        owner,
    )
    assert await store.read_bytes(ingested[0].storage_key) == mp4_bytes
    assert await store.exists(f"renders/{render_id}/short.mp4")
    assert await _count(pool, "SELECT count(*) FROM videos WHERE source = 'render'") == 1

    bad_id = uuid.uuid4()
    await store.put(f"renders/{bad_id}/short.mp4", bad_media["text"].read_bytes())
    await memory_bus.publish(
        msgspec.structs.replace(
            event, id=uuid.uuid4(), render_id=bad_id, storage_key=f"renders/{bad_id}/short.mp4"
        )
    )
    failed = await wait_for(lambda: _published(memory_bus, VideoIngestFailed), timeout=20)
    assert failed[0].code == "media.unreadable" and failed[0].owner_id == owner
    assert await _count(pool, "SELECT count(*) FROM videos") == 1


async def test_bucket_migration_copies_probes_and_registers_once(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: MemoryBus,
    pool: asyncpg.Pool,
    mp4: Path,
    mp4_bytes: bytes,
    tmp_path: Path,
) -> None:
    legacy = FileStore(tmp_path / "legacy-bucket")
    await legacy.put("seed/2019/clip.mp4", mp4_bytes)
    await start_app(settings, bus=memory_bus, store=fs_store, role="worker")
    event = MigrationRequested(
        source_url=f"file://{legacy.root}",
        source_key="seed/2019/clip.mp4",
        owner_id=uuid.uuid4(),
        size_bytes=len(mp4_bytes),
    )
    await memory_bus.publish(event)
    await memory_bus.publish(msgspec.structs.replace(event, id=uuid.uuid4()))
    ingested = await wait_for(lambda: _published(memory_bus, VideoIngested), timeout=20)
    await memory_bus.drain()
    await asyncio.sleep(0.3)
    assert len(_published(memory_bus, VideoIngested)) == 1
    assert (ingested[0].source, ingested[0].title, ingested[0].width) == ("migration", "clip", 320)
    assert await fs_store.read_bytes(ingested[0].storage_key) == mp4_bytes
    assert await legacy.exists("seed/2019/clip.mp4")
    async with pool.acquire() as conn:
        url = await conn.fetchval("SELECT source_url FROM videos")
    assert url == f"file://{legacy.root}/seed/2019/clip.mp4"
