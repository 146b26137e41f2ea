"""Captions, end to end through the gateway: upload speech → a paid captions job → tracks in the player.

Real processes for every service, real faster-whisper, real RabbitMQ/Postgres/storage, translation through the real
google-genai client against the Gemini stub (it "translates" by spelling each word backwards).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import jiwer
import pytest
import srt
import webvtt

from common.testing.speech import SpeechSample, make_speech

from .stack import Stack
from .test_user_journeys import User, poll, register

pytestmark = pytest.mark.xdist_group("e2e")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


async def _upload_ready(http: aiohttp.ClientSession, user: User, sample: SpeechSample) -> str:
    form = aiohttp.FormData()
    form.add_field("title", "Speech")
    form.add_field("file", sample.path.read_bytes(), filename="speech.mp4", content_type="video/mp4")
    async with http.post(f"{user.base}/api/v1/videos", data=form, headers=user.auth) as r:
        assert r.status == 201, await r.text()
        vid: str = (await r.json())["id"]

    async def ready() -> bool:
        status, body = await user.get(f"/api/v1/videos/{vid}/stream")
        return status == 200 and body["status"] == "ready"

    await poll(ready, timeout=420, what="stream ready", interval=1.0)
    return vid


async def _job_done(user: User, job_id: str, timeout: float = 300) -> dict[str, Any]:
    async def done() -> Any:
        status, job = await user.get(f"/api/v1/jobs/{job_id}")
        return job if status == 200 and job["status"] in ("succeeded", "failed", "canceled") else None

    job: dict[str, Any] = await poll(done, timeout=timeout, what=f"job {job_id} to end", interval=1.0)
    return job


async def _settled_at(user: User, balance: Any, *, what: str) -> None:
    """Wait until the user's balance is ``balance`` with nothing held (the saga has ended)."""

    async def settled() -> bool:
        status, now = await user.get("/api/v1/billing/balance")  # a 429 (100 requests/min) is "not yet"
        return status == 200 and now["balance"] == balance and now.get("held", 0) == 0

    await poll(settled, timeout=45, what=what, interval=1.0)


async def _text(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    async with http.get(url, headers=headers or {}) as r:
        return r.status, await r.text()


async def _subtitle_languages(http: aiohttp.ClientSession, user: User, vid: str) -> tuple[set[str], str, str]:
    status, pb = await user.post(f"/api/v1/videos/{vid}/playback", {"expires_in": 600})
    assert status in (200, 201), pb
    _, master = await _text(http, pb["hls_url"])
    langs = set(re.findall(r'TYPE=SUBTITLES,[^\n]*LANGUAGE="([^"]+)"', master))
    return langs, master, pb["hls_url"]


async def test_a_speech_video_gets_captions_in_its_language_and_a_translation_in_the_player(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Any
) -> None:
    sample = make_speech(
        [
            "The city council approved a new budget on Tuesday. It adds money for schools, parks and public"
            " transport. The mayor said the plan would help families across the region."
        ]
    )
    user = await register(http, e2e_stack.gateway_url)
    vid = await _upload_ready(http, user, sample)
    _, before = await user.get("/api/v1/billing/balance")

    status, answer = await user.post(
        f"/api/v1/videos/{vid}/captions", {"language": "en", "translate_to": ["es"]}
    )
    assert status == 202, answer
    assert answer["job"]["subject"] == {"kind": "video", "id": vid, "title": ""}  # the job names its video
    job = await _job_done(user, answer["job"]["id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["failed_translations"] == []

    status, listing = await user.get(f"/api/v1/videos/{vid}/captions")
    assert status == 200
    tracks = {t["language"]: t for t in listing["items"]}
    assert set(tracks) == {"en", "es"}
    assert tracks["en"]["kind"] == "transcribed" and tracks["es"]["kind"] == "translated"
    for t in tracks.values():
        broken = {rule: n for rule, n in t["quality"].items() if n}
        assert t["cue_count"] > 0 and not broken, (t["language"], broken)  # the professional rules all hold

    # the files, read by independent parsers; the transcript is the script within 10 % WER
    base = f"{user.base}/api/v1/captions/{tracks['en']['id']}"
    status, vtt_text = await _text(http, base + ".vtt", user.auth)
    assert status == 200 and vtt_text.startswith("WEBVTT")
    (tmp_path / "en.vtt").write_text(vtt_text)
    captions = webvtt.read(str(tmp_path / "en.vtt"))
    heard = " ".join(c.text.replace("\n", " ") for c in captions)
    assert jiwer.wer(_words(sample.text), _words(heard)) <= 0.10, heard
    status, srt_text = await _text(http, base + ".srt", user.auth)
    assert status == 200 and len(list(srt.parse(srt_text))) == len(captions)
    status, as_json = await _text(http, base + ".json", user.auth)
    words = [w for c in json.loads(as_json)["cues"] for w in c["words"]]
    assert status == 200 and len(words) >= len(sample.text.split()) * 0.9
    assert all(
        0 <= w["start"] <= w["end"] <= sample.duration_s + 0.5 for w in words
    )  # word times, in the media
    # the translation keeps the transcript's cue ids (nothing shifted), and its files parse too
    es_base = f"{user.base}/api/v1/captions/{tracks['es']['id']}"
    _, es_vtt = await _text(http, es_base + ".vtt", user.auth)
    (tmp_path / "es.vtt").write_text(es_vtt)
    spanish = webvtt.read(str(tmp_path / "es.vtt"))
    en_ids = [c.identifier for c in captions]
    # each Spanish cue is an English cue's id, or an extra cue of a re-flowed sentence (<last id>.<n>), in order
    at = [
        en_ids.index(c.identifier.rsplit(".", 1)[0] if c.identifier not in en_ids else c.identifier)
        for c in spanish
    ]
    assert at == sorted(at) and set(at) >= {0, len(en_ids) - 1} and all(c.text for c in spanish), at
    _, es_srt = await _text(http, es_base + ".srt", user.auth)
    assert len(list(srt.parse(es_srt))) == len(spanish)
    status, _ = await _text(http, base + ".vtt")  # no token, no file
    assert status == 401

    # paid: the hold became a capture of exactly what was delivered (2 per minute + 1 per minute for Spanish)
    await _settled_at(user, before["balance"] - 3, what="the captions to be charged once")

    # in the player: a SUBTITLES group of token-gated segmented WebVTT
    _, master, hls_url = await poll(
        lambda: _languages_when(http, user, vid, {"en", "es"}),
        timeout=30,
        what="subtitles in the master",
        interval=1.0,
    )
    uri = re.search(r'TYPE=SUBTITLES,[^\n]*LANGUAGE="en"[^\n]*URI="([^"]+)"', master)
    assert uri is not None and "token=" in uri.group(1)
    sub_url = hls_url.split("/master.m3u8")[0] + "/" + uri.group(1)
    status, sub_playlist = await _text(http, sub_url)
    assert status == 200 and "#EXT-X-ENDLIST" in sub_playlist
    segment = next(line for line in sub_playlist.splitlines() if line and not line.startswith("#"))
    assert "token=" in segment
    status, first = await _text(http, sub_url.rsplit("/", 1)[0] + "/" + segment)
    assert status == 200 and "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000" in first
    status, _ = await _text(http, sub_url.rsplit("/", 1)[0] + "/" + segment.split("?")[0])
    assert status == 403

    # an edit is checked by the same rules, stored as a new version and re-published to the player
    _, as_json = await _text(http, base + ".json", user.auth)
    cues = json.loads(as_json)["cues"]
    edited = [{"id": c["id"], "start": c["start"], "end": c["end"], "text": c["text"]} for c in cues]
    edited[0]["text"] = "Edited by a person."
    status, bad = await _put(http, user, tracks["en"]["id"], [{**edited[0], "end": edited[0]["start"] + 0.2}])
    assert status == 422 and bad["code"] == "captions.invalid_cues", bad
    assert {v["rule"] for v in bad["violations"]} >= {"min_duration"}, bad
    status, track = await _put(http, user, tracks["en"]["id"], edited, base_version=1)
    assert status == 200 and track["version"] == 2 and track["kind"] == "edited", track

    async def edited_in_player() -> bool:
        _, m = await _text(http, hls_url)
        u = re.search(r'LANGUAGE="en"[^\n]*URI="([^"]+)"', m)
        if u is None:
            return False
        _, pl = await _text(http, hls_url.split("/master.m3u8")[0] + "/" + u.group(1))
        seg = next(line for line in pl.splitlines() if line and not line.startswith("#"))
        _, body = await _text(
            http, hls_url.split("/master.m3u8")[0] + "/" + u.group(1).rsplit("/", 1)[0] + "/" + seg
        )
        return "Edited by a person." in body

    await poll(edited_in_player, timeout=30, what="the edit in the player", interval=1.0)
    status, stale = await _put(http, user, tracks["en"]["id"], edited, base_version=1)
    assert status == 409 and stale["code"] == "captions.version_conflict"

    # a delete removes the track from the player too
    async with http.delete(f"{user.base}/api/v1/captions/{tracks['es']['id']}", headers=user.auth) as r:
        assert r.status == 204
    await poll(
        lambda: _languages_when(http, user, vid, {"en"}),
        timeout=30,
        what="es gone from the master",
        interval=1.0,
    )
    status, _ = await user.get(f"/api/v1/captions/{tracks['es']['id']}.vtt")
    assert status == 404

    # another user sees none of it
    other = await register(http, e2e_stack.gateway_url)
    assert (await other.get(f"/api/v1/videos/{vid}/captions"))[0] == 404
    assert (await other.get(f"/api/v1/captions/{tracks['en']['id']}.vtt"))[0] == 404

    # deleting the video takes its tracks, their files and the player's subtitle segments with it
    async with http.delete(f"{user.base}/api/v1/videos/{vid}", headers=user.auth) as r:
        assert r.status == 204
    await asyncio.sleep(1.0)
    status, _ = await _text(http, sub_url)  # a token issued before the delete
    assert status == 404
    storage = Path(e2e_stack.env["STORAGE_URL"].removeprefix("file://"))

    async def tracks_gone() -> bool:
        status, _ = await user.get(f"/api/v1/captions/{tracks['en']['id']}.vtt")
        leftovers = [
            p for d in ("captions", "streams") for p in (storage / d / vid).rglob("*") if p.is_file()
        ]
        return status == 404 and not leftovers

    await poll(tracks_gone, timeout=30, what="the tracks and their files removed", interval=1.0)


async def _languages_when(
    http: aiohttp.ClientSession, user: User, vid: str, expected: set[str]
) -> tuple[set[str], str, str] | None:
    found = await _subtitle_languages(http, user, vid)
    return found if found[0] == expected else None


async def _put(
    http: aiohttp.ClientSession,
    user: User,
    track_id: str,
    cues: list[dict[str, Any]],
    base_version: int | None = None,
) -> tuple[int, Any]:
    body: dict[str, Any] = {"cues": cues}
    if base_version is not None:
        body["base_version"] = base_version
    async with http.put(f"{user.base}/api/v1/captions/{track_id}/cues", json=body, headers=user.auth) as r:
        return r.status, await r.json(content_type=None)


async def test_silence_gets_no_cues_and_a_failed_job_is_refunded(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    user = await register(http, e2e_stack.gateway_url)
    speech = make_speech(["Good morning and welcome to the show.", 12.0, "That is all for today, goodbye."])
    vid = await _upload_ready(http, user, speech)
    status, answer = await user.post(f"/api/v1/videos/{vid}/captions", {"language": "auto"})
    assert status == 202, answer
    job = await _job_done(user, answer["job"]["id"])
    assert job["status"] == "succeeded", job
    _, listing = await user.get(f"/api/v1/videos/{vid}/captions")
    (track,) = listing["items"]
    assert track["language"] == "en" and sum(track["quality"].values()) == 0
    _, as_json = await _text(http, f"{user.base}/api/v1/captions/{track['id']}.json", user.auth)
    silence = speech.silences[0]
    for cue in json.loads(as_json)["cues"]:
        assert cue["end"] <= silence[0] + 0.3 or cue["start"] >= silence[1] - 0.3, cue  # nothing invented

    # pure silence: no speech → the job fails with a code and its hold is released in full
    quiet = await _upload_ready(http, user, make_speech([6.0]))
    _, before = await user.get("/api/v1/billing/balance")
    status, answer = await user.post(f"/api/v1/videos/{quiet}/captions", {"language": "en"})
    assert status == 202, answer
    job = await _job_done(user, answer["job"]["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "captions.no_speech", job

    await _settled_at(user, before["balance"], what="the hold to be released")
    _, listing = await user.get(f"/api/v1/videos/{quiet}/captions")
    assert listing["items"] == []


LONG_SPEECH = [
    "Good morning, and welcome to the weekly news from our small town. The library will open a new reading room"
    " next month. Children can borrow books, play games, and meet their friends after school.",
] * 5


async def _stage(user: User, job_id: str, stage: str) -> None:
    async def there() -> bool:
        status, job = await user.get(f"/api/v1/jobs/{job_id}")
        return status == 200 and job["status"] == "running" and job["stage"].startswith(stage)

    await poll(there, timeout=120, what=f"job {job_id} at {stage}")


async def test_cancel_during_transcription_releases_the_hold(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    user = await register(http, e2e_stack.gateway_url)
    vid = await _upload_ready(http, user, make_speech(LONG_SPEECH))
    _, before = await user.get("/api/v1/billing/balance")
    status, answer = await user.post(f"/api/v1/videos/{vid}/captions", {"language": "en"})
    assert status == 202, answer
    job_id = answer["job"]["id"]
    await _stage(user, job_id, "transcribing")
    status, _ = await user.post(f"/api/v1/jobs/{job_id}/cancel", {})
    assert status in (200, 202), status
    job = await _job_done(user, job_id)
    assert job["status"] == "canceled" and job["error"]["code"] == "job.canceled", job

    await _settled_at(user, before["balance"], what="the hold to be released")
    assert (await user.get(f"/api/v1/videos/{vid}/captions"))[1]["items"] == []


async def test_an_unaffordable_request_fails_credits_insufficient_without_running(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    user = await register(http, e2e_stack.gateway_url)
    vid = await _upload_ready(http, user, make_speech(["A short line to caption."]))
    _, me = await user.get("/api/v1/me")
    _, balance = await user.get("/api/v1/billing/balance")
    # the operator's adjustment leaves one credit: a captions minute costs two
    drained = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "billing",
            "adjust",
            "--account",
            me["id"],
            "--amount",
            str(1 - balance["balance"]),
            "--reason",
            "e2e: drain",
        ],
        cwd=e2e_stack.workdir,
        env=e2e_stack.service_env("billing"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert drained.returncode == 0, drained.stdout + drained.stderr
    status, answer = await user.post(f"/api/v1/videos/{vid}/captions", {"language": "en"})
    assert status == 202, answer
    job = await _job_done(user, answer["job"]["id"], timeout=60)
    assert job["status"] == "failed" and job["error"]["code"] == "credits.insufficient", job
    assert job["progress"] == 0  # never ran: no stage past awaiting credits
    _, after = await user.get("/api/v1/billing/balance")
    assert after["balance"] == 1 and after.get("held", 0) == 0
    assert (await user.get(f"/api/v1/videos/{vid}/captions"))[1]["items"] == []


async def test_a_failed_translation_captures_only_what_was_delivered(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    user = await register(http, e2e_stack.gateway_url)
    vid = await _upload_ready(
        http, user, make_speech(["The weather will be sunny all week, with a light wind."])
    )
    _, before = await user.get("/api/v1/billing/balance")
    body = {"language": "en", "translate_to": ["es", "de"]}  # the stub answers German with garbage
    status, answer = await user.post(f"/api/v1/videos/{vid}/captions", body)
    assert status == 202, answer
    job = await _job_done(user, answer["job"]["id"])
    assert job["status"] == "succeeded", job
    assert [f["language"] for f in job["result"]["failed_translations"]] == ["de"]
    assert job["result"]["failed_translations"][0]["code"].startswith("captions.translation_")
    _, listing = await user.get(f"/api/v1/videos/{vid}/captions")
    assert sorted(t["language"] for t in listing["items"]) == ["en", "es"]
    # held 2 + 1 + 1, captured 2 + 1: German's share is released
    await _settled_at(
        user, before["balance"] - 3, what="the transcript and Spanish to be charged, German released"
    )
