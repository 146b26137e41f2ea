"""A render job through render's API and worker at each of its stages, with the real billing service, Postgres,
RabbitMQ, the filesystem store and PyAV: cancel while awaiting credits, while preparing (the loudness pass; that it
stops inside one long clip is test_compose's) and while publishing, each ending canceled with the hold released in full and no scratch or output
left; progress while the imports are waited for; a title no font can draw fails ``render.missing_glyphs``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from common.credit_holds import HoldStatus
from common.events.jobs import JobCancelRequested
from common.jobs import Job, get_job
from common.storage import ObjectInfo
from common.storage.fs import FileStore
from common.testing.media import make_video, mixed_clips
from common.testing.waiting import wait_for
from render.jobs import output_key

from .conftest import RenderHarness
from .test_renders import (
    _answer_import,
    _ended,
    _fails_and_releases,
    _linked_render,
    _mixed_project,
    _outbox,
    _ready_videos,
    _render_storing_through,
    _scratch_left,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("render_service")]
WORK_STAGES = ("fetching sources", "preparing", "composing", "encoding", "publishing")


async def _cancel(harness: RenderHarness, owner: uuid.UUID, render_id: str) -> None:
    """The user's cancel as the jobs API sends it: ``job.cancel_requested.v1`` on the bus, to render's router."""
    await harness.stack.bus.publish(
        JobCancelRequested(job_id=uuid.UUID(render_id), owner_id=owner, kind="render", producer="gateway")
    )


async def _job(harness: RenderHarness, render_id: str) -> Job:
    async with harness.stack.pool.acquire() as conn:
        job = await get_job(conn, uuid.UUID(render_id))
    assert job is not None
    return job


async def _canceled_and_released(
    harness: RenderHarness, owner: uuid.UUID, auth: dict[str, str], render_id: str
) -> Job:
    """The render ends canceled: nothing captured, the hold released in full, no output object, no scratch."""
    job = await _ended(harness, render_id)
    assert job.status == "canceled" and job.error is not None and job.error["code"] == "job.canceled", job
    hold = await harness.stack.hold_settles(uuid.UUID(render_id), HoldStatus.RELEASED)
    assert await harness.stack.billing_hold_status(hold.hold_ref) == "released"
    assert await harness.stack.captures(hold.hold_ref) == []
    await harness.stack.check_books(owner, balance=harness.stack.grant)
    assert [o.key async for o in harness.objects.list(f"renders/{render_id}/")] == []
    completed = [e for e in await _outbox(harness, "render.completed.v1") if str(e.render_id) == render_id]
    assert completed == []
    _, view = await harness.call("GET", f"/api/v1/renders/{render_id}", auth)
    assert view["status"] == "canceled" and view["download_url"] is None, view
    assert _scratch_left(harness) == []
    return job


async def test_cancel_while_awaiting_credits_never_runs_the_render_and_releases_the_late_hold(
    harness: RenderHarness,
) -> None:
    owner, auth = await harness.user()
    stack = harness.stack
    await stack.pause_relay()  # billing does not hear of the hold yet: the render waits for its credits
    try:
        _, render = await _linked_render(harness, auth, "unpaid")
        job = await _job(harness, render["id"])
        assert (job.status, job.stage) == ("queued", "awaiting_credits")
        await _cancel(harness, owner, render["id"])
        await _ended(harness, render["id"], timeout=30)
    finally:
        await stack.resume_relay()  # now billing holds the credits, late, and is told to release them
    job = await _canceled_and_released(harness, owner, auth, render["id"])
    assert uuid.UUID(render["id"]) not in harness.worker.render_runs  # it never ran
    assert not set(WORK_STAGES) & set(harness.stages(render["id"]))


async def test_cancel_while_preparing_ends_the_render_canceled_before_anything_is_published(
    harness: RenderHarness,
) -> None:
    owner, auth = await harness.user()
    # 94 s of audio to measure (as much as the signup grant pays for): a pass of many times the cancel's latency
    short = make_video(seconds=17, width=160, height=120, fps=10)
    long = make_video(seconds=60, width=160, height=120, fps=10)
    # countdown: rank 3 (the 60-s clip) plays first and is the first to be measured
    video_ids = await _ready_videos(harness, owner, [short, short, long])
    status, project = await harness.call(
        "POST",
        "/api/v1/rankings",
        auth,
        {
            "title": "긴 클립",
            "clip_seconds": 60,
            "source": {"video_ids": [str(v) for v in video_ids]},
            "options": {"intro_s": 0, "outro_s": 0},
        },
    )
    assert status == 201 and project["estimated_seconds"] == pytest.approx(94), project
    _, render = await harness.call("POST", f"/api/v1/rankings/{project['id']}/renders", auth)

    async def preparing() -> bool:
        return "preparing" in harness.stages(render["id"])

    await wait_for(preparing, timeout=120, interval=0.02, message="the render measures its clips")
    await _cancel(harness, owner, render["id"])
    await _canceled_and_released(harness, owner, auth, render["id"])
    stages = harness.stages(render["id"])
    # a cancel usually lands inside the loudness pass (test_compose proves a pass stops within one block); on a
    # fast idle machine it may land in the encode pass instead, which checks it every frame: never in publishing
    assert "preparing" in stages and "publishing" not in stages, stages


async def test_cancel_while_publishing_deletes_the_stored_output(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth, project = await _mixed_project(harness, tmp_path)
    stored: list[str] = []

    class CanceledWhileStoring(FileStore):
        """The store as the job sees it when the user cancels while the MP4 is being uploaded: the object is
        written, and the cancel has reached render (its job row says so) before the upload returns."""

        async def put_file(
            self, key: str, path: Path | str, *, content_type: str = "video/mp4"
        ) -> ObjectInfo:
            info = await super().put_file(key, path, content_type=content_type)
            stored.append(key)
            render_id = key.split("/")[1]
            await _cancel(harness, owner, render_id)

            async def flagged() -> bool:
                return (await _job(harness, render_id)).cancel_requested

            await wait_for(flagged, timeout=30, interval=0.05, message="render took the cancel")
            return info

    render, _ = await _render_storing_through(
        harness, auth, project, CanceledWhileStoring(harness.objects.root)
    )
    assert stored == [output_key(uuid.UUID(render["id"]))]  # the MP4 was stored, then deleted by the cancel
    await _canceled_and_released(harness, owner, auth, render["id"])
    assert "publishing" in harness.stages(render["id"])


async def test_progress_rises_as_the_imports_are_answered(harness: RenderHarness, tmp_path: Path) -> None:
    owner, auth = await harness.user()
    project, render = await _linked_render(harness, auth, "progress")
    asked = {
        e.url: e.request_id
        for e in await _outbox(harness, "video.import_requested.v1")
        if e.owner_id == owner
    }
    clip = make_video(seconds=3, directory=tmp_path)
    seen: list[float] = []
    for answered, item in enumerate([None, *project["items"][:2]]):
        if item is not None:
            await _answer_import(harness, owner, asked[item["source_url"]], clip)
        expected = round(10.0 * answered / 3, 2)  # fetching sources: 0-10 % while the imports are waited for

        async def reported(expected: float = expected) -> dict[str, Any] | None:
            _, now = await harness.call("GET", f"/api/v1/renders/{render['id']}", auth)
            at = float(now["progress"])
            return now if now["stage"] == "fetching sources" and abs(at - expected) < 0.01 else None

        now = await wait_for(reported, timeout=30, interval=0.1, message=f"{answered} of 3 imported")
        seen.append(float(now["progress"]))
    assert seen == sorted(seen) and seen[0] == 0 and seen[-1] > seen[1] > 0, seen
    await _cancel(harness, owner, render["id"])
    await _canceled_and_released(harness, owner, auth, render["id"])


async def test_a_title_no_font_can_draw_fails_the_render_missing_glyphs_naming_it(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth = await harness.user()
    video_ids = await _ready_videos(harness, owner, mixed_clips(tmp_path)[:3])
    status, project = await harness.call(
        "POST",
        "/api/v1/rankings",
        auth,
        {"title": "Top 3 \U0010fffd", "source": {"video_ids": [str(v) for v in video_ids]}},
    )
    assert status == 201, project
    _, render = await harness.call("POST", f"/api/v1/rankings/{project['id']}/renders", auth)
    job = await _fails_and_releases(harness, owner, render["id"], "render.missing_glyphs")
    assert job.error is not None and "U+10FFFD" in job.error["message"], job.error
    _, view = await harness.call("GET", f"/api/v1/renders/{render['id']}", auth)
    assert view["error"]["code"] == "render.missing_glyphs" and "U+10FFFD" in view["error"]["message"]
    assert view["download_url"] is None
    assert [o.key async for o in harness.objects.list(f"renders/{render['id']}/")] == []
    assert not {"composing", "encoding"} & set(harness.stages(render["id"]))  # checked before the one pass
