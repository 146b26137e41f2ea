"""The render job through render's API and worker: real PyAV renders of generated clips, the credit saga with the
real billing service, sources waited for (and refused), cancel, a killed worker's render taken over, temp files."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from common import db, signing
from common.credit_holds import HoldStatus
from common.events.base import decode
from common.events.ingest import VideoIngested, VideoIngestFailed
from common.jobs import Job, get_job
from common.storage import ObjectStore
from common.testing.bus import unique_name
from common.testing.media import ffprobe, make_video, mixed_clips
from common.testing.waiting import wait_for
from render import store
from render.jobs import sweep_scratch

from .conftest import RenderHarness

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("render_service")]
CLIP_S = 2.0
INTRO_S, OUTRO_S = 1.0, 1.0


async def _project(
    harness: RenderHarness, auth: dict[str, str], video_ids: list[uuid.UUID]
) -> dict[str, Any]:
    status, project = await harness.call(
        "POST",
        "/api/v1/rankings",
        auth,
        {
            "title": "동물 Top 4",
            "clip_seconds": CLIP_S,
            "source": {"video_ids": [str(v) for v in video_ids]},
            "options": {"intro_s": INTRO_S, "outro_s": OUTRO_S},
        },
    )
    assert status == 201, project
    return project


async def _ready_videos(harness: RenderHarness, owner: uuid.UUID, paths: list[Path]) -> list[uuid.UUID]:
    ids = [await harness.ingest_video(owner, p, title=f"클립 {k + 1}") for k, p in enumerate(paths)]

    async def known() -> bool:
        async with harness.stack.pool.acquire() as conn:
            return len(await store.get_videos(conn, video_ids=ids)) == len(ids)

    await wait_for(known, timeout=20, interval=0.1, message="render's read model has the videos")
    return ids


async def _mixed_project(harness: RenderHarness, tmp_path: Path) -> tuple[uuid.UUID, dict[str, str], str]:
    """A new user, and their project of three of the mixed generated clips: owner, auth header, project id."""
    owner, auth = await harness.user()
    project = await _project(harness, auth, await _ready_videos(harness, owner, mixed_clips(tmp_path)[:3]))
    return owner, auth, str(project["id"])


async def _render_storing_through(
    harness: RenderHarness, auth: dict[str, str], project_id: str, objects: ObjectStore
) -> tuple[dict[str, Any], Job]:
    """A render of the project whose job stores its output through ``objects`` (the store as the job sees it in
    some mishap); the render as the API answered and its ended job."""
    jobs = harness.worker.jobs
    assert jobs is not None
    jobs.objects = objects
    try:
        _, render = await harness.call("POST", f"/api/v1/rankings/{project_id}/renders", auth)
        return render, await _ended(harness, render["id"])
    finally:
        jobs.objects = harness.objects


async def _ended(harness: RenderHarness, render_id: str, timeout: float = 240) -> Job:
    async def ended() -> Job | None:
        async with harness.stack.pool.acquire() as conn:
            job = await get_job(conn, uuid.UUID(render_id))
        return job if job is not None and job.terminal else None

    job = await wait_for(ended, timeout=timeout, interval=0.2, message=f"render {render_id} ends")
    assert job is not None
    return job


async def _outbox(harness: RenderHarness, routing_key: str) -> list[Any]:
    async with harness.stack.pool.acquire() as conn:
        rows = await conn.fetch("SELECT body FROM outbox WHERE routing_key = $1 ORDER BY seq", routing_key)
    return [decode(bytes(r["body"])) for r in rows]


async def _linked_render(
    harness: RenderHarness, auth: dict[str, str], name: str, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A project of three links (imports asked of ingest) and a render of it: both as the API answered."""
    urls = [f"https://www.youtube.com/watch?v={name}{k}" for k in range(3)]
    status, project = await harness.call(
        "POST", "/api/v1/rankings", auth, {"title": name, **fields, "source": {"urls": urls}}
    )
    assert status == 201, project
    status, render = await harness.call("POST", f"/api/v1/rankings/{project['id']}/renders", auth)
    assert status == 202, render
    return project, render


async def _answer_import(
    harness: RenderHarness, owner: uuid.UUID, request_id: uuid.UUID, clip: Path, **credit: str
) -> None:
    """What ingest does with an import it was asked for: the original in storage and ``video.ingested.v1``
    (``credit``: the ``uploader`` and ``platform`` ingest read from the source)."""
    video_id = uuid.uuid4()
    await harness.objects.put_file(f"originals/{video_id}/source.mp4", clip)
    await harness.stack.bus.publish(
        VideoIngested(
            video_id=video_id,
            owner_id=owner,
            storage_key=f"originals/{video_id}/source.mp4",
            duration_s=3.0,
            source="import",
            correlation_id=request_id,
            **credit,
        )
    )


async def _fails_and_releases(harness: RenderHarness, owner: uuid.UUID, render_id: str, code: str) -> Job:
    """The render fails with ``code``; its hold is released in full, nothing captured, no scratch left."""
    job = await _ended(harness, render_id, timeout=120)
    assert job.status == "failed" and job.error is not None and job.error["code"] == code, job.error
    hold = await harness.stack.hold_settles(uuid.UUID(render_id), HoldStatus.RELEASED)
    assert await harness.stack.captures(hold.hold_ref) == []
    await harness.stack.check_books(owner, balance=harness.stack.grant)
    failed = [e for e in await _outbox(harness, "render.failed.v1") if str(e.render_id) == render_id]
    assert [e.code for e in failed] == [code]
    assert _scratch_left(harness) == []
    return job


async def _imports_answered(
    harness: RenderHarness, owner: uuid.UUID, clips: list[Path], credits: list[dict[str, str]] | None = None
) -> None:
    """Every import the owner's project asked for answered, in rank order, with ``clips`` (and ``credits``)."""
    asked = [e for e in await _outbox(harness, "video.import_requested.v1") if e.owner_id == owner]
    credits = credits or [{} for _ in clips]
    for e, clip, credit in zip(sorted(asked, key=lambda e: e.url), clips, credits, strict=True):
        await _answer_import(harness, owner, e.request_id, clip, **credit)


def _scratch_left(harness: RenderHarness) -> list[str]:
    root = harness.settings.scratch_dir
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


async def test_a_render_of_generated_clips_becomes_a_vertical_short_and_is_paid_for_once(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth = await harness.user()
    video_ids = await _ready_videos(harness, owner, mixed_clips(tmp_path))
    project = await _project(harness, auth, video_ids)
    expected = INTRO_S + 4 * CLIP_S + OUTRO_S
    assert project["estimated_seconds"] == pytest.approx(expected)
    status, render = await harness.call("POST", f"/api/v1/rankings/{project['id']}/renders", auth)
    assert status == 202, render
    assert (render["status"], render["credits"]) == ("queued", 10)  # 1 credit a started second

    scratch: set[str] = set()  # every file seen in the render's scratch directory while it ran

    async def done() -> dict[str, Any] | None:
        scratch.update(p.name for p in harness.settings.scratch_dir.glob(f"{render['id']}.*/*"))
        _, now = await harness.call("GET", f"/api/v1/renders/{render['id']}", auth)
        return now if now["status"] in ("succeeded", "failed", "canceled") else None

    final = await wait_for(done, timeout=240, interval=0.2, message="the render ends")
    assert final is not None and final["status"] == "succeeded", final
    # the sources fetched and the one output: no intermediate file (the encode takes seconds, so it was seen)
    assert "short.mp4" in scratch and scratch <= {"short.mp4", *(f"clip-{k}" for k in range(1, 5))}, scratch
    # the last snapshot ("done") is a status change: it comes through the outbox, maybe after the row was read
    await wait_for(lambda: harness.stages(render["id"])[-1:] == ["done"], timeout=30, interval=0.1)
    stages = harness.stages(render["id"])
    work = [
        s for s in stages if s in ("fetching sources", "preparing", "composing", "encoding", "publishing")
    ]
    assert work == ["fetching sources", "preparing", "composing", "encoding", "publishing"], stages
    assert final["progress"] == 100 and final["duration_s"] == pytest.approx(expected)
    # the file: a 1080x1920 H.264/AAC MP4 of the expected length, downloadable by its signed link only
    async with harness.http.get(harness.base + final["download_url"]) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"
        (tmp_path / "short.mp4").write_bytes(await r.read())
    info = ffprobe(tmp_path / "short.mp4")
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1080, 1920)
    assert abs(float(info["format"]["duration"]) - expected) < 0.1
    assert any(s["codec_type"] == "audio" for s in info["streams"])
    forged = final["download_url"].replace("sig=", "sig=f")
    async with harness.http.get(harness.base + forged) as r:
        assert r.status == 403 and (await r.json())["code"] == "render.link_invalid"
    # a link signed right but past its expiry is refused too
    expired = int(time.time()) - 1
    sig = signing.mac(harness.settings.download_secret, expired, f"render:{render['id']}")
    async with harness.http.get(
        f"{harness.base}/api/v1/renders/{render['id']}/download?expires={expired}&sig={sig}"
    ) as r:
        assert r.status == 403 and (await r.json())["code"] == "render.link_invalid"
    # credits: the actual seconds captured, once; the books balance
    hold = await harness.stack.hold_settles(uuid.UUID(render["id"]), HoldStatus.CAPTURED)
    assert await harness.stack.captures(hold.hold_ref) == [-10]
    await harness.stack.check_books(owner, balance=harness.stack.grant - 10)
    # announced once; ingest's registration of it comes back as the render's video
    completed = [e for e in await _outbox(harness, "render.completed.v1") if str(e.render_id) == render["id"]]
    assert len(completed) == 1 and completed[0].storage_key == f"renders/{render['id']}/short.mp4"
    assert "#1 클립 1" in completed[0].description
    registered = uuid.uuid4()
    await harness.stack.bus.publish(
        VideoIngested(
            video_id=registered,
            owner_id=owner,
            storage_key=f"originals/{registered}/source.mp4",
            duration_s=expected,
            source="render",
            correlation_id=render["id"],
        )
    )

    async def has_video() -> bool:
        _, now = await harness.call("GET", f"/api/v1/renders/{render['id']}", auth)
        return bool(now["video_id"] == str(registered))

    await wait_for(has_video, timeout=20, interval=0.2, message="the render knows its video")
    _, listed = await harness.call("GET", f"/api/v1/rankings/{project['id']}/renders", auth)
    assert [r["id"] for r in listed["items"]] == [render["id"]]
    _, stranger = await harness.user()
    assert (await harness.call("GET", f"/api/v1/renders/{render['id']}", stranger))[0] == 404
    assert _scratch_left(harness) == []


async def test_clips_shorter_than_asked_capture_the_seconds_rendered_and_credit_what_ingest_found(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth = await harness.user()
    project, render = await _linked_render(harness, auth, "shorter", clip_seconds=4)
    held = project["estimated_seconds"]  # 1.5 + 3 x 4 + 3.0: the clips' lengths are unknown until imported
    assert (held, render["credits"]) == (16.5, 17)
    clip = make_video(seconds=2, width=320, height=240, directory=tmp_path)
    credits = [{"uploader": f"Creator {k}", "platform": "Vimeo"} for k in range(2)] + [{}]
    await _imports_answered(harness, owner, [clip] * 3, credits)
    job = await _ended(harness, render["id"])
    assert job.status == "succeeded", job.error
    # used whole (2 s each): 1.5 + 3 x 2 + 3.0 = 10.5 s rendered, 11 credits captured, the other 6 released
    _, final = await harness.call("GET", f"/api/v1/renders/{render['id']}", auth)
    assert final["duration_s"] == pytest.approx(10.5) and job.result["credits_used"] == 11
    hold = await harness.stack.hold_settles(uuid.UUID(render["id"]), HoldStatus.CAPTURED)
    assert hold.amount == 17 and await harness.stack.captures(hold.hold_ref) == [-11]
    await harness.stack.check_books(owner, balance=harness.stack.grant - 11)
    # attribution: what ingest read from each source, where it named something; else the URL's platform
    _, credited = await harness.call("GET", f"/api/v1/rankings/{project['id']}", auth)
    assert [(i["uploader"], i["platform"]) for i in credited["items"]] == [
        ("Creator 0", "Vimeo"),
        ("Creator 1", "Vimeo"),
        ("", "YouTube"),
    ]
    completed = [e for e in await _outbox(harness, "render.completed.v1") if str(e.render_id) == render["id"]]
    assert completed[0].description.splitlines() == [
        f"#1 @Creator 0 · Vimeo · {project['items'][0]['source_url']}",
        f"#2 @Creator 1 · Vimeo · {project['items'][1]['source_url']}",
        f"#3 YouTube · {project['items'][2]['source_url']}",
    ]
    assert _scratch_left(harness) == []


async def test_an_unaffordable_render_fails_credits_insufficient_without_running(
    harness: RenderHarness,
) -> None:
    owner, auth = await harness.user()
    project, render = await _linked_render(harness, auth, "long", clip_seconds=60)
    assert project["estimated_seconds"] > harness.stack.grant
    job = await _ended(harness, render["id"], timeout=60)
    assert job.status == "failed" and job.error is not None and job.error["code"] == "credits.insufficient"
    assert uuid.UUID(render["id"]) not in harness.worker.render_runs  # it never ran
    await harness.stack.check_books(owner, balance=harness.stack.grant)


async def test_imports_are_waited_for_and_a_failed_one_fails_the_render_source_unavailable(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth = await harness.user()
    project, render = await _linked_render(harness, auth, "links")
    urls = [i["source_url"] for i in project["items"]]
    asked = [e for e in await _outbox(harness, "video.import_requested.v1") if e.owner_id == owner]
    assert sorted(e.url for e in asked) == urls and all(e.correlation_id == e.request_id for e in asked)
    # ingest answers the first import with a video, the second with a failure
    by_url = {e.url: e.request_id for e in asked}
    await _answer_import(harness, owner, by_url[urls[0]], make_video(seconds=3, directory=tmp_path))

    async def first_ready() -> bool:
        _, now = await harness.call("GET", f"/api/v1/rankings/{project['id']}", auth)
        return bool(now["items"][0]["status"] == "ready")

    await wait_for(first_ready, timeout=20, interval=0.2, message="the first import is answered")
    _, waiting = await harness.call("GET", f"/api/v1/renders/{render['id']}", auth)
    assert waiting["status"] in ("queued", "running")  # it waits for the other two
    await harness.stack.bus.publish(
        VideoIngestFailed(
            owner_id=owner,
            source_url=urls[1],
            code="source.unavailable",
            message="the platform says this video is private",
            correlation_id=by_url[urls[1]],
        )
    )
    job = await _fails_and_releases(harness, owner, render["id"], "source.unavailable")
    assert job.error is not None and "#2" in job.error["message"] and "private" in job.error["message"]
    _, failed_project = await harness.call("GET", f"/api/v1/rankings/{project['id']}", auth)
    assert failed_project["items"][1]["error"]["message"] == "the platform says this video is private"


async def test_a_truncated_source_fails_the_render_media_unreadable_and_releases_the_hold(
    harness: RenderHarness, tmp_path: Path, truncated_mp4: Path
) -> None:
    owner, auth = await harness.user()
    _, render = await _linked_render(harness, auth, "truncated", clip_seconds=2)
    good = make_video(seconds=3, directory=tmp_path)
    await _imports_answered(harness, owner, [good, truncated_mp4, good])
    job = await _fails_and_releases(harness, owner, render["id"], "media.unreadable")
    assert job.error is not None and job.error["message"].startswith("rank "), job.error  # which clip it is


async def test_a_clip_shorter_than_asked_with_the_refuse_option_fails_render_clip_too_short(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth = await harness.user()
    project, render = await _linked_render(
        harness, auth, "short", clip_seconds=4, options={"short_clips": "refuse"}
    )
    assert project["options"]["short_clips"] == "refuse"
    assert [(i["start_s"], i["end_s"]) for i in project["items"]] == [
        (0, 4)
    ] * 3  # lengths unknown until imported
    long, short = make_video(seconds=5, directory=tmp_path), make_video(seconds=1.5, directory=tmp_path)
    await _imports_answered(harness, owner, [long, short, long])
    job = await _fails_and_releases(harness, owner, render["id"], "render.clip_too_short")
    assert job.error is not None and "s long, 4.00 s were asked" in job.error["message"], job.error


async def test_cancel_while_waiting_for_sources_ends_it_canceled_and_charges_nothing(
    harness: RenderHarness,
) -> None:
    owner, auth = await harness.user()
    _, render = await _linked_render(harness, auth, "never")

    async def waiting() -> bool:
        _, now = await harness.call("GET", f"/api/v1/renders/{render['id']}", auth)
        return bool(now["stage"] == "fetching sources")

    await wait_for(waiting, timeout=30, interval=0.1, message="the render waits for its sources")
    await harness.stack.cancel(uuid.UUID(render["id"]))
    job = await _ended(harness, render["id"], timeout=30)
    assert job.status == "canceled" and job.error is not None and job.error["code"] == "job.canceled"
    await harness.stack.hold_settles(uuid.UUID(render["id"]), HoldStatus.RELEASED)
    await harness.stack.check_books(owner, balance=harness.stack.grant)
    assert _scratch_left(harness) == []


async def test_a_killed_workers_render_is_taken_over_and_produces_exactly_one_output(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth = await harness.user()
    video_ids = await _ready_videos(harness, owner, mixed_clips(tmp_path)[:3])
    project = await _project(harness, auth, video_ids)
    stack = harness.stack
    await stack.pause_runner()
    doomed_pool = await db.create_pool(stack.database_url, schema=stack.schema, min_size=1, max_size=4)
    doomed = harness.worker.runner(doomed_pool, stack.bus, lease_s=1, worker_id=unique_name("doomed"))
    try:
        await doomed.start()
        _, render = await harness.call("POST", f"/api/v1/rankings/{project['id']}/renders", auth)
        render_id = uuid.UUID(render["id"])

        async def encoding() -> bool:
            async with stack.pool.acquire() as conn:
                job = await get_job(conn, render_id)
            return job is not None and job.stage == "encoding"

        await wait_for(encoding, timeout=120, interval=0.05, message="the doomed worker encodes")
        doomed_pool.terminate()  # as SIGKILL would: nothing this worker holds reaches the database again
        await doomed.stop(timeout_s=30)
    finally:
        doomed_pool.terminate()
        await stack.resume_runner()
    job = await _ended(harness, render["id"])
    assert job.status == "succeeded", job.error
    assert harness.worker.render_runs[render_id] == 2
    completed = [e for e in await _outbox(harness, "render.completed.v1") if e.render_id == render_id]
    assert len(completed) == 1
    keys = [o.key async for o in harness.objects.list(f"renders/{render_id}/")]
    assert keys == [f"renders/{render_id}/short.mp4"]
    hold = await stack.hold_settles(render_id, HoldStatus.CAPTURED)
    assert len(await stack.captures(hold.hold_ref)) == 1
    assert _scratch_left(harness) == []


async def test_the_sweep_removes_scratch_directories_of_ended_or_unknown_renders(
    harness: RenderHarness,
) -> None:
    owner, auth = await harness.user()
    _, render = await _linked_render(harness, auth, "sweep")
    root = harness.settings.scratch_dir
    live = root / f"{render['id']}.live"
    orphans = [root / f"{uuid.uuid4()}.gone", root / "not-a-render"]
    for d in [live, *orphans]:
        d.mkdir(parents=True)
        (d / "clip-1").write_bytes(b"x")
    removed = await sweep_scratch(harness.stack.pool, root, running=list, max_age_s=3600)
    assert removed == 2 and _scratch_left(harness) == [live.name]  # its render still waits for its sources
    await harness.stack.cancel(uuid.UUID(render["id"]))
    await _ended(harness, render["id"], timeout=30)
    await sweep_scratch(harness.stack.pool, root, running=list, max_age_s=3600)
    assert _scratch_left(harness) == []
    await harness.stack.check_books(owner, balance=harness.stack.grant)
