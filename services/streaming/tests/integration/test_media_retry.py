"""A canceled (or failed) transcode can be retried, and a transcode job names its video (issue 14, item 9)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from common.events.ingest import VideoIngested
from common.events.jobs import JobCancelRequested
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.media import make_video
from common.testing.waiting import wait_for

from .test_media_pipeline import transcoding, types_for

pytestmark = pytest.mark.timeout(180)


async def test_a_canceled_transcode_is_retried_to_ready_and_its_jobs_name_the_video(
    media_env: Any, fs_store: ObjectStore, token_factory: TokenFactory
) -> None:
    env = await media_env(fs_store, streaming_x264_preset="slow", streaming_copy_first=False)
    vid, owner = uuid.uuid4(), uuid.uuid4()
    key = f"originals/{vid}/source.mp4"
    await fs_store.put_file(key, make_video(seconds=6, width=640, height=360, fps=30))
    await env.bus.publish(
        VideoIngested(
            video_id=vid, owner_id=owner, storage_key=key, duration_s=6.0, title="Holiday", producer="ingest"
        )
    )
    h = token_factory.headers(owner)
    first = await wait_for(lambda: transcoding(env), timeout=30, interval=0.05)
    running = [p for p in env.progress if p.job_id == first["id"] and p.status == "running"]
    assert running and running[-1].subject is not None
    assert (running[-1].subject.kind, running[-1].subject.id, running[-1].subject.title) == (
        "video",
        str(vid),
        "Holiday",
    )

    resp = await env.api.post(f"/api/v1/videos/{vid}/stream/retry", headers=h)
    assert resp.status == 409 and (await resp.json())["code"] == "stream.not_retryable"  # still processing

    await env.bus.publish(JobCancelRequested(job_id=first["id"], owner_id=owner, kind="transcode"))
    await wait_for(lambda: "stream.failed.v1" in types_for(env, vid), timeout=30, interval=0.05)
    doc = await (await env.api.get(f"/api/v1/videos/{vid}/stream", headers=h)).json()
    assert doc["status"] == "error" and doc["error"]["code"] == "job.canceled"

    other = await env.api.post(
        f"/api/v1/videos/{vid}/stream/retry", headers=token_factory.headers(uuid.uuid4())
    )
    assert other.status == 404 and (await other.json())["code"] == "stream.not_found"
    resp = await env.api.post(f"/api/v1/videos/{vid}/stream/retry", headers=h)
    assert resp.status == 202, await resp.text()
    doc = await resp.json()
    assert doc["status"] == "processing" and doc["error"] is None
    assert doc["job_id"] and doc["job_id"] != str(first["id"])

    await wait_for(lambda: "stream.ready.v1" in types_for(env, vid), timeout=150, interval=0.1)
    doc = await (await env.api.get(f"/api/v1/videos/{vid}/stream", headers=h)).json()
    assert doc["status"] == "ready" and doc["renditions"]
    async with env.pool.acquire() as conn:
        rows = await conn.fetch("SELECT status, subject FROM jobs ORDER BY created_at")
    assert [r["status"] for r in rows] == ["canceled", "succeeded"]
    assert all(r["subject"] == {"kind": "video", "id": str(vid), "title": "Holiday"} for r in rows)
    resp = await env.api.post(f"/api/v1/videos/{vid}/stream/retry", headers=h)
    assert resp.status == 409  # a ready stream has nothing to retry
