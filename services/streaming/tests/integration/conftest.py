"""Fixtures of the streaming integration tests.

Playback, /play, webhooks, bucket import: a migrated schema, settings, an app factory and a ``seed_stream`` helper
that registers a stream and uploads real CMAF HLS files (stream-copied with PyAV from a generated test video) plus a
poster, sprite and thumbnail index. Transcoding: ``media_env``, a running worker and what it published.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from common import db
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.db import SettingsFactory
from common.testing.media import make_video
from streaming import store as media_store
from streaming.app import create_app
from streaming.config import StreamingSettings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
SIGNING_KEY = "k2:second-playback-secret-0123456789"
OLD_KEY = "k1:first-playback-secret-0123456789"

HLS_CONTENT_TYPES = {
    "m3u8": "application/vnd.apple.mpegurl",
    "m4s": "video/iso.segment",
    "mp4": "video/mp4",
}


def _hls_from(src: Path, out: Path) -> None:
    """Stream-copy ``src`` into a CMAF HLS rendition (``index.m3u8``, ``init.mp4``, ``seg_00001.m4s`` ...)."""
    out.mkdir(parents=True, exist_ok=True)
    with (
        av.open(str(src)) as inp,
        av.open(
            str(out / "index.m3u8"),
            "w",
            format="hls",
            options={
                "hls_time": "1",
                "hls_segment_type": "fmp4",
                "hls_playlist_type": "vod",
                "hls_fmp4_init_filename": "init.mp4",
                "hls_segment_filename": str(out / "seg_%05d.m4s"),
                "start_number": "1",
            },
        ) as hls,
    ):
        streams = {
            s.index: hls.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")
        }
        for packet in inp.demux(*[s for s in inp.streams if s.index in streams]):
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            hls.mux(packet)


@pytest.fixture(scope="session")
def hls_tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Files of a small stream, keyed by their path under ``/play/<id>/`` (made once per session)."""
    root = tmp_path_factory.mktemp("hls")
    _hls_from(make_video(seconds=3, width=320, height=240), root / "src")
    _hls_from(make_video(seconds=3, width=160, height=120), root / "120p")
    files: dict[str, bytes] = {}
    for rendition in ("src", "120p"):
        for f in sorted((root / rendition).iterdir()):
            files[f"{rendition}/{f.name}"] = f.read_bytes()
    files["master.m3u8"] = (
        b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
        b'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=NO,URI="subs/en.m3u8"\n'
        b'#EXT-X-STREAM-INF:BANDWIDTH=600000,RESOLUTION=320x240,CODECS="avc1.64000d,mp4a.40.2",SUBTITLES="subs"\n'
        b"src/index.m3u8\n"
        b'#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=160x120,CODECS="avc1.64000b,mp4a.40.2",SUBTITLES="subs"\n'
        b"120p/index.m3u8\n"
    )
    files["subs/en.m3u8"] = (
        b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        b"#EXTINF:3.0,\nen.vtt\n#EXT-X-ENDLIST\n"
    )
    files["subs/en.vtt"] = b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello sprite.jpg\n"
    files["manifest.mpd"] = (
        b'<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">\n <Period>\n'
        b'  <AdaptationSet mimeType="video/mp4">\n'
        b'   <SegmentTemplate initialization="dash/init-$RepresentationID$.m4s"'
        b' media="dash/chunk-$RepresentationID$-$Number%05d$.m4s" startNumber="1"/>\n'
        b'   <Representation id="0" bandwidth="600000" width="320" height="240"/>\n'
        b"  </AdaptationSet>\n </Period>\n</MPD>\n"
    )
    files["dash/init-0.m4s"] = files["src/init.mp4"]
    files["dash/chunk-0-00001.m4s"] = files["src/seg_00001.m4s"]
    return files


def _thumbs() -> dict[str, bytes]:
    import io

    from PIL import Image

    def jpeg(w: int, h: int) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (200, 40, 40)).save(buf, "JPEG")
        return buf.getvalue()

    vtt = (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nsprite.jpg#xywh=0,0,80,60\n\n"
        "00:00:01.000 --> 00:00:02.000\nsprite.jpg#xywh=80,0,80,60\n"
    )
    return {"poster.jpg": jpeg(320, 240), "sprite.jpg": jpeg(160, 60), "thumbnails.vtt": vtt.encode()}


@pytest.fixture
async def streaming_settings(make_settings: SettingsFactory) -> StreamingSettings:
    """Settings for one test: a fresh streaming schema and its own queue, rotating keys, fast webhooks, private
    targets allowed."""
    return await make_settings(
        StreamingSettings,
        MIGRATIONS_DIR,
        public_base_url="http://play.example.test",
        playback_keys=(SIGNING_KEY, OLD_KEY),
        webhook_allow_private=True,
        webhook_retry_base_s=0.05,
        webhook_retry_max_delay_s=0.2,
        webhook_dispatch_interval_s=0.05,
        webhook_timeout_s=2.0,
    )


@pytest.fixture
async def streaming_pool(streaming_settings: StreamingSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's schema (to seed streams and inspect tables)."""
    async with db.settings_pool(streaming_settings, max_size=4) as pool:
        yield pool


AppFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def app_factory(
    streaming_settings: StreamingSettings, memory_bus: Any, token_factory: TokenFactory, aiohttp_client: Any
) -> AppFactory:
    """``await app_factory(store, role="api", bus=..., **setting_changes)`` → a test client of the streaming app.

    The settings (so the schema) come before ``aiohttp_client``: the servers stop before the schema is dropped.
    """

    async def make(
        store: ObjectStore, *, role: str = "api", bus: Any = None, **changes: Any
    ) -> TestClient[web.Request, web.Application]:
        settings = streaming_settings.with_(**changes) if changes else streaming_settings
        app = create_app(
            settings, role=role, bus=bus or memory_bus, store=store, verifier=token_factory.verifier()
        )
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


@dataclass(frozen=True)
class SeededStream:
    """A stream registered in the DB and (optionally) its files in the store."""

    video_id: uuid.UUID
    owner_id: uuid.UUID


SeedStream = Callable[..., Awaitable[SeededStream]]


@pytest.fixture
def seed_stream(streaming_pool: asyncpg.Pool, hls_tree: dict[str, bytes]) -> SeedStream:
    """``await seed_stream(store, owner_id=..., status="ready", files=True, dash=True)``."""

    async def seed(
        store: ObjectStore,
        *,
        owner_id: uuid.UUID | None = None,
        status: str = "ready",
        files: bool = True,
        dash: bool = True,
        thumbs: bool = True,
    ) -> SeededStream:
        video_id, owner = uuid.uuid4(), owner_id or uuid.uuid4()
        async with streaming_pool.acquire() as conn, conn.transaction():
            await media_store.create_stream(
                conn,
                video_id=video_id,
                owner_id=owner,
                source_key=f"originals/{video_id}/source.mp4",
                duration_s=3.0,
                width=320,
                height=240,
                has_dash=dash,
            )
            if status in ("playable", "ready"):
                for name, w, h, bw in (("src", 320, 240, 600_000), ("120p", 160, 120, 300_000)):
                    await media_store.complete_rendition(
                        conn,
                        video_id=video_id,
                        name=name,
                        kind="video",
                        width=w,
                        height=h,
                        bandwidth=bw,
                        average_bandwidth=bw // 2,
                        codecs="avc1.64000d,mp4a.40.2",
                        frame_rate=25.0,
                        playlist_key=f"streams/{video_id}/{name}/index.m3u8",
                        segment_count=3,
                        size_bytes=1,
                        copy=name == "src",
                    )
            if thumbs:
                await media_store.set_thumbnails(
                    conn,
                    video_id=video_id,
                    poster_key=f"thumbs/{video_id}/poster.jpg",
                    sprite_key=f"thumbs/{video_id}/sprite.jpg",
                    thumbnails_vtt_key=f"thumbs/{video_id}/thumbnails.vtt",
                )
            await media_store.set_status(
                conn,
                video_id=video_id,
                status=status,
                error={"code": "media.unreadable", "message": "bad"} if status == "error" else None,
            )
        if files:
            for path, data in hls_tree.items():
                await store.put(f"streams/{video_id}/{path}", data)
            if thumbs:
                for name, data in _thumbs().items():
                    await store.put(f"thumbs/{video_id}/{name}", data)
        return SeededStream(video_id=video_id, owner_id=owner)

    return seed


# ---------------------------------------------------------------------------------------------- transcoding


@dataclass
class MediaEnv:
    """A running streaming worker (real RabbitMQ, Postgres, a store) and what it published."""

    settings: StreamingSettings
    store: ObjectStore
    bus: Any
    pool: asyncpg.Pool
    events: list[Any]
    api: TestClient[web.Request, web.Application]
    #: every job.progress.v1 snapshot the worker published (real RabbitMQ), in arrival order
    progress: list[Any] = field(default_factory=list)


MediaEnvFactory = Callable[..., Awaitable[MediaEnv]]


@pytest.fixture
async def media_env(
    make_settings: SettingsFactory,  # before aiohttp_client: servers stop before schemas drop
    aiohttp_client: Any,
    database_url: str,
    rabbit_bus: Any,
    token_factory: TokenFactory,
    tmp_path: Path,
) -> AsyncIterator[MediaEnvFactory]:
    """``await media_env(store, **setting_changes)``: a worker app + an api app on a fresh schema and queue."""
    from common.events.jobs import JobProgress
    from common.events.streaming import StreamFailed, StreamPlayable, StreamReady

    pools: list[asyncpg.Pool] = []

    async def make(store: ObjectStore, **changes: Any) -> MediaEnv:
        defaults = {"tmp_dir": str(tmp_path / "scratch"), "streaming_x264_preset": "ultrafast"}
        settings = await make_settings(StreamingSettings, MIGRATIONS_DIR, **{**defaults, **changes})
        events: list[Any] = []
        progress: list[Any] = []

        async def collect(event: Any, delivery: Any) -> None:
            (progress if isinstance(event, JobProgress) else events).append(event)

        await rabbit_bus.subscribe(
            f"{settings.queue}.observer", [StreamPlayable, StreamReady, StreamFailed, JobProgress], collect
        )
        worker = create_app(
            settings, role="worker", bus=rabbit_bus, store=store, verifier=token_factory.verifier()
        )
        await aiohttp_client(worker)
        api = create_app(settings, role="api", bus=rabbit_bus, store=store, verifier=token_factory.verifier())
        api_client: TestClient[web.Request, web.Application] = await aiohttp_client(api)
        pool = await db.create_pool(database_url, schema=settings.schema, max_size=3)
        pools.append(pool)
        return MediaEnv(
            settings=settings,
            store=store,
            bus=rabbit_bus,
            pool=pool,
            events=events,
            api=api_client,
            progress=progress,
        )

    yield make
    for p in pools:
        await p.close()
