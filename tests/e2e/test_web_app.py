"""The web app in a real browser: Debian's Chromium, driven by playwright-core (web/tests/journey.mjs), against
the whole stack. Screenshots of each page go to var/web-test/screenshots (REELFORGE_SCREENSHOTS=docs/screenshots
refreshes the documentation's); a failing step leaves a screenshot of every open page in var/web-test (failed.png,
failed-tab.png, ...)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from common.testing.media import make_video
from common.testing.speech import make_speech
from common.testing.subtitles import SubtitleServer, talk

from .recorded_search import recording
from .stack import Stack
from .test_hardening import stream_ready, upload_answer
from .test_user_journeys import User, poll, register

pytestmark = pytest.mark.xdist_group("e2e")

ROOT = Path(__file__).resolve().parents[2]
#: a test run leaves the working tree as it was; the docs' screenshots are refreshed on purpose only
SHOTS = ROOT / os.environ.get("REELFORGE_SCREENSHOTS", "var/web-test/screenshots")
#: where a failing step leaves its screenshot (pytest's tmp directories are rotated away too soon on a busy machine)
FAILED = ROOT / "var" / "web-test"
#: four sentences 12 s apart (6 s of silence between them): three chapters survive YouTube's rules (at least three,
#: each at least 10 s long), which the analysis enforces
SPEECH = [
    "The city council approved a new budget on Tuesday, adding money for schools, parks and transport.",
    6.0,
    "In the weather, a warm and sunny weekend is expected across the whole region.",
    6.0,
    "In sports, the home team won the final match of the season by two goals.",
    6.0,
    "And the city library opens a new reading room for children next month.",
]
#: what the platform search finds (title, views, likes): the page ranks the top 4 by likes, a missing count last
SEARCHED = [
    ("Most viewed", 500_000, 10),
    ("Most liked", 100_000, 90),
    ("Third", 300_000, 50),
    ("No likes counted", 50_000, None),
    ("Second by likes", 400_000, 70),
    ("No views counted", None, 30),
]


def _sorted_results(by: str) -> list[dict[str, str]]:
    """The Add page's search results as shown sorted by ``"views"`` or ``"likes"`` (a missing count as 0)."""
    count = {"views": 1, "likes": 2}[by]
    return [
        {
            "title": r[0],
            "counts": f"Web test · {r[1] if r[1] is not None else '?'} views · {r[2] if r[2] is not None else '?'} likes",
        }
        for r in sorted(SEARCHED, key=lambda r: -(r[count] or 0))
    ]


def _record_search(stack: Stack, query: str, site: str) -> None:
    """The platform's answer (yt-dlp's flat playlist) to the Add page's search for ``query`` (20 results asked)."""
    entries = [
        {"_type": "url", "id": f"r{k}", "url": f"{site}/v/rank-{k}", "webpage_url": f"{site}/v/rank-{k}",
         "title": title, "channel": "Web test", "uploader": "Web test", "view_count": views, "like_count": likes,
         "duration": 15}
        for k, (title, views, likes) in enumerate(SEARCHED)
    ]  # fmt: skip
    target = f"ytsearch20:{query}"
    info = {"_type": "playlist", "id": target, "extractor_key": "YoutubeSearch", "entries": entries}
    recording(stack.search_recordings, target).write_text(json.dumps(info))


@pytest.mark.timeout(1500)  # Whisper, the analysis and a render run on a shared 2-core machine
def test_a_new_user_uploads_plays_captions_analyses_ranks_tops_up_and_makes_a_key(
    e2e_stack: Stack, tmp_path: Path, platform: SubtitleServer
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    FAILED.mkdir(parents=True, exist_ok=True)
    # the batch: three pages of the local platform and one it answers 429 once first (asked again 2 s later), so
    # the batch runs long enough to pause and resume
    tag = uuid.uuid4().hex[:6]
    batch_urls = [
        platform.add(f"web-{tag}-{i}", talk(f"Web batch talk {i} of {tag}."), title=f"Web batch {i}")
        for i in range(4)
    ]
    batch_urls[3] = platform.url(f"web-{tag}-3", "limited")
    # a batch canceled while it runs
    cancel_urls = [platform.add(f"web-{tag}-c{i}", talk(f"Canceled talk {i} of {tag}.")) for i in range(3)]
    query = f"web ranking {tag}"
    _record_search(e2e_stack, query, platform.base_url)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "BASE": e2e_stack.gateway_url,
        "VIDEO": str(make_speech(SPEECH).path),
        "SHOTS": str(SHOTS),
        "FAILED": str(FAILED),
        "BATCH_URLS": "\n".join(batch_urls),
        "MISSING_URL": platform.url(f"web-{tag}-missing"),  # the platform's 404: a failed import
        "CANCEL_URLS": "\n".join(cancel_urls),
        "SEARCH_QUERY": query,
    }
    run = subprocess.run(
        ["node", "tests/journey.mjs"], cwd=ROOT / "web", env=env, capture_output=True, text=True, timeout=1440
    )
    assert run.returncode == 0, f"{run.stderr}\nscreenshots: {FAILED}/failed*.png"
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["progressBar"], "the upload showed a progress bar"
    assert seen["play"]["readyState"] >= 2 and seen["play"]["currentTime"] > 0.5, seen["play"]
    assert seen["play"]["mse"], "hls.js played it through Media Source Extensions"
    assert "/play/" in seen["signedLink"] and "token=" in seen["signedLink"], seen["signedLink"]
    embed = seen["embed"]
    assert embed["iframe"] and embed["mse"], (
        f"the snippet is an <iframe> of /embed/<id> playing through hls.js: {embed}"
    )
    assert embed["readyState"] >= 2 and embed["currentTime"] > 0.3, (
        f"it plays inside another site's page: {embed}"
    )
    assert seen["seekThumbnail"], "hovering the seek bar shows the sprite's frame"
    assert seen["captionTrack"] == "en", "the new English track plays in the player"
    quality = seen["quality"]
    assert quality["problems"] == 0 and quality["cues"] > 0, quality
    assert quality["summary"] == f"All {quality['cues']} cues meet the subtitle rules for English.", quality
    assert f"✓ All {quality['cues']} cues within 42 characters per line" in quality["lines"], quality
    assert "✓ All cues read at 20 characters per second or slower" in quality["lines"], quality
    assert "✓ All cues stay up at least 5/6 s" in quality["lines"], quality
    chapter = seen["chapter"]
    assert chapter["chapters"] >= 2 and chapter["start"] > 0, chapter
    assert abs(chapter["currentTime"] - chapter["start"]) < 1.5, (
        f"a chapter click seeks the player: {chapter}"
    )
    highlight = seen["highlight"]
    assert highlight["highlights"] >= 1 and abs(highlight["from"] - highlight["start"]) > 3, highlight
    assert abs(highlight["currentTime"] - highlight["start"]) < 1.5, (
        f"a highlight click seeks the player: {highlight}"
    )
    assert any("budget" in line for line in seen["transcript"]), seen["transcript"]
    assert seen["libraryLive"], "an upload appears in another tab's library without a reload"
    watched = seen["jobWatched"]
    assert watched["firstSeen"] in ("queued", "running") and watched["status"] == "succeeded", watched
    assert watched["live"], f"the jobs page followed the transcode without a reload: {watched}"
    assert (watched["percent"], watched["bar"]) == ("100 %", 1), f"a finished job reads 100 %: {watched}"
    batch = seen["batch"]
    assert seen["batchTotal"] == 5, "the pasted CSV's header row was skipped"
    assert batch["live"] and len(batch["counts"]) >= 2, f"the batch's counts changed live: {batch}"
    assert sorted(r["url"] for r in batch["exported"]) == sorted([*batch_urls, batch["gone"]]), batch
    states = {r["url"]: r["state"] for r in batch["exported"]}
    assert states.pop(batch["gone"]) == "failed" and set(states.values()) == {"succeeded"}, batch
    # while it ran: items done of the total, the time left (or why it is not known yet) and the quota's state
    running = [p for p in batch["pace"] if p.startswith("running: ")]
    assert running and all(
        " of 5 items done · " in p and p.endswith(" · AI quota available") for p in running
    ), batch["pace"]
    assert any("left" in p or "known once the first item ends" in p for p in running), batch["pace"]
    for failure in (batch["failure"], batch["retried"]):
        assert failure["text"] == (
            f"{batch['gone']}: The video at that address could not be read: it may be private, removed or mistyped."
        ), failure
    assert batch["retried"]["hits"] > batch["failure"]["hits"] > 0, (
        f"Retry failed asked the page again: {batch}"
    )
    canceled = seen["batchCanceled"]
    assert canceled["state"] == "canceled" and canceled["live"], canceled
    assert canceled["total"] == 3 and canceled["exported"] == cancel_urls, (
        f"the CSV file's first column, its header row skipped: {canceled}"
    )
    assert "Cancel" not in canceled["buttons"] and "Pause" not in canceled["buttons"], canceled
    cue = seen["cueEdit"]
    assert cue["srt"]["name"].endswith(".srt") and cue["vtt"]["name"].endswith(".vtt"), cue
    assert "Edited in the browser" in cue["srt"]["text"] and "Edited in the browser" in cue["vtt"]["text"], (
        cue
    )
    start = cue["newStart"]
    clock = f"{int(start // 3600):02d}:{int(start // 60 % 60):02d}:{int(start % 60):02d}"
    millis = f"{round(start * 1000) % 1000:03d}"
    assert f"{clock},{millis} -->" in cue["srt"]["text"] and f"{clock}.{millis} -->" in cue["vtt"]["text"], (
        cue
    )
    assert seen["keyRevoked"]
    assert seen["trim"]["saved"] == seen["trim"]["asked"], seen["trim"]
    library = seen["library"]
    assert "Second clip, renamed" in library["afterReload"] and "Third clip" not in library["afterReload"], (
        library
    )
    assert "Second clip" not in library["afterReload"], library
    assert seen["importError"] == (
        "The video at that address could not be read: it may be private, removed or mistyped."
    ), seen["importError"]
    assert seen["canceled"]["firstSeen"] in ("queued", "running") and seen["canceled"]["status"] == "canceled"
    reference = seen["reference"]
    assert "title?: string" in reference["schema"] and "video_id" in reference["params"], reference
    assert "HTTP 503" in reference["error"], reference
    assert seen["libraryStatus"] in ("playable", "ready"), seen["libraryStatus"]
    words = {"playable": "Playable", "ready": "Ready"}
    assert words.get(seen["videoBadge"]["status"]) == seen["videoBadge"]["text"], seen["videoBadge"]
    assert seen["apiKey"], "the new key was shown once"
    assert seen["credits"] > 0, "the signup grant is on the Credits page"
    topup = seen["topup"]
    assert topup["after"] == topup["before"] + topup["amount"], (
        f"the test payment credited the order: {topup}"
    )
    other = seen["topupLive"]
    assert other["live"] and other["after"] == other["before"] + topup["amount"], (
        f"another tab showed the payment without a reload: {other}"
    )
    assert seen["rankTitles"][1] == "The best one" and len(seen["rankTitles"]) == 3, seen["rankTitles"]
    by_likes = ["Most liked", "Second by likes", "Third", "No views counted"]  # "No likes counted": last
    sort = seen["searchSort"]
    assert [s["by"] for s in sort["sorted"]] == ["likes", "views", "likes"], sort
    for shown in sort["sorted"]:
        assert shown["shown"] == _sorted_results(shown["by"]), (
            f"the results in order of {shown['by']}: {shown}"
        )
        assert shown["href"].endswith(f"/{shown['by']}"), f"Make a ranking short… carries the sort: {shown}"
    assert sort["rankBy"] == "likes", f"the ranking page ranks by the sort chosen: {sort}"
    ranked = seen["searchRank"]
    assert ranked["picks"] == by_likes and ranked["titles"] == by_likes, ranked
    assert ranked["heading"].startswith("4 clips · top down"), ranked
    assert seen["preview"] == "The best one", "the layout preview shows the clip's edited title"
    assert len(seen["renderStages"]) >= 2, f"live stages over the WebSocket: {seen['renderStages']}"
    assert seen["renderPlay"]["readyState"] >= 2 and seen["renderPlay"]["currentTime"] > 0.3, seen[
        "renderPlay"
    ]
    assert (seen["renderPlay"]["width"], seen["renderPlay"]["height"]) == (1080, 1920), seen["renderPlay"]
    download = seen["renderDownload"]
    assert download["status"] == 200 and download["type"] == "video/mp4" and download["bytes"] > 10_000, (
        download
    )
    redelivered = seen["redelivered"]
    # the receiver got the same event (its Reelforge-Event-Id) once more
    assert redelivered["before"] >= 1 and redelivered["after"] == redelivered["before"] + 1, redelivered
    assert seen["pagesAt390"] == 11 and seen["overflowAt390"] == [], (
        f"wider than a 390 px phone: {seen['overflowAt390']}"
    )
    assert seen["errors"] == [], seen["errors"]  # no script error, no refused or missing file of the page
    print("API answers the page logged as errors (4xx/5xx):", seen["apiErrors"])
    measured = (
        "embed",
        "jobWatched",
        "canceled",
        "trim",
        "batch",
        "chapter",
        "highlight",
        "searchSort",
        "topup",
        "topupLive",
        "searchRank",
        "batchCanceled",
        "rankTitles",
        "renderStages",
        "renderPlay",
        "renderDownload",
        "redelivered",
    )
    print("measured:", json.dumps({k: seen[k] for k in measured}))


async def _signed_in_script(script: str, stack: Stack, user: User, *, timeout: float, **env: str) -> Any:
    """What web/tests/``script``.mjs saw (its last line, JSON) as ``user`` signing in, with ``env`` besides; it
    leaves ``<script>-failed.png`` in FAILED when it fails."""
    node = await asyncio.create_subprocess_exec(
        "node",
        f"tests/{script}.mjs",
        cwd=ROOT / "web",
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BASE": stack.gateway_url,
            "EMAIL": user.email,
            "PASSWORD": "correct horse battery",
            "FAILED": str(FAILED),
            **env,
        },
        stdout=PIPE,
        stderr=PIPE,
    )
    try:
        out, err = await asyncio.wait_for(node.communicate(), timeout=timeout)
    except TimeoutError:  # each of the script's steps is bounded: this is a slow machine, or a hung browser
        node.kill()
        await node.wait()
        raise AssertionError(f"{script}.mjs had not finished after {timeout:.0f} s") from None
    assert node.returncode == 0, f"{err.decode()}\nscreenshot: {FAILED / f'{script}-failed.png'}"
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_the_library_searches_the_server_and_loads_more_pages(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    """web/tests/library.mjs: with six videos a page, a search finds a title that is not on the loaded page (the
    server searched), "Load more" continues a search and the whole list, a "%" is a character, statuses are words;
    a page of cards costs a few requests whatever its size (one GET /streams for its states); the ranking picker
    searches the library too and its project previews render's own layout; the jobs page pages with "Load more"."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    FAILED.mkdir(parents=True, exist_ok=True)
    user = await register(http, e2e_stack.gateway_url)
    clip = make_video(seconds=1.0, width=160, height=120).read_bytes()
    street = [f"Street clip {i}" for i in range(1, 8)]
    ids = []
    for title in ["Harbour at dawn", *street]:  # the oldest first: the library lists the newest first
        status, body = await upload_answer(http, user, clip, name="clip.mp4", title=title)
        assert status == 201, body
        ids.append(body["id"])

    async def transcoded() -> list[dict[str, object]] | None:
        # the Library's own request, through the gateway: the eight states at once
        query = {"video_ids": ",".join(ids)}
        async with http.get(f"{user.base}/api/v1/streams", params=query, headers=user.auth) as r:
            assert r.status == 200, await r.text()
            items: list[dict[str, object]] = (await r.json())["items"]
        return items if all(i["status"] in ("ready", "error") for i in items) else None

    # no live update may add requests while the browser counts them: every transcode has ended first
    states = await poll(transcoded, timeout=420, what="the eight transcodes")
    assert [i["video_id"] for i in states] == ids and {i["status"] for i in states} == {"ready"}, states

    async def jobs_ended() -> list[dict[str, object]] | None:
        # and the gateway's job feed has their ends (it drives the pushes that reload the Library): streaming can
        # say "ready" a moment before the feed hears the job succeeded
        query = {"kind": "transcode", "limit": "50"}
        async with http.get(f"{user.base}/api/v1/jobs", params=query, headers=user.auth) as r:
            assert r.status == 200, await r.text()
            jobs: list[dict[str, object]] = (await r.json())["items"]
        ended = [j for j in jobs if j["status"] in ("succeeded", "failed", "canceled")]
        return jobs if len(ended) == len(ids) == len(jobs) else None

    await poll(jobs_ended, timeout=60, what="the eight transcode jobs' ends in the job feed")
    for state in states:
        async with http.get(str(state["poster_url"])) as r:  # PUBLIC_BASE_URL is the gateway
            assert r.status == 200 and r.content_type == "image/jpeg", (
                "the signed poster loads with its token"
            )
    seen = await _signed_in_script("library", e2e_stack, user, timeout=420, SHOTS=str(SHOTS))
    newest_first = street[::-1]
    assert seen["firstVisit"] == [*newest_first, "Harbour at dawn"], "48 a page by default: all eight"
    assert seen["sixAPage"] == newest_first[:6] and seen["moreAfterSix"], seen
    assert seen["keptPerPage"] == "6" and seen["afterReload"] == newest_first[:6], (
        "the page size is remembered"
    )
    assert seen["harbour"] == ["Harbour at dawn"], "found by the server: it was not on the loaded page"
    assert seen["streetFirst"] == newest_first[:6] and seen["moreInSearch"], seen
    assert seen["streetAll"] == newest_first and seen["moreAfterAll"] == 0, "Load more continued the search"
    assert seen["percent"] == [], "a % in the search box matches a % only"
    assert seen["everyFirst"] == newest_first[:6], seen
    assert seen["everyAll"] == [*newest_first, "Harbour at dawn"], "Load more: the second page of the library"
    assert set(seen["badges"]) <= {"Processing", "Playable", "Ready"} and len(seen["badges"]) == 8, seen[
        "badges"
    ]
    assert seen["errors"] == [], seen["errors"]
    # a page of cards costs the same few requests whatever its size (8 cards on a 48-page, 6 on a 6-page, a second
    # page of 2): one list, one batch of stream states; never a request per card (a 48-card page was ~97 of the
    # gateway's 100 a minute)
    streams = "GET /api/v1/streams"
    # (a reload's first list answers 401: the access token lives in memory only, so it is refreshed and asked again)
    for name in ("signInRequests", "reloadRequests", "loadMoreRequests"):
        calls = seen[name]
        assert len(calls) <= 5 and calls.count(streams) == 1, (name, calls)
        assert not [c for c in calls if c.endswith(("/stream", "/playback"))], (name, calls)
    print(
        "requests:",
        json.dumps({k: seen[k] for k in ("signInRequests", "reloadRequests", "loadMoreRequests")}),
    )

    # the jobs page pages through the API's cursor as the library does: its eight transcodes, newest first
    status, listed = await user.get("/api/v1/jobs?limit=100")
    assert status == 200, listed
    job_ids = [j["id"] for j in listed["items"]]
    assert len(job_ids) == 8 and {j["kind"] for j in listed["items"]} == {"transcode"}, listed
    assert seen["jobsFirst"] == job_ids, "48 a page by default: all eight"
    assert seen["jobsSix"] == job_ids[:6] and seen["jobsMore"], seen
    assert seen["jobsAll"] == job_ids and seen["jobsMoreAfterAll"] == 0, "Load more: the other two"
    assert seen["keyScope"] == "read", "a new API key is read-only unless full is chosen (as the API and CLI)"

    # the ranking picker: the same server search, six a page with "Load more", picks kept across searches in order
    assert seen["pickerFirst"] == newest_first[:6] and seen["pickerMore"], seen
    assert seen["pickerAll"] == [*newest_first, "Harbour at dawn"], seen["pickerAll"]
    assert seen["pickerHarbour"] == ["Harbour at dawn"], "found by the server: it was not on the loaded page"
    picked = ["Street clip 5", "Harbour at dawn", "Street clip 3"]
    assert seen["picked"] == picked and seen["ranked"] == picked, (seen["picked"], seen["ranked"])
    # its preview draws render's own layout (served with the project), not a copy of its numbers
    status, project = await user.get(f"/api/v1/rankings/{seen['projectId']}")
    assert status == 200, project
    layout = project["layout"]
    for name, shown in seen["preview"].items():
        b = layout[name]
        want = {
            "left": b["x"] / layout["width"],
            "top": b["y"] / layout["height"],
            "width": b["w"] / layout["width"],
            "height": b["h"] / layout["height"],
        }
        for side, fraction in want.items():
            assert abs(float(shown[side].removesuffix("%")) - 100 * fraction) < 0.01, (name, side, shown, b)
    assert seen["loadMoreRequests"] == ["GET /api/v1/videos", streams], "Load more asks for its own page only"
    assert seen["posterSrc"].startswith("/play/") and "token=" in seen["posterSrc"], seen["posterSrc"]


async def test_pages_show_their_errors_and_the_player_survives_an_expired_token(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    """web/tests/states.mjs: each page's error box when its main call fails, and "Try again" once the API is back;
    the Quality menu of a two-rendition stream (and a page that does not move as the stream loads); a playback token that stops working mid-play is renewed and play
    carries on where it was; a failure that persists is said, with "Try again"; captions started while playing
    do not restart the player; copying without a clipboard; a failed analysis is run again."""
    FAILED.mkdir(parents=True, exist_ok=True)
    user = await register(http, e2e_stack.gateway_url)
    # 640x360: a 360p and a 240p rendition (never upscaled); long enough to play through the whole script
    clip = make_video(seconds=24.0, width=640, height=360).read_bytes()
    status, body = await upload_answer(http, user, clip, name="clip.mp4", title="Two renditions")
    assert status == 201, body
    status, spoken = await upload_answer(
        http, user, make_speech(SPEECH).path.read_bytes(), name="speech.mp4", title="Spoken"
    )
    assert status == 201, spoken
    stream, _ = await asyncio.gather(stream_ready(user, body["id"]), stream_ready(user, spoken["id"]))
    seen = await _signed_in_script(
        "states", e2e_stack, user, timeout=480, VIDEO_ID=body["id"], SPEECH_ID=spoken["id"]
    )
    print("measured:", json.dumps(seen))
    for name, shown in seen["pages"].items():
        assert shown["refused"] >= 1 and "The service is restarting." in shown["said"], (name, shown)
        assert shown["alertsAfter"] == 0, f"Try again loaded {name}: {shown}"
    assert set(seen["pages"]) == {
        *(
            "library",
            "video",
            "captions",
            "analysis",
            "add",
            "jobs",
            "credits",
            "batches",
            "rankings",
            "developers",
        )
    }
    assert seen["qualityOptions"] == ["Auto", "240p", "360p"], (seen["qualityOptions"], stream)
    assert [(s["label"], s["height"]) for s in seen["switched"]] == [("240p", 240), ("360p", 360)], seen
    # the page does not move as the stream loads: a click aimed at a tab lands on it
    assert len(seen["tabsAt"]) == 1, seen["tabsAt"]
    renewed = seen["renewed"]
    assert renewed["refused"] >= 1 and renewed["signs"] == 1 and renewed["newToken"], renewed
    assert abs(renewed["resumedAt"] - renewed["before"]["time"]) < 1.5, (
        f"it carried on where it was: {renewed}"
    )
    assert renewed["after"]["height"] == 240 and renewed["level"] == renewed["wanted"], renewed
    assert renewed["alerts"] == 0, renewed
    persisting = seen["persisting"]
    assert persisting["said"] == "This link has expired." and persisting["signs"] == 1, persisting
    assert persisting["resumed"]["time"] > persisting["stuck"]["time"] and persisting["alerts"] == 0, (
        persisting
    )
    assert persisting["resumed"]["height"] == 360 and persisting["level"] == persisting["wanted"], persisting
    assert seen["copy"] == {
        "note": "Press Ctrl+C (⌘C on a Mac) to copy the selected snippet.",
        "selected": True,
    }, seen["copy"]
    # the page reads the video again at each state of the captions job, and the player plays on: a new playback
    # link only for a changed stream (a new caption track), which carries on where the player was
    kept = seen["keptPlaying"]
    assert kept["reads"] >= 2 and {"running", kept["captions"]} <= set(kept["states"]), kept
    assert kept["after"]["time"] > kept["ended"]["time"] > kept["watching"]["time"] > 2, kept
    assert not kept["after"]["paused"] and kept["signs"] == kept["loads"], kept
    if kept["signs"] == 0:
        assert kept["pauses"] == 0, f"the same stream was not restarted: {kept}"
    assert seen["analysisQuery"] == {"video_id": body["id"], "limit": "1"}, seen["analysisQuery"]
    # the clip's tone has no speech: its analysis fails, and "Analyse again" runs a new one (which fails alike)
    again = seen["analyseAgain"]
    assert again["status"] == 202 and again["again"] != again["first"] and again["button"] == 1, again
    # a new caption track: the page signs the new stream once, and the player carries on where it was, playing
    new = seen["newTrack"]
    assert new["menu"][0] == "Off" and len(new["menu"]) == 2 and new["signs"] == 2, new
    assert new["loads"] >= new["loadsBefore"] + 1 and not new["after"]["paused"], new
    assert abs(new["playingAt"][-1] - new["tracked"]["time"]) < 1.5 and new["tracked"]["time"] > 2, new
    # a translation of the spoken clip's captions: a third entry; "English", picked and shown, stays so
    kept_track = seen["keptTrack"]
    assert len(kept_track["menu"]) == 3 and kept_track["chosen"] == "English", kept_track
    assert kept_track["shown"] == kept_track["shownBefore"] and len(kept_track["shown"]) == 1, kept_track
    assert kept_track["signs"] == 3 and not kept_track["after"]["paused"], kept_track
    assert seen["errors"] == [], seen["errors"]
