"""Issue 14 through the gateway: what a user or an attacker found broken stays fixed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest
from aiohttp import web

from common.storage.content_types import content_type
from common.storage.fs import FileStore
from common.testing.http import serving
from common.testing.media import make_audio, make_video

from .stack import Proc, Stack
from .test_user_journeys import User, poll, register

pytestmark = pytest.mark.xdist_group("e2e")


async def upload_answer(
    http: aiohttp.ClientSession, user: User, data: bytes, *, name: str, title: str = "clip"
) -> tuple[int, Any]:
    """Upload ``data`` as the file ``name`` (its type from the platform's table: ``.ts`` is ``video/mp2t``, where
    this machine's mime.types says Qt Linguist); the answer's status and body."""
    form = aiohttp.FormData()
    form.add_field("title", title)
    form.add_field("file", data, filename=name, content_type=content_type(name))
    async with http.post(f"{user.base}/api/v1/videos", data=form, headers=user.auth) as r:
        return r.status, await r.json(content_type=None)


async def upload(http: aiohttp.ClientSession, user: User, data: bytes, *, name: str) -> str:
    """Upload ``data`` as the file ``name``; the new video's id."""
    status, body = await upload_answer(http, user, data, name=name)
    assert status == 201, body
    vid: str = body["id"]
    return vid


async def stream_ready(user: User, vid: str) -> dict[str, Any]:
    """Wait (polling once a second) until the video's stream is ready; its view."""

    async def ready() -> Any:
        status, body = await user.get(f"/api/v1/videos/{vid}/stream")
        return body if status == 200 and body["status"] == "ready" else None

    stream: dict[str, Any] = await poll(ready, timeout=420, what="stream ready", interval=1.0)
    return stream


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook endpoint on 127.0.0.1: its URL and the bodies it received."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(json.loads(await request.text()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with serving(app) as (host, port):
        yield f"http://{host}:{port}/hook", received


async def test_a_deleted_video_stops_playing_within_a_second_and_its_files_go(
    e2e_stack: Stack, http: aiohttp.ClientSession, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    hook_url, received = receiver
    user = await register(http, e2e_stack.gateway_url)
    status, hook = await user.post("/api/v1/webhooks", {"url": hook_url, "events": ["video.deleted"]})
    assert status == 201, hook
    vid = await upload(
        http, user, make_video(seconds=2, width=320, height=240).read_bytes(), name="doomed.mp4"
    )
    await stream_ready(user, vid)
    status, pb = await user.post(f"/api/v1/videos/{vid}/playback", {"expires_in": 600})
    assert status == 201, pb
    async with http.get(pb["hls_url"]) as r:
        assert r.status == 200
        master = await r.text()
    variant = next(line for line in master.splitlines() if line and not line.startswith("#"))
    urls = [pb["hls_url"], pb["poster_url"], f"{user.base}/play/{vid}/{variant}"]
    # a media segment the variant playlist names, read before the delete (its URL carries the same token)
    async with http.get(urls[-1]) as r:
        assert r.status == 200
        segment = next(ln for ln in (await r.text()).splitlines() if ln and not ln.startswith("#"))
    urls.append(urljoin(urls[-1], segment))
    assert urlsplit(urls[-1]).path.endswith((".m4s", ".ts")), urls[-1]
    for url in urls:
        async with http.get(url) as r:
            assert r.status == 200 and await r.read(), url
    storage = Path(e2e_stack.env["STORAGE_URL"].removeprefix("file://"))
    assert any((storage / "streams" / vid).rglob("*")) and any((storage / "thumbs" / vid).rglob("*"))

    async with http.delete(f"{user.base}/api/v1/videos/{vid}", headers=user.auth) as r:
        assert r.status == 204
    await asyncio.sleep(1.0)  # "at once": a second after the delete answered, nothing plays

    for url in urls:  # the token issued before the delete opens nothing
        async with http.get(url) as r:
            assert r.status == 404, url
            assert (await r.json(content_type=None))["code"] == "file.not_found"
    status, body = await user.post(f"/api/v1/videos/{vid}/playback", {})
    assert status == 404 and body["code"] == "stream.not_found", body
    status, body = await user.get(f"/api/v1/videos/{vid}/stream")
    assert status == 404, body
    assert (await user.get(f"/api/v1/videos/{vid}"))[0] == 404

    async def files_gone() -> bool:
        return not any(
            (storage / prefix / vid).exists() and any((storage / prefix / vid).rglob("*"))
            for prefix in ("originals", "streams", "thumbs", "captions")
        )

    await poll(files_gone, timeout=10, what="the video's files removed", interval=1.0)

    async def told() -> Any:
        return next((b for b in received if b["type"] == "video.deleted"), None)

    event = await poll(told, timeout=30, what="the video.deleted webhook", interval=1.0)
    assert event["data"] == {"video_id": vid, "status": "deleted"}


async def test_an_audio_upload_plays_is_renamed_and_its_job_names_it(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    """What a newcomer tripped over: audio-only uploads never played, jobs did not say which video, no rename."""
    user = await register(http, e2e_stack.gateway_url)
    form = aiohttp.FormData()
    form.add_field("title", "Episode 1")
    form.add_field("allow_audio_only", "true")
    form.add_field(
        "file", make_audio(seconds=2.0).read_bytes(), filename="episode.m4a", content_type="audio/mp4"
    )
    async with http.post(f"{user.base}/api/v1/videos", data=form, headers=user.auth) as r:
        assert r.status == 201, await r.text()
        vid = (await r.json())["id"]
    stream = await stream_ready(user, vid)
    assert [r["kind"] for r in stream["renditions"]] == ["audio"]
    status, pb = await user.post(f"/api/v1/videos/{vid}/playback", {})
    assert status == 201, pb
    async with http.get(pb["hls_url"]) as r:
        assert r.status == 200
        master = await r.text()
    variant = next(line for line in master.splitlines() if line and not line.startswith("#"))
    assert variant.startswith("audio/index.m3u8?token=")
    async with http.get(f"{user.base}/play/{vid}/{variant}") as r:
        assert r.status == 200 and "#EXT-X-ENDLIST" in await r.text()

    status, jobs = await user.get("/api/v1/jobs?kind=transcode")
    assert status == 200 and jobs["items"][0]["subject"] == {"kind": "video", "id": vid, "title": "Episode 1"}

    async with http.patch(
        f"{user.base}/api/v1/videos/{vid}", json={"title": "Episode 1: Pilot"}, headers=user.auth
    ) as r:
        assert r.status == 200, await r.text()
    status, video = await user.get(f"/api/v1/videos/{vid}")
    assert status == 200 and video["title"] == "Episode 1: Pilot"

    # a ready stream has nothing to retry (the retry endpoint is reached through the gateway)
    status, body = await user.post(f"/api/v1/videos/{vid}/stream/retry", {})
    assert status == 409 and body["code"] == "stream.not_retryable", body


async def test_an_mpeg_ts_upload_plays(e2e_stack: Stack, http: aiohttp.ClientSession) -> None:
    """A real H.264/AAC MPEG-TS file (a camera's or a recorder's) once failed its remux with ``[Errno 1]``."""
    user = await register(http, e2e_stack.gateway_url)
    ts = make_video(seconds=2, width=320, height=240, container="ts")
    vid = await upload(http, user, ts.read_bytes(), name="recording.ts")
    status, video = await user.get(f"/api/v1/videos/{vid}")
    assert status == 200 and (video["container"], video["video_codec"], video["audio_codec"]) == (
        "ts",
        "h264",
        "aac",
    ), video
    stream = await stream_ready(user, vid)
    assert {r["kind"] for r in stream["renditions"]} == {"video", "audio"}, stream
    status, pb = await user.post(f"/api/v1/videos/{vid}/playback", {})
    assert status == 201, pb
    async with http.get(pb["hls_url"]) as r:
        assert r.status == 200 and r.content_type == "application/vnd.apple.mpegurl"
        master = await r.text()
    # every variant and the audio group (its remux is what failed), each playlist and its first segment
    children = [line for line in master.splitlines() if line and not line.startswith("#")]
    children += re.findall(r'#EXT-X-MEDIA:.*URI="([^"]+)"', master)
    assert any(c.startswith("audio/") for c in children) and len(children) >= 2, master
    for child in children:
        async with http.get(f"{user.base}/play/{vid}/{child}") as r:
            assert r.status == 200, child
            playlist = await r.text()
        segment = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
        base = f"{user.base}/play/{vid}/{child.split('?')[0].rsplit('/', 1)[0]}/"
        async with http.get(segment if "://" in segment else base + segment) as r:
            assert r.status == 200 and len(await r.read()) > 0, (child, segment)
    # the original kept whole, as what it is
    objects = FileStore(Path(e2e_stack.env["STORAGE_URL"].removeprefix("file://")))
    keys = [o.key async for o in objects.list(f"originals/{vid}/")]
    assert keys == [f"originals/{vid}/source.ts"], keys
    info = await objects.stat(keys[0])
    assert info is not None and info.content_type == "video/mp2t" and info.size == ts.stat().st_size


@contextlib.asynccontextmanager
async def restarted_with(stack: Stack, service: str, role: str, env: dict[str, str]) -> AsyncIterator[Proc]:
    """``service``'s ``role`` process restarted with ``env`` added for the block, then restarted as it was."""
    name = f"{service}:{role}"
    before = stack.overrides.get(service, {})
    stack.kill(name, signal.SIGTERM)
    stack.overrides[service] = {**before, **env}
    try:
        proc = stack.start(service, role)
        await stack.wait_ready([name])
        yield proc
    finally:
        stack.overrides[service] = before
        stack.kill(name, signal.SIGTERM)
        stack.start(service, role)
        await stack.wait_ready([name])


async def test_an_upload_whose_api_is_killed_after_storing_is_a_502_and_leaves_nothing_after_the_sweep(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Issue 14 item 4: ingest's api SIGKILLed between storing an original and committing its row."""
    user = await register(http, e2e_stack.gateway_url)
    originals = Path(e2e_stack.env["STORAGE_URL"].removeprefix("file://")) / "originals"
    before = set(originals.iterdir()) if originals.exists() else set()
    # stops right after the object is stored (and says so in its log), before the row is committed
    paused = {"FAULT_PAUSE_AFTER_ORIGINAL_S": "300", "PYTHONUNBUFFERED": "1"}
    async with restarted_with(e2e_stack, "ingest", "api", paused) as api:
        answer = asyncio.create_task(
            upload_answer(http, user, make_video(seconds=1).read_bytes(), name="doomed.mp4")
        )

        async def stored() -> bool:
            return "ingest.fault_pause_after_original" in api.tail(200)

        await poll(stored, timeout=60, what="the original stored", interval=1.0)
        e2e_stack.kill("ingest:api")  # SIGKILL at that moment
        status, body = await answer
    assert (status, body["code"]) == (502, "upstream.bad_gateway"), body
    left = set(originals.iterdir()) - before
    assert len(left) == 1, left  # what issue 14 saw stay forever
    status, page = await user.get("/api/v1/videos")
    assert status == 200 and page["items"] == [], page  # no row: the user has no video

    # the worker's sweep (an intent a second old without its video is a crash's leftover) removes it
    sweeping = {"ORIGINALS_ORPHAN_AGE_S": "1", "ORIGINALS_SWEEP_INTERVAL_S": "1"}
    (orphan,) = left
    async with restarted_with(e2e_stack, "ingest", "worker", sweeping) as worker:

        async def swept() -> bool:
            return not (orphan.exists() and any(orphan.rglob("*")))

        await poll(swept, timeout=60, what="the orphan swept", interval=1.0)
        lines = worker.tail(2000).splitlines()
    assert any("ingest.orphan_swept" in line and orphan.name in line for line in lines)
