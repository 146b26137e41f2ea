"""GET /api/v1/analyses?video_id= through the real analysis API and Postgres: a video's page finds that video's
analyses however many others its owner has, page by page, never another user's, and a malformed id is a 422."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from analysis import store
from common.events.ingest import VideoIngested
from common.testing.auth import TokenFactory

from .service import Service

pytestmark = pytest.mark.xdist_group("analysis_service")


async def _video(svc: Service, owner: uuid.UUID) -> uuid.UUID:
    """A video of ``owner``'s, as the service records ``video.ingested``."""
    video_id = uuid.uuid4()
    announced = VideoIngested(
        video_id=video_id,
        owner_id=owner,
        storage_key=f"originals/{video_id}/source.mp4",
        producer="ingest",
        duration_s=30.0,
    )
    async with svc.pool.acquire() as conn:
        await store.upsert_video(conn, announced)
    return video_id


async def _analyse(svc: Service, video_id: uuid.UUID, auth: dict[str, str]) -> str:
    """Ask for an analysis of ``video_id`` (queued until billing funds it: enough to be listed); its id."""
    async with svc.api.post("/api/v1/analyses", json={"video_id": str(video_id)}, headers=auth) as r:
        body = await r.json()
        assert r.status == 202, body
    return str(body["analysis"]["id"])


async def _list(svc: Service, query: str, auth: dict[str, str]) -> tuple[int, Any]:
    async with svc.api.get(f"/api/v1/analyses?{query}", headers=auth) as r:
        return r.status, await r.json()


async def test_a_videos_analyses_are_listed_by_its_id_for_its_owner_only(
    analysis_service: Callable[..., Awaitable[Service]], token_factory: TokenFactory
) -> None:
    svc = await analysis_service()
    other = uuid.uuid4()
    other_auth = {"Authorization": f"Bearer {token_factory.token(other)}"}
    mine, elsewhere, theirs = (
        await _video(svc, svc.user),
        await _video(svc, svc.user),
        await _video(svc, other),
    )
    first = await _analyse(svc, mine, svc.auth)
    for _ in range(
        3
    ):  # the owner's other analyses, newer than the first: a list of 1 would miss it unfiltered
        await _analyse(svc, elsewhere, svc.auth)
    second = await _analyse(svc, mine, svc.auth)
    their = await _analyse(svc, theirs, other_auth)

    status, page = await _list(svc, "limit=1", svc.auth)
    assert status == 200 and [a["id"] for a in page["items"]] == [second], page
    status, page = await _list(svc, "limit=2", svc.auth)
    assert status == 200 and first not in [a["id"] for a in page["items"]], (
        "unfiltered, the first is further down"
    )

    # the video's analyses, newest first, a page at a time: the cursor keeps the filter's place
    status, page = await _list(svc, f"video_id={mine}&limit=1", svc.auth)
    assert status == 200 and [a["id"] for a in page["items"]] == [second] and page["next_cursor"], page
    status, rest = await _list(svc, f"video_id={mine}&limit=1&cursor={page['next_cursor']}", svc.auth)
    assert status == 200 and [a["id"] for a in rest["items"]] == [first] and rest["next_cursor"] is None, rest
    assert {a["video_id"] for a in rest["items"]} == {str(mine)}

    # another user's video lists nothing of theirs, either way round
    status, page = await _list(svc, f"video_id={theirs}", svc.auth)
    assert (status, page["items"]) == (200, []), page
    status, page = await _list(svc, f"video_id={mine}", other_auth)
    assert (status, page["items"]) == (200, []), page
    status, page = await _list(svc, f"video_id={theirs}", other_auth)
    assert [a["id"] for a in page["items"]] == [their], page

    status, problem = await _list(svc, "video_id=not-a-uuid", svc.auth)
    assert status == 422 and problem["code"] == "validation.invalid", problem
    assert "video_id" in problem["detail"], problem
