"""Workers killed (SIGKILL) mid-job: a captions worker mid-transcription, a render worker mid-encode; the restarted
worker takes the job over and it finishes once.

It runs on the session's stack (captions and render lease jobs for 6 s there): the whole process group of the
worker is killed and the restarted worker must be ready before the test goes on, so the other journeys are not
disturbed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from common.bus.rabbit import RabbitBus
from common.events.base import Event
from common.events.captions import CaptionsCompleted
from common.events.jobs import JobProgress
from common.events.render import RenderCompleted
from common.testing.bus import delete_queues
from common.testing.speech import make_speech

from .stack import Stack
from .test_captions import LONG_SPEECH, _job_done, _settled_at, _stage, _upload_ready
from .test_render import _render_ends, _scratch, _user_with_project
from .test_render import _settled_at as _render_settled_at
from .test_user_journeys import User, poll, register

pytestmark = pytest.mark.xdist_group("e2e")


@pytest.fixture
def takeover_stack(e2e_stack: Stack) -> Stack:
    """The session's platform (its captions and render workers lease jobs for 6 s, so a dead worker's job is free
    soon). A second stack beside it took the suite past Postgres's 100 connections; killing a worker's whole
    process group and waiting for its restart to be ready keeps the shared stack whole."""
    return e2e_stack


@contextlib.asynccontextmanager
async def watching(stack: Stack, *events: type[Event]) -> AsyncIterator[list[Any]]:
    """Every one of ``events`` and every job status change on the stack's bus, as a test's own consumer sees them."""
    seen: list[Any] = []

    async def note(event: Any, delivery: Any) -> None:
        seen.append(event)

    bus = RabbitBus(
        url=stack.env["AMQP_URL"],
        service="takeover-observer",
        exchange=stack.env["BUS_EXCHANGE"],
        dlx=stack.env["BUS_DLX"],
        retry_delays_ms=(200,),
    )
    await bus.start()
    try:
        await bus.subscribe(f"observer-{uuid.uuid4().hex[:8]}", [*events, JobProgress], note)
        yield seen
    finally:
        await bus.close()
        await delete_queues(stack.env["AMQP_URL"], bus.declared_queues)


async def test_a_killed_worker_s_job_is_taken_over_and_finishes_once(
    takeover_stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with watching(takeover_stack, CaptionsCompleted) as seen:
        await _kill_mid_transcription_and_finish(takeover_stack, http, seen)


async def _kill_mid_transcription_and_finish(
    stack: Stack, http: aiohttp.ClientSession, seen: list[Any]
) -> None:
    user = await register(http, stack.gateway_url)
    sample = make_speech(LONG_SPEECH)
    vid = await _upload_ready(http, user, sample)
    _, before = await user.get("/api/v1/billing/balance")
    status, answer = await user.post(f"/api/v1/videos/{vid}/captions", {"language": "en"})
    assert status == 202, answer
    job_id = answer["job"]["id"]

    await _stage(user, job_id, "transcribing")
    stack.kill("captions:worker")
    stack.start("captions", "worker")
    await stack.wait_ready(["captions:worker"])

    job = await _job_done(user, job_id)
    assert job["status"] == "succeeded", (job, stack.procs["captions:worker"].tail())
    _, listing = await user.get(f"/api/v1/videos/{vid}/captions")
    # one track at its first version: the restarted worker's run is the only one that stored anything
    assert [(t["language"], t["version"]) for t in listing["items"]] == [("en", 1)]
    minutes = -(-sample.duration_s // 60)
    await _settled_at(user, before["balance"] - 2 * minutes, what="one capture of the held credits")
    # the job was started twice (the killed worker's attempt, then the takeover) and finished once: one
    # success and one captions.completed (distinct event ids; a redelivered event keeps its id)
    mine = [e for e in seen if isinstance(e, JobProgress) and str(e.job_id) == job_id]
    stages = [(e.status, e.stage) for e in mine]
    assert len({e.id for e in mine if e.stage == "extracting audio"}) >= 2, stages
    assert len({e.id for e in mine if e.status == "succeeded"}) == 1, stages
    completed = {e.id for e in seen if isinstance(e, CaptionsCompleted) and str(e.caption_job_id) == job_id}
    assert len(completed) == 1, completed


async def test_a_killed_render_worker_s_render_is_taken_over_and_produces_exactly_one_output(
    takeover_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    async with watching(takeover_stack, RenderCompleted) as seen:
        await _kill_mid_encode_and_finish(takeover_stack, http, tmp_path, seen)


async def _videos(user: User) -> list[dict[str, Any]]:
    status, page = await user.get("/api/v1/videos?limit=100")
    assert status == 200, page
    items: list[dict[str, Any]] = page["items"]
    return items


async def _kill_mid_encode_and_finish(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path, seen: list[Any]
) -> None:
    user, before, project = await _user_with_project(http, stack, tmp_path)
    uploads = await _videos(user)
    status, render = await user.post(f"/api/v1/rankings/{project['id']}/renders", {})
    assert status == 202, render
    render_id = render["id"]

    async def composing() -> bool:
        status, now = await user.get(f"/api/v1/renders/{render_id}")
        assert now["status"] not in ("succeeded", "failed", "canceled"), now  # killed before it could end
        return status == 200 and now["stage"] in ("composing", "encoding")

    await poll(composing, timeout=300, what="the render composes", interval=1.0)
    stack.kill("render:worker")
    stack.start("render", "worker")
    await stack.wait_ready(["render:worker"])

    done = await _render_ends(user, render_id, timeout=600)
    assert done["status"] == "succeeded", (done, stack.procs["render:worker"].tail())
    # started twice (the killed worker's attempt, then the takeover), announced once, paid once
    mine = [e for e in seen if isinstance(e, JobProgress) and str(e.job_id) == render_id]
    assert len({e.id for e in mine if e.stage == "preparing"}) >= 2, [(e.status, e.stage) for e in mine]
    completed = {e.id for e in seen if isinstance(e, RenderCompleted) and str(e.render_id) == render_id}
    assert len(completed) == 1, completed
    await _render_settled_at(user, before - done["credits"])

    async def registered() -> Any:
        status, r = await user.get(f"/api/v1/renders/{render_id}")
        return r["video_id"] if status == 200 and r["video_id"] else None

    vid = await poll(registered, timeout=120, what="the render becomes a video", interval=1.0)
    videos = await _videos(user)
    assert sorted(v["id"] for v in videos) == sorted([*(v["id"] for v in uploads), vid])
    assert [v["source"] for v in videos if v["id"] == vid] == ["render"]
    assert _scratch(stack) == []  # the takeover removed the killed worker's scratch directory
