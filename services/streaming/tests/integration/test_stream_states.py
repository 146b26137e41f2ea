"""GET /api/v1/streams?video_ids=: many videos' stream states in one request (a Library page), owner-scoped, through
real Postgres and HTTP; the signed poster it answers is fetched from /play with its own token."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import asyncpg
from yarl import URL

from common.storage.fs import FileStore
from common.testing.auth import TokenFactory
from streaming import store as media_store

from .conftest import AppFactory, SeedStream

URL_PATH = "/api/v1/streams"


def _ids(*ids: uuid.UUID) -> dict[str, str]:
    return {"video_ids": ",".join(str(i) for i in ids)}


async def test_a_page_of_cards_in_one_request_with_states_errors_and_a_poster_that_plays(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    owner = uuid.uuid4()
    ready = await seed_stream(fs_store, owner_id=owner, status="ready")
    playable = await seed_stream(fs_store, owner_id=owner, status="playable", thumbs=False)
    processing = await seed_stream(fs_store, owner_id=owner, status="processing", files=False)
    failed = await seed_stream(fs_store, owner_id=owner, status="error", files=False)
    client = await app_factory(fs_store)
    asked = [failed.video_id, ready.video_id, processing.video_id, playable.video_id]
    resp = await client.get(
        URL_PATH, params=_ids(*asked, ready.video_id), headers=token_factory.headers(owner)
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    items = (await resp.json())["items"]
    assert [i["video_id"] for i in items] == [str(v) for v in asked], (
        "in the order asked, a repeat answered once"
    )
    by_id = {uuid.UUID(i["video_id"]): i for i in items}
    assert by_id[failed.video_id]["status"] == "error"
    assert by_id[failed.video_id]["error"] == {"code": "media.unreadable", "message": "bad"}
    assert by_id[processing.video_id] == {
        "video_id": str(processing.video_id),
        "status": "processing",
        "error": None,
        "poster_url": None,
    }
    assert by_id[playable.video_id]["status"] == "playable" and by_id[playable.video_id]["poster_url"] is None
    poster = by_id[ready.video_id]["poster_url"]
    assert by_id[ready.video_id]["status"] == "ready" and by_id[ready.video_id]["error"] is None
    url = urlsplit(poster)
    assert f"{url.scheme}://{url.netloc}" == "http://play.example.test"
    assert url.path == f"/play/{ready.video_id}/thumbs/poster.jpg" and url.query.startswith("token=")

    # the poster plays with the token it came with, and only with it
    got = await client.get(URL(f"{url.path}?{url.query}", encoded=True))
    assert got.status == 200 and got.content_type == "image/jpeg"
    assert await got.read() == await fs_store.read_bytes(f"thumbs/{ready.video_id}/poster.jpg")
    assert (await client.get(url.path)).status == 403
    other = await client.get(URL(f"/play/{playable.video_id}/master.m3u8?{url.query}", encoded=True))
    assert other.status == 403 and (await other.json())["code"] == "playback.token_invalid"

    # asked again a moment later: the same URL, so a browser keeps the image it has
    again = await client.get(URL_PATH, params=_ids(ready.video_id), headers=token_factory.headers(owner))
    assert (await again.json())["items"][0]["poster_url"] == poster


async def test_other_users_unknown_and_deleted_videos_read_alike_as_not_found(
    app_factory: AppFactory,
    seed_stream: SeedStream,
    fs_store: FileStore,
    token_factory: TokenFactory,
    streaming_pool: asyncpg.Pool,
) -> None:
    mine = await seed_stream(fs_store, status="ready")
    theirs = await seed_stream(fs_store, status="error", files=False)
    gone = await seed_stream(fs_store, owner_id=mine.owner_id, status="ready", files=False)
    async with streaming_pool.acquire() as conn:
        await media_store.mark_deleted(conn, video_id=gone.video_id, owner_id=mine.owner_id)
    unknown = uuid.uuid4()
    client = await app_factory(fs_store)
    resp = await client.get(
        URL_PATH,
        params=_ids(theirs.video_id, unknown, gone.video_id, mine.video_id),
        headers=token_factory.headers(mine.owner_id),
    )
    assert resp.status == 200
    items = (await resp.json())["items"]
    nothing = {"status": "not_found", "error": None, "poster_url": None}
    for item, video in zip(items[:3], (theirs.video_id, unknown, gone.video_id), strict=True):
        assert item == {"video_id": str(video), **nothing}, "another's error or existence never leaks"
    assert items[3]["status"] == "ready" and items[3]["poster_url"]

    # and the owner of the other one sees it
    resp = await client.get(
        URL_PATH, params=_ids(theirs.video_id), headers=token_factory.headers(theirs.owner_id)
    )
    assert (await resp.json())["items"][0]["status"] == "error"


async def test_one_to_a_hundred_uuids_and_a_jwt(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    s = await seed_stream(fs_store, status="processing", files=False)
    client = await app_factory(fs_store)
    headers = token_factory.headers(s.owner_id)
    hundred = [s.video_id, *(uuid.uuid4() for _ in range(99))]
    resp = await client.get(URL_PATH, params=_ids(*hundred), headers=headers)
    assert resp.status == 200, await resp.text()
    items = (await resp.json())["items"]
    assert len(items) == 100 and items[0]["status"] == "processing"
    assert {i["status"] for i in items[1:]} == {"not_found"}

    refused = {
        "at most 100": _ids(*hundred, uuid.uuid4()),
        "at least one": {"video_ids": " , "},
        "UUID": {"video_ids": f"{s.video_id},nope"},
        "video_ids": {},
    }
    for words, params in refused.items():
        resp = await client.get(URL_PATH, params=params, headers=headers)
        doc = await resp.json()
        assert resp.status == 422 and resp.content_type == "application/problem+json", params
        assert doc["code"] == "validation.invalid" and words in doc["detail"], doc

    resp = await client.get(URL_PATH, params=_ids(s.video_id))
    assert resp.status == 401 and (await resp.json())["code"] == "auth.missing_token"


async def test_the_document_describes_it(app_factory: AppFactory, fs_store: FileStore) -> None:
    client = await app_factory(fs_store)
    doc = await (await client.get("/openapi.json")).json()
    op = doc["paths"][URL_PATH]["get"]
    assert [p["name"] for p in op["parameters"]] == ["video_ids"] and op["parameters"][0]["required"]
    assert set(op["responses"]) >= {"200", "401", "422"}
