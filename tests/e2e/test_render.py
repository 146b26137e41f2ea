"""Ranking shorts, end to end through the gateway: the owner's uploaded clips → a ranking project → a paid render
(real PyAV in render's worker, real billing) → a 1080x1920 MP4 with badges and Korean titles at -14 LUFS → ingest
registers it as the owner's video and streaming makes it playable, for the owner only."""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from common.testing.http import serving
from common.testing.media import ffprobe, make_video, mixed_clips
from render.layout import HEIGHT, WIDTH, Target, layout_for
from render.overlays import ItemText, badge_colour, clip_layers, outro_card
from render.text import FontChain

from .recorded_search import recording
from .stack import Stack
from .test_user_journeys import User, poll, register

pytestmark = pytest.mark.xdist_group("e2e")
CLIP_S, INTRO_S, OUTRO_S = 2.0, 1.0, 1.5
TITLES = ["가장 빠른 고양이", "점프하는 강아지", "4:3 고전 영상", "세로 무음 클립"]


async def _upload(http: aiohttp.ClientSession, user: User, path: Path, title: str) -> str:
    form = aiohttp.FormData()
    form.add_field("title", title)
    form.add_field(
        "file", await asyncio.to_thread(path.read_bytes), filename=path.name, content_type="video/mp4"
    )
    async with http.post(f"{user.base}/api/v1/videos", data=form, headers=user.auth) as r:
        assert r.status == 201, await r.text()
        vid: str = (await r.json())["id"]
    return vid


async def _project(http: aiohttp.ClientSession, user: User, tmp_path: Path) -> dict[str, Any]:
    ids = [await _upload(http, user, p, t) for p, t in zip(mixed_clips(tmp_path), TITLES, strict=True)]
    body = {
        "title": "귀여운 동물 Top 4",
        "clip_seconds": CLIP_S,
        "source": {"video_ids": ids},
        "options": {"intro_s": INTRO_S, "outro_s": OUTRO_S},
    }
    status, project = await user.post("/api/v1/rankings", body)
    assert status == 201, project
    return project


async def _render_ends(user: User, render_id: str, timeout: float = 300) -> dict[str, Any]:
    async def ended() -> Any:
        status, r = await user.get(f"/api/v1/renders/{render_id}")  # a 429 is "not yet"
        return r if status == 200 and r["status"] in ("succeeded", "failed", "canceled") else None

    render: dict[str, Any] = await poll(ended, timeout=timeout, what=f"render {render_id} ends", interval=1.0)
    return render


async def _balance(user: User) -> dict[str, Any]:
    async def read() -> Any:
        status, body = await user.get("/api/v1/billing/balance")
        return body if status == 200 else None

    body: dict[str, Any] = await poll(read, timeout=30, what="the balance", interval=1.0)
    return body


async def _settled_at(user: User, balance: int) -> None:
    async def settled() -> bool:
        status, now = await user.get("/api/v1/billing/balance")
        return status == 200 and now["balance"] == balance and now.get("held", 0) == 0

    await poll(settled, timeout=60, what=f"balance {balance} with nothing held", interval=1.0)


async def _user_with_project(
    http: aiohttp.ClientSession, stack: Stack, tmp_path: Path
) -> tuple[User, int, dict[str, Any]]:
    """A new user, their balance (the signup grant), and a project of their four uploaded clips."""
    user = await register(http, stack.gateway_url)
    before = int((await _balance(user))["balance"])
    return user, before, await _project(http, user, tmp_path)


def _frame(path: Path, t: float) -> np.ndarray:
    """The frame at ``t`` as RGB, decoded by ffmpeg's CLI (independent of the PyAV that made it)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{t:.3f}", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(HEIGHT, WIDTH, 3)


def _loudness(path: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) by ffmpeg's ``ebur128`` filter."""
    err = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-vn", "-af", "ebur128=peak=true", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    ).stderr  # fmt: skip
    summary = err[err.rindex("Summary:") :]
    lufs = float(summary.split("I:")[1].split("LUFS")[0])
    peak = float(summary.split("Peak:")[1].split("dBFS")[0])
    return lufs, peak


def _scratch(stack: Stack) -> list[Path]:
    root = stack.workdir / "tmp" / "render"
    return list(root.iterdir()) if root.is_dir() else []


async def test_a_ranking_short_is_rendered_paid_once_and_becomes_the_owners_playable_video(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    user, before, project = await _user_with_project(http, e2e_stack, tmp_path)
    items = project["items"]
    assert [i["title"] for i in items] == TITLES and {i["status"] for i in items} == {"ready"}
    expected = INTRO_S + 4 * CLIP_S + OUTRO_S
    assert project["estimated_seconds"] == pytest.approx(expected)
    status, render = await user.post(f"/api/v1/rankings/{project['id']}/renders", {})
    assert status == 202 and render["credits"] == 11, render  # 10.5 s: 11 started seconds at 1 credit
    done = await _render_ends(user, render["id"])
    assert done["status"] == "succeeded", done
    status, job = await user.get(f"/api/v1/jobs/{render['id']}")  # the same job in the platform's job list
    assert status == 200 and job["kind"] == "render" and job["status"] == "succeeded"

    # the MP4, fetched by its signed link without any token
    async with http.get(e2e_stack.gateway_url + done["download_url"]) as r:
        assert r.status == 200, await r.text()
        short = tmp_path / "short.mp4"
        await asyncio.to_thread(short.write_bytes, await r.read())
    async with http.get(e2e_stack.gateway_url + done["download_url"].replace("sig=", "sig=0")) as r:
        assert r.status == 403
    probe = ffprobe(short)
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1080, 1920)
    assert abs(float(probe["format"]["duration"]) - expected) < 0.1
    lufs, true_peak = _loudness(short)
    assert -15.0 <= lufs <= -13.0 and true_peak <= -1.0, (lufs, true_peak)

    # countdown: rank 4 plays first; at each clip's midpoint its badge is where the layout says, its title drawn
    layout, fonts = layout_for(Target.SHORTS), FontChain.installed()
    badge = layout.badge
    for i, item in enumerate(sorted(items, key=lambda it: -it["rank"])):
        img = _frame(short, INTRO_S + CLIP_S * i + CLIP_S / 2).astype(int)
        patch = img[badge.y + 6 : badge.y + 16, badge.x + badge.w // 2 - 20 : badge.x + badge.w // 2 + 20]
        assert np.abs(patch.reshape(-1, 3).mean(axis=0) - badge_colour(item["rank"])).max() < 24, item["rank"]
        text = ItemText(
            rank=item["rank"], title=item["title"], uploader=item["uploader"], platform=item["platform"]
        )
        title = clip_layers(layout, text, fonts)[1]
        want = np.asarray(title.image)
        want_white = (want[..., 3] > 200) & (want[..., :3].min(axis=2) > 200)
        region = img[title.y : title.y + want.shape[0], title.x : title.x + want.shape[1]]
        got_white = region.min(axis=2) > 170
        assert (want_white & got_white).sum() / (want_white | got_white).sum() > 0.6, item["title"]

    # paid once, for the seconds delivered
    await _settled_at(user, before - 11)
    assert _scratch(e2e_stack) == []

    # ingest registers it as the owner's video; streaming makes it playable for the owner only
    async def registered() -> Any:
        status, r = await user.get(f"/api/v1/renders/{render['id']}")
        return r["video_id"] if status == 200 and r["video_id"] else None

    vid = await poll(registered, timeout=60, what="the render becomes a video", interval=1.0)
    status, as_video = await user.get(f"/api/v1/videos/{vid}")
    assert (
        status == 200
        and as_video["source"] == "render"
        and (as_video["width"], as_video["height"]) == (1080, 1920)
    )

    async def playable() -> Any:
        status, body = await user.get(f"/api/v1/videos/{vid}/stream")
        return body if status == 200 and body["status"] in ("playable", "ready") else None

    await poll(playable, timeout=420, what="the rendered video is playable", interval=1.0)
    status, playback = await user.post(f"/api/v1/videos/{vid}/playback", {"expires_in": 600})
    assert status in (200, 201), playback
    async with http.get(playback["hls_url"]) as r:
        assert r.status == 200 and "#EXTM3U" in await r.text()
    stranger = await register(http, e2e_stack.gateway_url)
    assert (await stranger.get(f"/api/v1/videos/{vid}"))[0] == 404
    assert (await stranger.post(f"/api/v1/videos/{vid}/playback", {}))[0] == 404
    assert (await stranger.get(f"/api/v1/renders/{render['id']}"))[0] == 404


async def test_an_unaffordable_render_fails_credits_insufficient_without_running(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    user, balance, project = await _user_with_project(http, e2e_stack, tmp_path)
    _, me = await user.get("/api/v1/me")
    # the operator's adjustment leaves 5 credits: the short needs 11
    drained = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "billing", "adjust", "--account", me["id"], "--amount", str(5 - balance),
         "--reason", "e2e: drain"],
        cwd=e2e_stack.workdir, env=e2e_stack.service_env("billing"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert drained.returncode == 0, drained.stdout + drained.stderr
    status, render = await user.post(f"/api/v1/rankings/{project['id']}/renders", {})
    assert status == 202
    done = await _render_ends(user, render["id"], timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "credits.insufficient", done
    assert done["progress"] == 0 and done["download_url"] is None  # it never ran
    await _settled_at(user, 5)


async def test_a_canceled_render_charges_nothing_and_leaves_no_file(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    user, before, project = await _user_with_project(http, e2e_stack, tmp_path)
    _, render = await user.post(f"/api/v1/rankings/{project['id']}/renders", {})

    async def running() -> bool:
        status, r = await user.get(f"/api/v1/renders/{render['id']}")
        assert r["status"] != "succeeded", "the render ended before it could be canceled"
        return status == 200 and r["status"] == "running"

    await poll(running, timeout=120, what="the render runs", interval=1.0)
    status, _ = await user.post(f"/api/v1/jobs/{render['id']}/cancel", {})
    assert status in (200, 202)
    done = await _render_ends(user, render["id"], timeout=120)
    assert done["status"] == "canceled" and done["error"]["code"] == "job.canceled", done
    await _settled_at(user, before)
    assert _scratch(e2e_stack) == []
    listed = (await user.get(f"/api/v1/rankings/{project['id']}/renders"))[1]["items"]
    assert [r["status"] for r in listed] == ["canceled"]


async def test_a_project_from_urls_waits_for_ingests_imports_and_a_missing_clip_fails_source_unavailable(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    clips = mixed_clips(tmp_path)[:3]
    files = web.Application()
    for k, clip in enumerate(clips):
        files.router.add_get(f"/clip{k}.mp4", functools.partial(_file, clip))
    user = await register(http, e2e_stack.gateway_url)
    before = (await _balance(user))["balance"]
    async with serving(files) as (host, port):
        urls = [f"http://{host}:{port}/clip{k}.mp4" for k in range(3)]
        body = {"title": "Links", "clip_seconds": CLIP_S, "options": {"intro_s": INTRO_S, "outro_s": OUTRO_S}}
        status, project = await user.post("/api/v1/rankings", {**body, "source": {"urls": urls}})
        assert status == 201 and {i["status"] for i in project["items"]} == {"pending"}, project
        _, render = await user.post(f"/api/v1/rankings/{project['id']}/renders", {})
        done = await _render_ends(user, render["id"])
        assert done["status"] == "succeeded", done
        _, imported = await user.get(f"/api/v1/rankings/{project['id']}")
        assert {i["status"] for i in imported["items"]} == {
            "ready"
        }  # ingest's imports, in the owner's library
        for item in imported["items"]:
            status, video = await user.get(f"/api/v1/videos/{item['video_id']}")
            assert status == 200 and video["source"] == "import"
        # a bare file names no creator (yt-dlp's generic extractor gives no uploader): credited to its site
        assert {(i["uploader"], i["platform"]) for i in imported["items"]} == {("", host)}
        broken = [*urls[:2], f"http://{host}:{port}/gone.mp4"]
        _, failing = await user.post("/api/v1/rankings", {**body, "source": {"urls": broken}})
        _, render2 = await user.post(f"/api/v1/rankings/{failing['id']}/renders", {})
        failed = await _render_ends(user, render2["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "source.unavailable", failed
    assert "#3" in failed["error"]["message"]
    await _settled_at(user, before - done["credits"])  # the failed one charged nothing
    assert _scratch(e2e_stack) == []


async def _file(path: Path, request: web.Request) -> web.FileResponse:
    return web.FileResponse(path)


#: what a platform search found (yt-dlp's flat entries, as ingest's recorded ytsearch5_cat_fails.json, with like
#: counts): title, the channel the search lists, the creator the video's own page names, views, likes
SEARCHED = [
    ("Cats vs Cucumbers", "FunnyPaws", "털뭉치 FunnyPaws", 12_450_987, 210_000),
    ("Funniest Cat Fails 2025", "Pet Central", "펫 센트럴", 1_843_210, 95_000),
    ("TOP 10 CAT FAILS", "Top Tens Daily", "Top Tens Daily", 2_501_337, 12_000),
    ("cat fails but they get progressively worse", "meowmeow", "meowmeow", 96_231, 150_000),
    ("Cat Fails Compilation - Live Reaction", "Reaction Hub", "Reaction Hub", None, None),
]


def _video_site(clip: Path) -> web.Application:
    """The searched videos on 127.0.0.1: ``/watch/<k>`` pages crediting their creator (JSON-LD ``author``, what
    yt-dlp reads as the uploader) with the video at ``/media/<k>.mp4``."""

    async def page(request: web.Request) -> web.Response:
        k = int(request.match_info["k"])
        ld = {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": SEARCHED[k][0],
            "author": {"@type": "Person", "name": SEARCHED[k][2]},
            "contentUrl": f"http://{request.host}/media/{k}.mp4",
            "duration": "PT3S",
        }
        html = f'<html><head><script type="application/ld+json">{json.dumps(ld)}</script></head><body></body></html>'
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/watch/{k}", page)
    app.router.add_get("/media/{k}.mp4", functools.partial(_file, clip))
    return app


def _record_search(stack: Stack, target: str, site: str) -> None:
    """The platform's answer to a search for ``target``: yt-dlp's flat playlist of ``SEARCHED`` on ``site``."""
    entries = [
        {
            "_type": "url",
            "id": f"v{k}",
            "url": f"{site}/watch/{k}",
            "webpage_url": f"{site}/watch/{k}",
            "title": title,
            "channel": channel,
            "uploader": channel,
            "view_count": views,
            "like_count": likes,
            "duration": 3,
        }
        for k, (title, channel, _, views, likes) in enumerate(SEARCHED)
    ]
    info = {"_type": "playlist", "id": target, "extractor_key": "YoutubeSearch", "entries": entries}
    recording(stack.search_recordings, target).write_text(json.dumps(info))


def _top(count: int, n: int) -> list[int]:
    """The indexes of the ``n`` searched videos with the most of count ``count`` (3 views, 4 likes); those
    without the count last, ties in the platform's order."""
    return sorted(
        range(len(SEARCHED)), key=lambda k: (SEARCHED[k][count] is None, -(SEARCHED[k][count] or 0), k)
    )[:n]


async def test_a_ranking_from_a_stored_search_ranks_by_views_and_likes_and_credits_what_ingest_found(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    user = await register(http, e2e_stack.gateway_url)
    before = int((await _balance(user))["balance"])
    query = f"cat fails {uuid.uuid4().hex[:8]}"
    async with serving(_video_site(make_video(seconds=3, directory=tmp_path))) as (host, port):
        site = f"http://{host}:{port}"
        _record_search(e2e_stack, f"ytsearch5:{query}", site)
        # ingest's search job (its worker, its parsing and storage), then render ranks what ingest's API answers
        status, accepted = await user.post(
            "/api/v1/searches", {"platform": "youtube", "query": query, "limit": 5}
        )
        assert status == 202, accepted

        async def searched() -> Any:
            status, s = await user.get(f"/api/v1/searches/{accepted['search_id']}")
            return s if status == 200 and s["status"] in ("succeeded", "failed") else None

        search = await poll(searched, timeout=60, what="the search ends", interval=1.0)
        assert search["status"] == "succeeded" and len(search["results"]) == 5, search
        body = {
            "title": "고양이 실수 Top 3",
            "n": 3,
            "clip_seconds": CLIP_S,
            "source": {"search_id": accepted["search_id"]},
            "options": {"intro_s": INTRO_S, "outro_s": OUTRO_S},
        }
        projects = {}
        for order_by, count in (("views", 3), ("likes", 4)):
            status, project = await user.post("/api/v1/rankings", {**body, "order_by": order_by})
            assert status == 201, project
            top = _top(count, 3)
            assert [(i["rank"], i["title"]) for i in project["items"]] == [
                (r + 1, SEARCHED[k][0]) for r, k in enumerate(top)
            ], order_by
            assert [i[f"{order_by[:-1]}_count"] for i in project["items"]] == [
                SEARCHED[k][count] for k in top
            ]
            assert [i["source_url"] for i in project["items"]] == [f"{site}/watch/{k}" for k in top]
            assert all(
                i["counted_at"] == search["created_at"].replace("+00:00", "Z") for i in project["items"]
            )
            projects[order_by] = project
        by_views = projects["views"]
        status, render = await user.post(f"/api/v1/rankings/{by_views['id']}/renders", {})
        assert status == 202, render
        done = await _render_ends(user, render["id"])
        assert done["status"] == "succeeded", done
        async with http.get(e2e_stack.gateway_url + done["download_url"]) as r:
            assert r.status == 200
            short = tmp_path / "short.mp4"
            await asyncio.to_thread(short.write_bytes, await r.read())

    # every clip credited as ingest's import found it: the creator its page names, the site it came from
    _, imported = await user.get(f"/api/v1/rankings/{by_views['id']}")
    top = _top(3, 3)
    assert [(i["status"], i["uploader"], i["platform"]) for i in imported["items"]] == [
        ("ready", SEARCHED[k][2], host) for k in top
    ]
    texts = [
        ItemText(rank=i["rank"], title=i["title"], uploader=i["uploader"], platform=i["platform"])
        for i in imported["items"]
    ]
    layout, fonts = layout_for(Target.SHORTS), FontChain.installed()

    def drawn(want: np.ndarray, img: np.ndarray, x: int, y: int) -> float:
        """How much of ``want``'s white text is white in ``img`` at (x, y) (intersection over union)."""
        want_white = (want[..., 3] > 200) & (want[..., :3].min(axis=2) > 200)
        got_white = img[y : y + want.shape[0], x : x + want.shape[1]].min(axis=2) > 170
        return float((want_white & got_white).sum() / (want_white | got_white).sum())

    # countdown: rank 1 plays last; its attribution line (the third layer) at its midpoint, the outro's sources
    rank1 = _frame(short, INTRO_S + 2.5 * CLIP_S).astype(int)
    credit = clip_layers(layout, texts[0], fonts)[2]
    assert drawn(np.asarray(credit.image), rank1, credit.x, credit.y) > 0.6
    outro = _frame(short, INTRO_S + 3 * CLIP_S + OUTRO_S / 2).astype(int)
    assert drawn(np.asarray(outro_card(layout, texts, fonts).convert("RGBA")), outro, 0, 0) > 0.6

    # ingest registers the short with the same credits in its description
    async def registered() -> Any:
        status, r = await user.get(f"/api/v1/renders/{render['id']}")
        return r["video_id"] if status == 200 and r["video_id"] else None

    vid = await poll(registered, timeout=60, what="the render becomes a video", interval=1.0)
    _, video = await user.get(f"/api/v1/videos/{vid}")
    assert video["description"].split("Sources:\n", 1)[1].splitlines() == [
        f"#{r + 1} @{SEARCHED[k][2]} · {host} · {site}/watch/{k}" for r, k in enumerate(top)
    ]
    await _settled_at(user, before - done["credits"])
    assert _scratch(e2e_stack) == []
