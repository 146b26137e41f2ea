"""Uploads through the HTTP API: real Postgres, RabbitMQ or memory bus, both object stores, PyAV."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient
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


ApiFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def api(
    start_app: AppFactory, settings: IngestSettings, fs_store: ObjectStore, memory_bus: Bus
) -> ApiFactory:
    """``await api(**settings changes)``: an ingest API on the memory bus and the file store."""

    async def make(**changes: Any) -> TestClient[Any, Any]:
        return await start_app(settings.with_(**changes), bus=memory_bus, store=fs_store)

    return make


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
    api: ApiFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    pool: asyncpg.Pool,
    token_factory: TokenFactory,
    bad_media: dict[str, Path],
    mp4: Path,
    case: str,
    status: int,
    code: str,
    extra: dict[str, Any],
) -> None:
    client = await api(**extra)
    path = bad_media.get(case, mp4)
    resp = await client.post("/api/v1/videos", data=_form(path), headers=token_factory.headers(uuid.uuid4()))
    assert resp.status == status, await resp.text()
    problem = await resp.json()
    assert resp.content_type == "application/problem+json" and problem["code"] == code
    assert await originals(fs_store) == [] and await _rows(pool) == 0 and tmp_leftovers(settings) == []


async def test_audio_only_upload_is_accepted_when_asked(
    api: ApiFactory,
    token_factory: TokenFactory,
    bad_media: dict[str, Path],
) -> None:
    client = await api()
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
    api: ApiFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    pool: asyncpg.Pool,
    token_factory: TokenFactory,
) -> None:
    """A chunked upload with no Content-Length that never ends is refused after the limit, not after the end."""
    client = await api(max_upload_bytes=1_000_000)
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
    api: ApiFactory,
    fs_store: ObjectStore,
    pool: asyncpg.Pool,
    token_factory: TokenFactory,
    mp4: Path,
) -> None:
    client = await api()
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


async def test_q_lists_the_owners_videos_whose_title_contains_it_in_any_case(
    api: ApiFactory, token_factory: TokenFactory, mp4: Path
) -> None:
    """``?q=``: any case, ``%``/``_``/``\\`` taken literally, never another owner's video, and its cursor pages
    through every match once."""
    client = await api()
    alice, mallory = token_factory.headers(uuid.uuid4()), token_factory.headers(uuid.uuid4())
    titles = [
        "Harbour at dawn",
        "100% cotton review",
        "1000 cotton shirts",
        "snake_case tips",
        "snakeXcase tips",
        "back\\slash",
        "HARBOUR lights",
        "Old harbour walk",
    ]
    ids: dict[str, str] = {}
    for title in titles:
        resp = await client.post("/api/v1/videos", data=_form(mp4, title=title), headers=alice)
        ids[title] = (await resp.json())["id"]
    resp = await client.post("/api/v1/videos", data=_form(mp4, title="Mallory's harbour"), headers=mallory)
    theirs = (await resp.json())["id"]

    async def listing(query: dict[str, str], headers: dict[str, str] = alice) -> list[str]:
        """Every title of a listing, following its cursor one video a page."""
        seen: list[str] = []
        cursor = None
        while True:
            params = {**query, "limit": "1", **({"cursor": cursor} if cursor else {})}
            resp = await client.get("/api/v1/videos", params=params, headers=headers)
            assert resp.status == 200, await resp.text()
            page = await resp.json()
            seen += [v["title"] for v in page["items"]]
            if not (cursor := page["next_cursor"]):
                return seen

    assert await listing({"q": "hArBoUr"}) == ["Old harbour walk", "HARBOUR lights", "Harbour at dawn"]
    assert await listing({"q": "100%"}) == ["100% cotton review"]
    assert await listing({"q": "%"}) == ["100% cotton review"]
    assert await listing({"q": "snake_case"}) == ["snake_case tips"]
    assert await listing({"q": "_"}) == ["snake_case tips"]
    assert await listing({"q": "\\"}) == ["back\\slash"]
    assert await listing({"q": "  cotton "}) == ["1000 cotton shirts", "100% cotton review"]
    assert await listing({"q": "nothing like it"}) == []
    assert await listing({"q": " "}) == titles[::-1], "a blank q filters nothing"
    assert await listing({"q": "harbour"}, mallory) == ["Mallory's harbour"]
    assert await listing({"q": "Mallory"}) == []
    assert theirs not in ids.values()

    assert (await client.get("/api/v1/videos", params={"q": "x" * 200}, headers=alice)).status == 200
    for bad, status, code in (
        ("x" * 201, 422, "validation.invalid"),
        ("a\x00b", 400, "request.invalid_characters"),
    ):
        resp = await client.get("/api/v1/videos", params={"q": bad}, headers=alice)
        assert resp.status == status and resp.content_type == "application/problem+json", bad
        assert (await resp.json())["code"] == code, bad
    assert (await client.get("/api/v1/videos", params={"q": "harbour"})).status == 401


async def test_a_video_is_renamed_and_described_by_its_owner_only(
    api: ApiFactory, token_factory: TokenFactory, mp4: Path
) -> None:
    client = await api()
    alice, mallory = token_factory.headers(uuid.uuid4()), token_factory.headers(uuid.uuid4())
    created = await (
        await client.post("/api/v1/videos", data=_form(mp4, title="IMG_0042"), headers=alice)
    ).json()
    url = f"/api/v1/videos/{created['id']}"

    resp = await client.patch(
        url, json={"title": "  Holiday in Busan ", "description": "Day one."}, headers=alice
    )
    assert resp.status == 200, await resp.text()
    renamed = await resp.json()
    assert (renamed["title"], renamed["description"]) == ("Holiday in Busan", "Day one.")
    assert {k: v for k, v in renamed.items() if k not in ("title", "description")} == {
        k: v for k, v in created.items() if k not in ("title", "description")
    }
    resp = await client.patch(url, json={"description": ""}, headers=alice)  # the title stays
    assert (await resp.json())["title"] == "Holiday in Busan" and (await resp.json())["description"] == ""
    listed = await (await client.get("/api/v1/videos", headers=alice)).json()
    assert [v["title"] for v in listed["items"]] == ["Holiday in Busan"]
    assert (await (await client.get(url, headers=alice)).json())["title"] == "Holiday in Busan"

    for bad in ({"title": "   "}, {"title": ""}, {"title": "x" * 501}, {}, {"owner_id": "me"}, {"title": 5}):
        resp = await client.patch(url, json=bad, headers=alice)
        assert resp.status == 422 and (await resp.json())["code"] == "validation.invalid", bad
    resp = await client.patch(url, json={"title": "mine now"}, headers=mallory)
    assert resp.status == 404 and (await resp.json())["code"] == "video.not_found"
    assert (await client.patch(url, json={"title": "x"})).status == 401
    assert (await (await client.get(url, headers=alice)).json())["title"] == "Holiday in Busan"


async def test_openapi_document_is_valid(
    api: ApiFactory,
) -> None:
    client = await api()
    doc = await (await client.get("/openapi.json")).json()
    validate(doc)
    routes = {r.resource.canonical for r in client.app.router.routes() if r.resource is not None}
    assert {p for p in doc["paths"]} == {
        r.replace("{video_id}", "{video_id}") for r in routes if r.startswith("/api/v1/")
    }
