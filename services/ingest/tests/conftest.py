"""Fixtures of the ingest suites: a migrated schema, settings, API and worker apps, media files, a media server."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import asyncpg
import av
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common import db
from common.bus import Bus
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.bus import RabbitBusFactory, delete_queues, service_queues
from common.testing.db import SchemaFactory, SettingsFactory
from common.testing.media import make_video
from common.testing.process import crash_worker_env
from ingest import imports
from ingest.app import create_app
from ingest.config import IngestSettings
from ingest.runner import SearchFn

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parents[3]
#: the job lease of worker processes in crash tests: a new worker takes a killed one's job over soon after
LEASE_S = 2.0


@pytest.fixture
async def settings(make_settings: SettingsFactory, tmp_path: Path) -> IngestSettings:
    """Settings for one test: a fresh ingest schema, its queue and temp dir; fast polling; the production SSRF
    default."""
    return await make_settings(
        IngestSettings,
        MIGRATIONS,
        tmp_dir=str(tmp_path / "tmp"),
        storage_url=f"file://{tmp_path / 'storage'}",
        job_poll_interval_s=0.1,
        job_progress_interval_s=0.1,
        job_lease_s=3.0,
        db_pool_max=4,
    )


@pytest.fixture
async def pool(settings: IngestSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's schema (for assertions)."""
    async with db.settings_pool(settings) as p:
        yield p


AppFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def start_app(
    make_schema: SchemaFactory,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    token_factory: TokenFactory,
) -> AppFactory:
    """Start an ingest app (``role`` api or worker) on a test server; stopped at teardown.

    ``make_schema`` comes first so that the schemas are dropped only after the test servers stopped (a
    worker still running on a dropped schema logs errors and can keep a connection that ``pool.close()`` waits for).
    """

    async def start(
        settings: IngestSettings,
        *,
        bus: Bus,
        store: ObjectStore,
        role: str = "api",
        search_fn: SearchFn | None = None,
        **kw: Any,
    ) -> TestClient[Any, Any]:
        app = create_app(
            settings,
            role=role,
            bus=bus,
            store=store,
            verifier=token_factory.verifier(),
            search_fn=search_fn,
            **kw,
        )
        return await aiohttp_client(app)

    return start


# -- media ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mp4() -> Path:
    """A 2-second 320x240 H.264/AAC MP4."""
    return make_video(seconds=2.0)


@pytest.fixture(scope="session")
def mp4_bytes(mp4: Path) -> bytes:
    """The bytes of ``mp4`` (to compare stored originals with)."""
    return mp4.read_bytes()


def make_audio(path: Path, seconds: float = 1.0) -> Path:
    """An AAC-only .m4a (a 440 Hz tone)."""
    if path.exists():
        return path
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=48000)
        s.layout = "mono"
        sr, n, pts = 48000, 1024, 0
        while pts < int(seconds * sr):
            t = (np.arange(pts, pts + n) / sr).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(
                (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)[None, :],
                format="fltp",
                layout="mono",
            )
            frame.sample_rate, frame.pts, frame.time_base = sr, pts, Fraction(1, sr)
            for p in s.encode(frame):
                c.mux(p)
            pts += n
        for p in s.encode():
            c.mux(p)
    return path


def make_rotated(path: Path, degrees: int = 90) -> Path:
    """A 1-second 320x240 H.264 MP4 whose display matrix rotates it by ``degrees`` (a phone shot upright)."""
    return make_video(seconds=1.0, width=320, height=240, audio=False, rotate=degrees, directory=path.parent)


@pytest.fixture(scope="session")
def bad_media(tmp_path_factory: pytest.TempPathFactory, mp4: Path) -> dict[str, Path]:
    """One file per way an original can be refused."""
    d = tmp_path_factory.mktemp("bad-media")
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    truncated = d / "truncated.mp4"
    truncated.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    text = d / "notes.mp4"
    text.write_text("this is not a video, just a text file with a video extension\n" * 50)
    return {"empty": empty, "truncated": truncated, "text": text, "audio": make_audio(d / "tone.m4a")}


# -- a media server on 127.0.0.1 ----------------------------------------------------------------------------------


class MediaServer:
    """Serves test media on 127.0.0.1 the way a video site would (plus redirects and failures)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        self.server: TestServer | None = None
        self.hits: list[str] = []
        self.chunk_delay_s = 0.0

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/media/{name}", self.media)
        app.router.add_get("/slow/{name}", self.slow)
        app.router.add_get("/page", self.page)
        app.router.add_get("/empty-page", self.empty_page)
        app.router.add_get("/redirect", self.redirect)
        return app

    async def media(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        path = self.files.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

    async def slow(self, request: web.Request) -> web.StreamResponse:
        """The file in 8 KiB chunks with a pause between them, so a download has visible progress."""
        self.hits.append(request.path)
        path = self.files[request.match_info["name"]]
        data = path.read_bytes()
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": str(len(data))})
        await resp.prepare(request)
        for i in range(0, len(data), 8192):
            await resp.write(data[i : i + 8192])
            await asyncio.sleep(self.chunk_delay_s)
        await resp.write_eof()
        return resp

    async def page(self, request: web.Request) -> web.Response:
        """An HTML page with a JSON-LD VideoObject, as video sites publish for search engines."""
        self.hits.append(request.path)
        ld = {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": "A JSON-LD clip",
            "description": "served by the test media server",
            "uploadDate": "2025-01-31",
            "duration": "PT2S",
            "thumbnailUrl": self.url("/media/thumb.jpg"),
            "contentUrl": self.url("/media/clip.mp4"),
            "author": {"@type": "Person", "name": "Mina Park"},
        }
        html = (
            "<!doctype html><html><head><title>Clip page</title>"
            f'<script type="application/ld+json">{json.dumps(ld)}</script></head>'
            "<body><h1>A clip</h1></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    async def empty_page(self, request: web.Request) -> web.Response:
        return web.Response(
            text="<html><head><title>Nothing</title></head><body>no video</body></html>",
            content_type="text/html",
        )

    async def redirect(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        raise web.HTTPFound(request.query["to"])


@pytest.fixture
async def media_server(mp4: Path, bad_media: dict[str, Path]) -> AsyncIterator[MediaServer]:
    """The media server, started on 127.0.0.1."""
    ms = MediaServer({"clip.mp4": mp4, "notes.mp4": bad_media["text"]})
    ms.server = TestServer(ms.app(), host="127.0.0.1")
    await ms.server.start_server()
    yield ms
    await ms.server.close()


def tmp_leftovers(settings: IngestSettings) -> list[Path]:
    """Whatever is left in the ingest temp dir."""
    root = settings.scratch_dir
    return sorted(root.iterdir()) if root.exists() else []


async def originals(store: ObjectStore) -> list[str]:
    """Keys under originals/."""
    return [o.key async for o in store.list("originals/")]


# -- worker processes (crash tests) --------------------------------------------------------------------------------


@pytest.fixture
async def worker_env(
    make_schema: Any, database_url: str, amqp_url: str, rabbit_bus_factory: RabbitBusFactory, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    """The environment of a ``python -m ingest worker`` on a private schema, queue and ``tmp_path/store``."""
    schema = await make_schema("ingest", MIGRATIONS)
    env = crash_worker_env(
        "ingest",
        database_url=database_url,
        schema=schema,
        bus=rabbit_bus_factory,
        files=tmp_path,
        IMPORT_ALLOW_PRIVATE="true",  # the media server is on 127.0.0.1
        JOB_LEASE_S=str(LEASE_S),
        JOB_POLL_INTERVAL_S="0.2",
        JOB_PROGRESS_INTERVAL_S="0.1",
        # the killed worker's half download is swept soon; a live download touches its file every chunk
        TMP_MAX_AGE_S="2",
        TMP_SWEEP_INTERVAL_S="0.5",
    )
    yield env
    await delete_queues(amqp_url, service_queues(env["BUS_QUEUE"], ["200"]))


async def queue_import(pool: asyncpg.Pool, url: str, owner: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """What ``POST /api/v1/imports`` writes: the job (+ its snapshot in the outbox) and the import row."""
    async with pool.acquire() as conn, conn.transaction():
        job, import_id = await imports.queue(conn, owner_id=owner, url=url, title="")
    return job.id, import_id
