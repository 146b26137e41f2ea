"""A deleted video stays deleted: ``video.deleted.v1`` closes every playback URL (tokens issued before included),
refuses new tokens, removes the stream's files and stops its transcode (real RabbitMQ, Postgres, store, PyAV)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from common.events.ingest import VideoDeleted, VideoIngested
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.media import make_video
from common.testing.waiting import wait_for
from streaming import store as media_store

from .test_media_pipeline import ingest, transcoding, types_for

pytestmark = pytest.mark.timeout(180)


async def _keys(st: ObjectStore, vid: uuid.UUID) -> list[str]:
    return [o.key for p in (f"streams/{vid}/", f"thumbs/{vid}/") async for o in st.list(p)]


async def test_a_deleted_video_stops_playing_at_once_and_its_files_go(
    media_env: Any, fs_store: ObjectStore, token_factory: TokenFactory
) -> None:
    env = await media_env(fs_store)
    event = await ingest(env, make_video(seconds=2, width=320, height=240))
    vid, h = event.video_id, token_factory.headers(event.owner_id)
    await wait_for(lambda: "stream.ready.v1" in types_for(env, vid), timeout=90, interval=0.1)
    pb = await (await env.api.post(f"/api/v1/videos/{vid}/playback", headers=h)).json()
    urls = [urlsplit(pb[k]) for k in ("hls_url", "poster_url")]
    paths = [f"{u.path}?{u.query}" for u in urls]
    master = await env.api.get(paths[0])
    assert master.status == 200
    variant = next(ln for ln in (await master.text()).splitlines() if ln and not ln.startswith("#"))
    paths.append(f"/play/{vid}/{variant}")
    # a media segment the variant playlist names (read before the delete; its URL carries the same token)
    playlist = await env.api.get(paths[-1])
    segment = next(ln for ln in (await playlist.text()).splitlines() if ln and not ln.startswith("#"))
    paths.append(urljoin(paths[-1], segment))
    assert urlsplit(paths[-1]).path.endswith((".m4s", ".ts")), paths[-1]
    for p in paths:
        resp = await env.api.get(p)
        assert resp.status == 200 and await resp.read(), p
    assert await _keys(fs_store, vid)

    await env.bus.publish(VideoDeleted(video_id=vid, owner_id=event.owner_id, producer="ingest"))

    async def gone() -> bool:
        return (await env.api.get(paths[0])).status == 404

    await wait_for(gone, timeout=10, interval=0.05)
    for p in paths:  # the token issued before the delete opens nothing
        resp = await env.api.get(p)
        assert resp.status == 404 and (await resp.json())["code"] == "file.not_found", p
    resp = await env.api.post(f"/api/v1/videos/{vid}/playback", headers=h)
    assert resp.status == 404 and (await resp.json())["code"] == "stream.not_found"
    assert (await env.api.get(f"/api/v1/videos/{vid}/stream", headers=h)).status == 404

    async def no_files() -> bool:
        return not await _keys(fs_store, vid)

    await wait_for(no_files, timeout=10, interval=0.05)
    # a redelivered (or late) video.ingested does not bring it back
    await env.bus.publish(
        VideoIngested(
            video_id=vid,
            owner_id=event.owner_id,
            storage_key=event.storage_key,
            duration_s=0.0,
            producer="ingest",
        )
    )
    async with env.pool.acquire() as conn:
        await wait_for(
            lambda: conn.fetchval("SELECT count(*) = 2 FROM inbox WHERE event_type = 'video.ingested.v1'"),
            timeout=10,
            interval=0.05,
        )
        assert await media_store.get_stream(conn, video_id=vid) is None
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 1


async def test_deleting_a_video_mid_transcode_cancels_it_and_leaves_no_files(
    media_env: Any, fs_store: ObjectStore
) -> None:
    env = await media_env(fs_store, streaming_x264_preset="slow", streaming_copy_first=False)
    event = await ingest(env, make_video(seconds=6, width=640, height=360, fps=30))
    vid = event.video_id

    await wait_for(lambda: transcoding(env), timeout=30, interval=0.05)
    await env.bus.publish(VideoDeleted(video_id=vid, owner_id=event.owner_id, producer="ingest"))

    async def canceled() -> bool:
        async with env.pool.acquire() as conn:
            return await conn.fetchval("SELECT status FROM jobs") == "canceled"

    await wait_for(canceled, timeout=30, interval=0.05)

    async def no_files() -> bool:
        return not await _keys(fs_store, vid)

    await wait_for(no_files, timeout=10, interval=0.05)
    assert "stream.ready.v1" not in types_for(env, vid)
    assert "stream.failed.v1" not in types_for(env, vid)  # deleted is not failed: nobody is told it broke
