"""Uploads through the HTTP API: real Postgres, RabbitMQ or memory bus, both object stores, PyAV."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from openapi_spec_validator import validate

from common.bus import Bus
from common.events.ingest import VideoDeleted, VideoIngested
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.bus import RabbitBusFactory
from common.testing.waiting import wait_for
from ingest.config import IngestSettings

from ..conftest import AppFactory, originals, tmp_leftovers


def _form(
    path: Path | None = None, *, data: bytes | None = None, name: str = "clip.mp4", **fields: str
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for k, v in fields.items():
        form.add_field(k, v)
    body = data if data is not None else (path.read_bytes() if path else b"")
    form.add_field("file", body, filename=name, content_type="video/mp4")
    return form


async def _rows(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM videos"))


async def test_upload_creates_a_probed_video_and_announces_it(
    start_app: AppFactory,
    settings: IngestSettings,
    store: ObjectStore,
    rabbit_bus_factory: RabbitBusFactory,
    token_factory: TokenFactory,
    mp4: Path,
    mp4_bytes: bytes,
) -> None:
    """On both stores: 201 with the probed facts, the original kept whole, video.ingested.v1 on RabbitMQ."""
    bus = await rabbit_bus_factory()
    listener = await rabbit_bus_factory()
    seen: list[VideoIngested] = []

    async def collect(event: Any, delivery: Any) -> None:
        seen.append(event)

    await listener.subscribe(f"listen-{uuid.uuid4().hex[:8]}", [VideoIngested], collect)
    client = await start_app(settings, bus=bus, store=store)
    user = uuid.uuid4()
    resp = await client.post(
        "/api/v1/videos", data=_form(mp4, title="My first clip"), headers=token_factory.headers(user)
    )
    assert resp.status == 201, await resp.text()
    video = await resp.json()
    assert video["title"] == "My first clip" and video["source"] == "upload"
    assert (video["width"], video["height"], video["fps"], video["video_codec"], video["audio_codec"]) == (
        320,
        240,
        25,
        "h264",
        "aac",
    )
    assert 1.9 <= video["duration_s"] <= 2.2 and video["size_bytes"] == len(mp4_bytes)
    key = f"originals/{video['id']}/source.mp4"
    assert await store.read_bytes(key) == mp4_bytes
    await wait_for(lambda: seen, timeout=30)
    event = seen[0]
    assert event.video_id == uuid.UUID(video["id"]) and event.owner_id == user and event.storage_key == key
    assert (event.width, event.height, event.source, event.title) == (320, 240, "upload", "My first clip")
    got = await client.get(f"/api/v1/videos/{video['id']}", headers=token_factory.headers(user))
    assert (await got.json()) == video
    assert tmp_leftovers(settings) == []


@pytest.mark.parametrize(
    ("case", "status", "code", "extra"),
    [
        ("empty", 422, "media.unreadable", {}),
        ("truncated", 422, "media.unreadable", {}),
        ("text", 422, "media.unreadable", {}),
        ("audio", 422, "media.no_video_stream", {}),
        ("long", 422, "media.too_long", {"max_duration_s": 1.0}),
        ("tiny", 422, "media.bad_dimensions", {"min_dimension": 400}),
        ("huge", 422, "media.bad_dimensions", {"max_dimension": 300}),
        ("big", 413, "upload.too_large", {"max_upload_bytes": 50_000}),
    ],
)
async def test_bad_uploads_answer_their_code_and_leave_nothing(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: Bus,
    pool: asyncpg.Pool,
    token_factory: TokenFactory,
    bad_media: dict[str, Path],
    mp4: Path,
    mp4_bytes: bytes,
    case: str,
    status: int,
    code: str,
    extra: dict[str, Any],
) -> None:
    client = await start_app(settings.with_(**extra), bus=memory_bus, store=fs_store)
    path = bad_media.get(case, mp4)
    resp = await client.post("/api/v1/videos", data=_form(path), headers=token_factory.headers(uuid.uuid4()))
    assert resp.status == status, await resp.text()
    problem = await resp.json()
    assert resp.content_type == "application/problem+json" and problem["code"] == code
    assert await originals(fs_store) == [] and await _rows(pool) == 0 and tmp_leftovers(settings) == []


async def test_audio_only_upload_is_accepted_when_asked(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: Bus,
    token_factory: TokenFactory,
    bad_media: dict[str, Path],
) -> None:
    client = await start_app(settings, bus=memory_bus, store=fs_store)
    resp = await client.post(
        "/api/v1/videos",
        data=_form(bad_media["audio"], name="tone.m4a", allow_audio_only="true"),
        headers=token_factory.headers(uuid.uuid4()),
    )
    assert resp.status == 201, await resp.text()
    video = await resp.json()
    assert video["audio_only"] and video["video_codec"] == "" and video["container"] == "m4a"
    assert video["title"] == "tone"


async def test_size_limit_is_enforced_while_streaming(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: Bus,
    pool: asyncpg.Pool,
    token_factory: TokenFactory,
) -> None:
    """A chunked upload with no Content-Length that never ends is refused after the limit, not after the end."""
    client = await start_app(settings.with_(max_upload_bytes=1_000_000), bus=memory_bus, store=fs_store)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < 500_000_000:  # 500 MB: a buffered implementation would take ages and fill the disk
            sent += 65536
            yield b"\0" * 65536

    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(endless(), {"Content-Type": "video/mp4"})
    part.set_content_disposition("form-data", name="file", filename="endless.mp4")
    resp = await client.post("/api/v1/videos", data=writer, headers=token_factory.headers(uuid.uuid4()))
    assert resp.status == 413 and (await resp.json())["code"] == "upload.too_large"
    assert sent < 100_000_000
    assert await originals(fs_store) == [] and await _rows(pool) == 0 and tmp_leftovers(settings) == []


async def test_owners_see_only_their_videos(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: Bus,
    pool: asyncpg.Pool,
    token_factory: TokenFactory,
    mp4: Path,
    mp4_bytes: bytes,
) -> None:
    client = await start_app(settings, bus=memory_bus, store=fs_store)
    alice, mallory = uuid.uuid4(), uuid.uuid4()
    ids = []
    for i in range(3):
        resp = await client.post(
            "/api/v1/videos", data=_form(mp4, title=f"clip {i}"), headers=token_factory.headers(alice)
        )
        ids.append((await resp.json())["id"])
    vid = ids[0]
    for method in ("GET", "DELETE"):
        resp = await client.request(method, f"/api/v1/videos/{vid}", headers=token_factory.headers(mallory))
        assert resp.status == 404 and (await resp.json())["code"] == "video.not_found"
    listing = await (await client.get("/api/v1/videos", headers=token_factory.headers(mallory))).json()
    assert listing == {"items": [], "next_cursor": None}
    page1 = await (await client.get("/api/v1/videos?limit=2", headers=token_factory.headers(alice))).json()
    assert [v["id"] for v in page1["items"]] == ids[::-1][:2] and page1["next_cursor"]
    page2 = await (
        await client.get(
            f"/api/v1/videos?limit=2&cursor={page1['next_cursor']}", headers=token_factory.headers(alice)
        )
    ).json()
    assert [v["id"] for v in page2["items"]] == [ids[0]] and page2["next_cursor"] is None
    assert (await client.get("/api/v1/videos")).status == 401

    resp = await client.delete(f"/api/v1/videos/{vid}", headers=token_factory.headers(alice))
    assert resp.status == 204
    assert (await client.get(f"/api/v1/videos/{vid}", headers=token_factory.headers(alice))).status == 404
    assert not [k for k in await originals(fs_store) if vid in k] and await _rows(pool) == 2
    async with pool.acquire() as conn:
        rk = await conn.fetchval("SELECT routing_key FROM outbox ORDER BY seq DESC LIMIT 1")
    assert rk == VideoDeleted.event_type()


async def test_openapi_document_is_valid(
    start_app: AppFactory, settings: IngestSettings, fs_store: ObjectStore, memory_bus: Bus
) -> None:
    client = await start_app(settings, bus=memory_bus, store=fs_store)
    doc = await (await client.get("/openapi.json")).json()
    validate(doc)
    routes = {r.resource.canonical for r in client.app.router.routes() if r.resource is not None}
    assert {p for p in doc["paths"]} == {
        r.replace("{video_id}", "{video_id}") for r in routes if r.startswith("/api/v1/")
    }
