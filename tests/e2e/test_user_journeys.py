"""What a user does, end to end, through the gateway only: every service runs as its own process."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from common.testing.media import make_video

from .stack import Stack

pytestmark = pytest.mark.xdist_group("e2e")


class User:
    """A registered, logged-in user talking to the gateway."""

    def __init__(self, http: aiohttp.ClientSession, base: str, email: str, token: str) -> None:
        self.http, self.base, self.email, self.token = http, base, email, token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path, headers=self.auth) as r:
            return r.status, await r.json(content_type=None)

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(self.base + path, json=body, headers=self.auth) as r:
            return r.status, await r.json(content_type=None)


async def register(http: aiohttp.ClientSession, base: str) -> User:
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery"
    async with http.post(f"{base}/api/v1/auth/register", json={"email": email, "password": password}) as r:
        assert r.status == 201, await r.text()
    async with http.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password}) as r:
        assert r.status == 200, await r.text()
        tokens = await r.json()
    return User(http, base, email, tokens["access_token"])


async def poll(fn: Any, *, timeout: float, what: str, interval: float = 1.0) -> Any:
    """Call ``fn`` until it answers something truthy; at most once a second by default (the gateway allows
    100 requests a minute per user)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def test_new_user_gets_an_account_with_the_signup_grant(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    user = await register(http, e2e_stack.gateway_url)
    status, me = await user.get("/api/v1/me")
    assert status == 200 and me["email"] == user.email

    async def balance() -> Any:
        status, body = await user.get("/api/v1/billing/balance")
        return body if status == 200 and body.get("balance", 0) > 0 else None

    body = await poll(balance, timeout=30, what="the signup grant")
    async with http.get(f"{e2e_stack.gateway_url}/api/v1/billing/prices") as r:  # public, like a pricing page
        assert r.status == 200 and (await r.json())
    assert body["held"] == 0 and body["available"] == body["balance"]
    status, ledger = await user.get("/api/v1/billing/ledger")
    assert status == 200
    entries = ledger.get("items", ledger) if isinstance(ledger, dict) else ledger
    assert [e["kind"] for e in entries] == ["grant"]


async def test_upload_becomes_playable_through_signed_urls_with_live_progress(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    base = e2e_stack.gateway_url
    user = await register(http, base)
    ws = await http.ws_connect(f"{base}/api/v1/ws", headers=user.auth)
    seen: list[dict[str, Any]] = []

    async def listen() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                doc = json.loads(msg.data)
                if doc.get("type") == "job":
                    seen.append(doc["job"])

    listener = asyncio.create_task(listen())
    try:
        sample = make_video(seconds=4, width=640, height=360, fps=25)
        form = aiohttp.FormData()
        form.add_field("title", "My first video")
        form.add_field("file", sample.read_bytes(), filename="first.mp4", content_type="video/mp4")
        async with http.post(f"{base}/api/v1/videos", data=form, headers=user.auth) as r:
            assert r.status == 201, await r.text()
            video = await r.json()
        vid = video["id"]
        assert video["width"] == 640 and video["height"] == 360 and video["video_codec"] == "h264"

        async def ready() -> Any:
            status, body = await user.get(f"/api/v1/videos/{vid}/stream")
            return body if status == 200 and body["status"] == "ready" else None

        stream = await poll(ready, timeout=420, what="stream ready")
        videos = [r for r in stream["renditions"] if r["kind"] == "video"]
        audio = [r for r in stream["renditions"] if r["kind"] == "audio"]
        assert videos and all(r["width"] <= 640 and r["height"] <= 360 for r in videos), stream
        assert len(audio) == 1 and audio[0]["channels"] == 2 and audio[0]["width"] is None, stream

        status, pb = await user.post(f"/api/v1/videos/{vid}/playback", {"expires_in": 600})
        assert status in (200, 201), pb
        assert pb["hls_url"].startswith(base + f"/play/{vid}/")
        async with http.get(pb["hls_url"]) as r:
            assert r.status == 200
            master = await r.text()
        assert "#EXTM3U" in master and "token=" in master
        # the first variant playlist and its first media segment, through the gateway, with the token
        variant = next(line for line in master.splitlines() if line and not line.startswith("#"))
        variant_url = f"{base}/play/{vid}/{variant}"
        async with http.get(variant_url) as r:
            assert r.status == 200
            playlist = await r.text()
        media_lines = [ln for ln in playlist.splitlines() if ln and not ln.startswith("#")]
        init = [
            ln.split('URI="')[1].split('"')[0] for ln in playlist.splitlines() if ln.startswith("#EXT-X-MAP")
        ]
        folder = variant.split("?")[0].rsplit("/", 1)[0]
        blob = b""
        for part in [*init, media_lines[0]]:
            async with http.get(f"{base}/play/{vid}/{folder}/{part}") as r:
                assert r.status == 200, part
                blob += await r.read()
        with av.open(io.BytesIO(blob)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames > 0

        async with http.get(f"{base}/play/{vid}/{variant.split('?')[0]}") as r:
            assert r.status == 403  # no token, no bytes

        async def transcode_succeeded() -> bool:
            return any(j["kind"] == "transcode" and j["status"] == "succeeded" for j in seen)

        await poll(transcode_succeeded, timeout=30, what="a live transcode job update")
        status, jobs = await user.get("/api/v1/jobs?kind=transcode")
        assert status == 200 and jobs["items"][0]["status"] == "succeeded"
    finally:
        listener.cancel()
        await ws.close()


async def test_users_cannot_see_each_others_videos(e2e_stack: Stack, http: aiohttp.ClientSession) -> None:
    base = e2e_stack.gateway_url
    alice, bob = await register(http, base), await register(http, base)
    form = aiohttp.FormData()
    form.add_field("file", make_video(seconds=1).read_bytes(), filename="a.mp4", content_type="video/mp4")
    async with http.post(f"{base}/api/v1/videos", data=form, headers=alice.auth) as r:
        assert r.status == 201
        vid = (await r.json())["id"]
    assert (await bob.get(f"/api/v1/videos/{vid}"))[0] == 404
    assert (await bob.post(f"/api/v1/videos/{vid}/playback", {}))[0] == 404
    status, listing = await bob.get("/api/v1/videos")
    assert status == 200 and all(v["id"] != vid for v in listing["items"])


async def test_a_retried_upload_with_an_idempotency_key_is_one_video(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Issue 14 item 6: a client that retries an upload with the same Idempotency-Key gets the first video back,
    and one copy is stored."""
    base = e2e_stack.gateway_url
    user = await register(http, base)
    sample = make_video(seconds=1, width=352, height=288).read_bytes()  # no other test uploads this one
    answers = []
    for _ in range(2):
        form = aiohttp.FormData()  # a new boundary per attempt, as a real retry has
        form.add_field("file", sample, filename="retry.mp4", content_type="video/mp4")
        headers = {**user.auth, "Idempotency-Key": f"retry-{user.email}"}
        async with http.post(f"{base}/api/v1/videos", data=form, headers=headers) as r:
            answers.append((r.status, await r.json(), r.headers.get("Idempotent-Replayed")))
    (first, video, _), (second, again, replayed) = answers
    assert (first, second) == (201, 201) and again == video and replayed == "true"
    status, listing = await user.get("/api/v1/videos")
    assert status == 200 and [v["id"] for v in listing["items"]] == [video["id"]]
    stored = [
        p
        for p in (e2e_stack.workdir / "storage" / "originals").glob("*/source.*")
        if p.read_bytes() == sample
    ]
    assert [p.parent.name for p in stored] == [video["id"]]


async def test_url_import_runs_as_a_job(e2e_stack: Stack, http: aiohttp.ClientSession, clip_url: str) -> None:
    user = await register(http, e2e_stack.gateway_url)
    status, body = await user.post("/api/v1/imports", {"url": clip_url})
    assert status == 202, body

    async def finished() -> Any:
        status, job = await user.get(f"/api/v1/jobs/{body['job_id']}")
        return job if status == 200 and job["status"] in ("succeeded", "failed") else None

    job = await poll(finished, timeout=120, what="the import job")
    assert job["status"] == "succeeded", job
    status, video = await user.get(f"/api/v1/videos/{job['result']['video_id']}")
    assert status == 200 and video["source"] == "import"


async def test_bad_requests_get_stable_problem_codes(e2e_stack: Stack, http: aiohttp.ClientSession) -> None:
    base = e2e_stack.gateway_url
    async with http.get(f"{base}/api/v1/videos") as r:
        assert r.status == 401 and (await r.json())["code"] == "auth.missing_token"
    async with http.get(f"{base}/api/v1/videos", headers={"Authorization": "Bearer nope"}) as r:
        assert r.status == 401 and r.content_type == "application/problem+json"
    user = await register(http, base)
    async with http.post(
        f"{base}/api/v1/imports", data=b"{oops", headers={**user.auth, "Content-Type": "application/json"}
    ) as r:
        assert r.status == 400 and (await r.json())["code"] == "request.malformed_json"
    form = aiohttp.FormData()
    form.add_field("file", b"definitely not a video", filename="x.mp4", content_type="video/mp4")
    async with http.post(f"{base}/api/v1/videos", data=form, headers=user.auth) as r:
        assert r.status == 422 and (await r.json())["code"] == "media.unreadable"


async def test_an_existing_bucket_is_imported_once_and_its_videos_play(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The operator's command lists a legacy bucket; the owner sees each video ingested and streamed, once."""
    import subprocess
    import sys

    user = await register(http, e2e_stack.gateway_url)
    status, me = await user.get("/api/v1/me")
    assert status == 200
    legacy = tmp_path / "legacy-bucket"
    (legacy / "courses").mkdir(parents=True)
    sample = make_video(seconds=2, width=320, height=240, fps=25)
    for name in ("intro_lesson.mp4", "week-1.mp4"):
        (legacy / "courses" / name).write_bytes(sample.read_bytes())
    (legacy / "elsewhere.mp4").write_bytes(sample.read_bytes())  # outside the prefix: not migrated

    def run_migration() -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "streaming",
                "import-bucket",
                "--prefix",
                "courses/",
                "--owner",
                me["id"],
                "--source",
                f"file://{legacy}",
            ],
            env=e2e_stack.service_env("streaming"),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return out.stdout

    first = run_migration()
    assert "2 requested" in first, first

    async def both_ready() -> Any:
        status, body = await user.get("/api/v1/videos")
        items = body.get("items", []) if status == 200 else []
        if len(items) < 2:
            return None
        streams = [await user.get(f"/api/v1/videos/{v['id']}/stream") for v in items]
        return items if all(s == 200 and b["status"] == "ready" for s, b in streams) else None

    videos = await poll(both_ready, timeout=420, what="both migrated videos ready")
    assert sorted(v["title"] for v in videos) == ["intro lesson", "week 1"]
    assert {v["source"] for v in videos} == {"migration"}

    again = run_migration()
    assert "0 requested" in again and "2 already requested" in again, again
    await asyncio.sleep(2)  # anything a second run wrongly requested would have been ingested by now
    status, body = await user.get("/api/v1/videos")
    assert status == 200 and len(body["items"]) == 2
