"""Issue 14 through render's real API and worker, the real billing service, Postgres and the filesystem store:
item 6, a retried render request (``Idempotency-Key``) is one render job and one credit hold, the same key on another
project is refused; item 4, a render that fails after its output was stored leaves no output behind; item 1, deleting
the video a render became deletes the render's output (its download link answers 410), deleting a source clip
deletes no render's output."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from common.events.ingest import VideoDeleted, VideoIngested
from common.jobs import get_job
from common.storage import ObjectInfo
from common.storage.fs import FileStore
from common.testing.waiting import wait_for
from render.jobs import output_key

from .conftest import RenderHarness
from .test_renders import _ended, _mixed_project, _render_storing_through

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("render_service")]


async def _linked_project(harness: RenderHarness, auth: dict[str, str], name: str) -> str:
    urls = [f"https://www.youtube.com/watch?v={name}{k}" for k in range(3)]
    status, project = await harness.call(
        "POST", "/api/v1/rankings", auth, {"title": name, "source": {"urls": urls}}
    )
    assert status == 201, project
    return str(project["id"])


async def test_a_retried_render_request_is_one_paid_render(harness: RenderHarness) -> None:
    owner, auth = await harness.user()
    project = await _linked_project(harness, auth, "idem")
    keyed = {**auth, "Idempotency-Key": "render-1"}
    first = await harness.call("POST", f"/api/v1/rankings/{project}/renders", keyed)
    assert first[0] == 202, first
    again = await harness.call("POST", f"/api/v1/rankings/{project}/renders", keyed)
    assert again == first  # the first answer, nothing run again
    other_project = await _linked_project(harness, auth, "other")
    status, problem = await harness.call("POST", f"/api/v1/rankings/{other_project}/renders", keyed)
    assert status == 409 and problem["code"] == "idempotency.key_reused"
    async with harness.stack.pool.acquire() as conn:
        jobs = await conn.fetchval("SELECT count(*) FROM jobs WHERE owner_id = $1 AND kind = 'render'", owner)
        holds = await conn.fetchval("SELECT count(*) FROM credit_holds WHERE account_id = $1", owner)
    assert (jobs, holds) == (1, 1)  # one render, charged once
    # the job names its project, as the job list shows it (issue 14 item 9)
    async with harness.stack.pool.acquire() as conn:
        job = await get_job(conn, uuid.UUID(first[1]["id"]))
    assert job is not None and job.subject == {"kind": "ranking", "id": project, "title": "idem"}
    await harness.stack.cancel(uuid.UUID(first[1]["id"]))


class _AnswerLostStore(FileStore):
    """The object store as a client sees it when the connection drops after the object was stored: the write
    happened, the caller gets an error."""

    stored: list[str] = []

    async def put_file(self, key: str, path: Path | str, *, content_type: str = "video/mp4") -> ObjectInfo:
        await super().put_file(key, path, content_type=content_type)
        self.stored.append(key)
        raise ConnectionResetError(f"the answer to storing {key} was lost")


async def test_a_render_failing_after_its_output_was_stored_leaves_no_output(
    harness: RenderHarness, tmp_path: Path
) -> None:
    _, auth, project = await _mixed_project(harness, tmp_path)
    render, job = await _render_storing_through(
        harness, auth, project, _AnswerLostStore(harness.objects.root)
    )
    assert job.status == "failed" and job.error is not None and job.error["code"] == "internal.error", job
    assert _AnswerLostStore.stored == [output_key(uuid.UUID(render["id"]))]  # it was written, then deleted
    assert not await harness.objects.exists(output_key(uuid.UUID(render["id"])))
    assert [o.key async for o in harness.objects.list(f"renders/{render['id']}/")] == []


async def _register(
    harness: RenderHarness, owner: uuid.UUID, render_id: str, video_id: uuid.UUID | None = None
) -> VideoIngested:
    """What ingest answers to ``render.completed.v1``: the output registered as the owner's video (source
    ``render``, ``correlation_id`` = the render id); the event published."""
    video_id = video_id or uuid.uuid4()
    event = VideoIngested(
        video_id=video_id,
        owner_id=owner,
        storage_key=f"originals/{video_id}/source.mp4",
        duration_s=8.0,
        source="render",
        producer="ingest",
        correlation_id=render_id,
    )
    await harness.stack.bus.publish(event)
    return event


async def _download(harness: RenderHarness, link: str) -> tuple[int, str]:
    """``GET`` a signed download link: its status and, for a problem, its code."""
    async with harness.http.get(harness.base + link) as r:
        body = await r.read()
        code = (await r.json(content_type=None))["code"] if r.content_type.endswith("json") else ""
    assert r.status != 200 or len(body) > 1000
    return r.status, code


async def _handled(harness: RenderHarness, *events: VideoDeleted | VideoIngested) -> None:
    """Wait until render's queue has handled every event (its inbox has them)."""

    async def all_in() -> bool:
        async with harness.stack.pool.acquire() as conn:
            n = await conn.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = 'render' AND event_id = ANY($1::uuid[])",
                [e.id for e in events],
            )
        return bool(n == len(events))

    await wait_for(all_in, timeout=20, interval=0.1, message="render handled the events")


async def test_deleting_the_video_a_render_became_deletes_its_output_but_a_source_clip_delete_does_not(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth, project = await _mixed_project(harness, tmp_path)
    renders = []
    for _ in range(2):  # two products of the same ranking
        status, render = await harness.call("POST", f"/api/v1/rankings/{project}/renders", auth)
        assert status == 202, render
        renders.append(render["id"])
    links = {}
    for render_id in renders:
        assert (await _ended(harness, render_id)).status == "succeeded"
        _, view = await harness.call("GET", f"/api/v1/renders/{render_id}", auth)
        links[render_id] = view["download_url"]
        assert await _download(harness, links[render_id]) == (200, "")
    first, second = renders
    video = (await _register(harness, owner, first)).video_id

    async def registered() -> bool:
        _, view = await harness.call("GET", f"/api/v1/renders/{first}", auth)
        return bool(view["video_id"] == str(video))

    await wait_for(registered, timeout=20, interval=0.1, message="the render knows its video")

    # the owner deletes a source clip of the ranking, then the video the first render became (delivered twice)
    _, ranking = await harness.call("GET", f"/api/v1/rankings/{project}", auth)
    source = VideoDeleted(
        video_id=uuid.UUID(ranking["items"][0]["video_id"]), owner_id=owner, producer="ingest"
    )
    deleted = VideoDeleted(video_id=video, owner_id=owner, producer="ingest")
    for event in (source, deleted, deleted):
        await harness.stack.bus.publish(event)
    await _handled(harness, source, deleted)

    assert await _download(harness, links[first]) == (410, "render.output_deleted")  # a link issued before
    assert not await harness.objects.exists(output_key(uuid.UUID(first)))
    _, view = await harness.call("GET", f"/api/v1/renders/{first}", auth)
    assert view["status"] == "succeeded" and view["download_url"] is None and view["output_deleted_at"], view
    # the source clip's delete touched no render: the other product still downloads
    assert await harness.objects.exists(output_key(uuid.UUID(second)))
    assert await _download(harness, links[second]) == (200, "")

    # the delete may reach render before ingest's registration of the same video does: the output goes then
    late = uuid.uuid4()
    gone = VideoDeleted(video_id=late, owner_id=owner, producer="ingest")
    await harness.stack.bus.publish(gone)
    await _handled(harness, gone)
    registration = await _register(harness, owner, second, late)
    await _handled(harness, registration)
    assert await _download(harness, links[second]) == (410, "render.output_deleted")
    assert [o.key async for o in harness.objects.list("renders/") if o.key.split("/")[1] in renders] == []
