"""Ranking projects through render's API: from a stored search (top N by views, by likes, with a snapshot of the
counts), from URLs (imports asked of ingest), from the owner's videos; edits validated; the Shorts warning."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from common.testing.media import make_video
from render.layout import Target, layout_for

from .conftest import RenderHarness

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("render_service")]
YT = "ytsearch5_cat_fails.json"
TIKTOK = "tiktok_tag_catfails.json"


async def _from_search(
    harness: RenderHarness, auth: dict[str, str], search_id: uuid.UUID, **fields: Any
) -> Any:
    status, project = await harness.call(
        "POST",
        "/api/v1/rankings",
        auth,
        {"title": "Top 3", **fields, "source": {"search_id": str(search_id)}},
    )
    assert status == 201, project
    return project


async def test_a_project_from_a_stored_search_ranks_by_views(harness: RenderHarness) -> None:
    owner, auth = await harness.user()
    search_id = harness.ingest.store_search(owner, YT)
    project = await _from_search(harness, auth, search_id, n=3, order_by="views")
    items = project["items"]
    assert [i["view_count"] for i in items] == [12450987, 2501337, 1843210]
    assert [i["rank"] for i in items] == [1, 2, 3]
    assert items[0]["uploader"] == "FunnyPaws" and items[0]["platform"] == "YouTube"
    assert all(i["counted_at"] == "2026-12-01T09:30:00Z" for i in items)  # when ingest read the counts
    assert all(i["status"] == "pending" and i["video_id"] is None for i in items)  # imports asked of ingest
    assert project["estimated_seconds"] == pytest.approx(1.5 + 3 * 8 + 3.0)
    # the caller's projects, and nobody else's
    status, page = await harness.call("GET", "/api/v1/rankings", auth)
    assert status == 200 and [p["id"] for p in page["items"]] == [project["id"]]
    _, stranger = await harness.user()
    assert (await harness.call("GET", f"/api/v1/rankings/{project['id']}", stranger))[0] == 404
    assert (await harness.call("GET", "/api/v1/rankings", stranger))[1]["items"] == []
    # another user's search is not found
    status, problem = await harness.call(
        "POST", "/api/v1/rankings", stranger, {"title": "x", "source": {"search_id": str(search_id)}}
    )
    assert (status, problem["code"]) == (404, "search.not_found")


async def test_a_project_from_a_stored_search_ranks_by_likes(harness: RenderHarness) -> None:
    owner, auth = await harness.user()
    search_id = harness.ingest.store_search(owner, YT, TIKTOK)
    project = await _from_search(harness, auth, search_id, n=3, order_by="likes")
    # the two results with like counts first; results without any come after, in the platform's order
    assert [(i["uploader"], i["like_count"]) for i in project["items"]] == [
        ("catlady", 81000),
        ("zoomies", 45000),
        ("Pet Central", None),
    ]
    assert project["items"][0]["platform"] == "TikTok"
    status, problem = await harness.call(
        "POST", "/api/v1/rankings", auth, {"title": "x", "n": 10, "source": {"search_id": str(search_id)}}
    )
    assert (status, problem["code"]) == (422, "ranking.too_few_results")


async def test_a_project_from_a_stored_search_ranks_by_comments_or_keeps_the_platforms_order(
    harness: RenderHarness,
) -> None:
    owner, auth = await harness.user()
    search_id = harness.ingest.store_search(owner, YT, TIKTOK)
    by_comments = await _from_search(harness, auth, search_id, n=3, order_by="comments")
    assert by_comments["order_by"] == "comments"
    # the two results with comment counts first; results without any come after, in the platform's order
    assert [(i["uploader"], i["comment_count"]) for i in by_comments["items"]] == [
        ("zoomies", 1200),
        ("catlady", 950),
        ("Pet Central", None),
    ]
    assert [i["rank"] for i in by_comments["items"]] == [1, 2, 3]
    # manual: the search's own order, counts kept as a snapshot; the owner ranks them by hand (PATCH)
    manual = await _from_search(harness, auth, search_id, n=3, order_by="manual")
    assert manual["order_by"] == "manual"
    items = manual["items"]
    assert [(i["uploader"], i["view_count"]) for i in items] == [
        ("Pet Central", 1843210),
        ("FunnyPaws", 12450987),
        ("meowmeow", 96231),
    ]
    assert all(i["counted_at"] == "2026-12-01T09:30:00Z" for i in items)
    reorder = {"items": [{"id": items[1]["id"]}, {"id": items[2]["id"]}, {"id": items[0]["id"]}]}
    status, ranked = await harness.call("PATCH", f"/api/v1/rankings/{manual['id']}", auth, reorder)
    assert status == 200, ranked
    assert [(i["rank"], i["uploader"]) for i in ranked["items"]] == [
        (1, "FunnyPaws"),
        (2, "meowmeow"),
        (3, "Pet Central"),
    ]
    assert ranked["order_by"] == "manual" and ranked["items"][0]["view_count"] == 12450987


async def test_a_long_short_of_the_owners_own_uploads_is_not_warned_about(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth = await harness.user()
    clip = make_video(seconds=21, width=160, height=120, fps=10, directory=tmp_path)
    video_ids = [await harness.ingest_video(owner, clip, title=f"내 영상 {k}") for k in range(3)]
    status, project = await harness.call(
        "POST",
        "/api/v1/rankings",
        auth,
        {"title": "내 클립", "clip_seconds": 21, "source": {"video_ids": [str(v) for v in video_ids]}},
    )
    assert status == 201, project
    assert project["target"] == "shorts" and project["estimated_seconds"] > 60  # 1.5 + 3 x 21 + 3.0
    assert project["warnings"] == []  # every clip is the owner's own upload: no other creator's claim
    # one clip from another creator (a link) over 60 s: the warning comes
    items = [{"id": i["id"]} for i in project["items"][:2]] + [{"url": "https://www.youtube.com/watch?v=x"}]
    status, mixed = await harness.call("PATCH", f"/api/v1/rankings/{project['id']}", auth, {"items": items})
    assert status == 200 and mixed["estimated_seconds"] > 60, mixed
    assert [w["code"] for w in mixed["warnings"]] == ["ranking.over_shorts_limit"]


async def test_edits_are_validated_and_a_long_short_with_others_clips_is_warned_about(
    harness: RenderHarness, tmp_path: Path
) -> None:
    owner, auth = await harness.user()
    search_id = harness.ingest.store_search(owner, YT)
    project = await _from_search(harness, auth, search_id, n=3, clip_seconds=20)
    assert [w["code"] for w in project["warnings"]] == [
        "ranking.over_shorts_limit"
    ]  # 64.5 s of others' clips
    ids = [i["id"] for i in project["items"]]
    path = f"/api/v1/rankings/{project['id']}"
    # reorder, trim, retitle: the warning goes once the short is under 60 s
    edit = {
        "base_version": 1,
        "items": [
            {"id": ids[2], "title": "세 번째가 1위", "start_s": 2, "end_s": 12},
            {"id": ids[0], "end_s": 10, "caption": "원래 1위"},
            {"id": ids[1], "end_s": 10},
        ],
    }
    status, edited = await harness.call("PATCH", path, auth, edit)
    assert status == 200, edited
    assert [i["id"] for i in edited["items"]] == [ids[2], ids[0], ids[1]]
    assert edited["items"][0]["title"] == "세 번째가 1위" and edited["items"][1]["caption"] == "원래 1위"
    assert edited["version"] == 2 and edited["warnings"] == []
    assert edited["estimated_seconds"] == pytest.approx(1.5 + 30 + 3.0)
    # a stale version, a window too short, an item of no project, one listed twice: refused, nothing changes
    status, problem = await harness.call("PATCH", path, auth, edit)
    assert (status, problem["code"]) == (409, "ranking.version_conflict")
    bad = {
        "items": [
            {"id": ids[0], "start_s": 5, "end_s": 5.5},
            {"id": str(uuid.uuid4())},
            {"id": ids[0]},
        ]
    }
    status, problem = await harness.call("PATCH", path, auth, bad)
    assert (status, problem["code"]) == (422, "ranking.invalid_edit")
    assert [p["rank"] for p in problem["problems"]] == [1, 2, 3]
    assert (await harness.call("GET", path, auth))[1]["version"] == 2
    # replace an item by one of the owner's videos (window checked against its length), then by a URL
    clip = make_video(seconds=3, width=320, height=240, directory=tmp_path)
    video_id = await harness.ingest_video(owner, clip, title="내 영상")
    replace = {
        "items": [{"video_id": str(video_id)}, {"id": ids[0]}, {"url": "https://www.tiktok.com/@a/video/1"}]
    }
    status, replaced = await harness.call("PATCH", path, auth, replace)
    assert status == 200, replaced
    first, _, third = replaced["items"]
    assert (first["video_id"], first["title"], first["status"]) == (str(video_id), "내 영상", "ready")
    assert first["end_s"] == pytest.approx(3.0, abs=0.05)  # a 3 s video: used whole
    assert (third["platform"], third["status"]) == ("TikTok", "pending")
    too_far = {
        "items": [{"video_id": str(video_id), "start_s": 2.9, "end_s": 5}, {"id": ids[0]}, {"id": ids[1]}]
    }
    status, problem = await harness.call("PATCH", path, auth, too_far)
    assert (status, problem["code"]) == (422, "ranking.invalid_edit")
    # template options: validated as a whole (a bad one changes nothing), a good one kept
    for options in ({"intro_s": 99}, {"short_clips": "loop"}, {"outro_s": -1}, {"crossfade_s": 0.5}):
        status, problem = await harness.call("PATCH", path, auth, {"options": options})
        assert (status, problem["code"]) == (422, "validation.invalid"), options
    status, problem = await harness.call("PATCH", path, auth, {"target": "vine"})
    assert (status, problem["code"]) == (422, "validation.invalid")
    status, optioned = await harness.call(
        "PATCH", path, auth, {"options": {"intro_s": 0, "outro_s": 2, "short_clips": "refuse"}}
    )
    assert status == 200 and optioned["options"] == {"intro_s": 0, "outro_s": 2, "short_clips": "refuse"}
    assert optioned["version"] == replaced["version"] + 1
    assert optioned["estimated_seconds"] == pytest.approx(replaced["estimated_seconds"] - 1.5 - 1.0)


async def test_the_callers_projects_are_listed_newest_first_a_page_at_a_time(harness: RenderHarness) -> None:
    owner, auth = await harness.user()
    search_id = harness.ingest.store_search(owner, YT)
    made = [(await _from_search(harness, auth, search_id, title=f"Top {k}"))["id"] for k in range(5)]
    seen: list[str] = []
    cursor = ""
    for expected in (2, 2, 1):
        status, page = await harness.call("GET", f"/api/v1/rankings?limit=2{cursor}", auth)
        assert status == 200 and len(page["items"]) == expected, page
        seen += [p["id"] for p in page["items"]]
        cursor = f"&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert seen == made[::-1] and cursor == ""  # newest first, each once, and the last page says so
    assert page["items"][0]["title"] == "Top 0" and page["items"][0]["n"] == 5
    for query in ("limit=0", "limit=101", "limit=x", "cursor=not-a-cursor"):
        status, problem = await harness.call("GET", f"/api/v1/rankings?{query}", auth)
        assert (status, problem["code"]) == (422, "validation.invalid"), query


async def test_sources_are_checked(harness: RenderHarness) -> None:
    _, auth = await harness.user()
    for source, code in [
        ({}, "ranking.invalid_source"),
        ({"urls": ["https://a.example/1"], "search_id": str(uuid.uuid4())}, "ranking.invalid_source"),
        ({"urls": ["https://a.example/1", "https://a.example/2"]}, "ranking.invalid_source"),
        ({"urls": ["ftp://a.example/1"] * 3}, "validation.invalid"),
    ]:
        status, problem = await harness.call(
            "POST", "/api/v1/rankings", auth, {"title": "t", "source": source}
        )
        assert (status, problem["code"]) == (422, code), source
    status, problem = await harness.call(
        "POST", "/api/v1/rankings", auth, {"title": "t", "source": {"video_ids": [str(uuid.uuid4())] * 3}}
    )
    assert (status, problem["code"]) == (404, "video.not_found")
    status, project = await harness.call(
        "POST",
        "/api/v1/rankings",
        auth,
        {
            "title": "From links",
            "order": "top_down",
            "source": {"urls": [f"https://www.youtube.com/watch?v={k}" for k in "abc"]},
        },
    )
    assert status == 201 and project["n"] == 3 and project["order"] == "top_down"
    assert {i["status"] for i in project["items"]} == {"pending"}


async def test_a_project_says_where_the_render_draws_for_its_target(harness: RenderHarness) -> None:
    """The web preview's boxes come from here: the compositor's own layout (``layout_for``), per target."""
    owner, auth = await harness.user()
    search_id = harness.ingest.store_search(owner, YT)
    frames = {}
    for target in Target:
        project = await _from_search(harness, auth, search_id, n=3, target=target.value)
        status, got = await harness.call("GET", f"/api/v1/rankings/{project['id']}", auth)
        assert status == 200 and got["layout"] == project["layout"]
        want = layout_for(target)
        boxes = {name: {"x": b.x, "y": b.y, "w": b.w, "h": b.h} for name, b in want.text_boxes().items()}
        assert project["layout"] == {
            "width": 1080,
            "height": 1920,
            "safe": boxes["card"],
            "badge": boxes["badge"],
            "title": boxes["title"],
            "attribution": boxes["attribution"],
        }
        frames[target] = project["layout"]["safe"]
    assert len({str(f) for f in frames.values()}) == 3, "each platform leaves its own safe area"
