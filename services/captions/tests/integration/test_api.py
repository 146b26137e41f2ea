"""The captions API's refusals, in-process on a fresh schema with the real Postgres, RabbitMQ and file store:
bad requests are answered with a code before anything is held, and an edit that does not land stores nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from captions import tracks
from captions.seeding import seed_track, seed_video
from common import db
from common.storage import ObjectStore
from common.testing.auth import TokenFactory

CUES = [
    {"start": 0.5, "end": 2.5, "text": "Hello there."},
    {"start": 3.0, "end": 5.0, "text": "A second line."},
]


@pytest.fixture
async def api(
    captions_app: Callable[..., Any], database_url: str, fs_store: ObjectStore, token_factory: TokenFactory
) -> Any:
    """The captions api app; ``api.video(audio=...)`` records a video of a new owner, ``api.track(...)`` a track."""
    client, settings = await captions_app("api")
    pool = await db.create_pool(database_url, schema=settings.db_schema)

    async def video(*, audio: str = "aac") -> tuple[uuid.UUID, uuid.UUID]:
        owner = uuid.uuid4()
        async with pool.acquire() as conn:
            return await seed_video(conn, owner_id=owner, audio_codec=audio), owner

    async def track(vid: uuid.UUID, owner: uuid.UUID, cues: list[dict[str, Any]] = CUES) -> str:
        built, violations = tracks.edited(
            [tracks.EditedCue(**c) for c in cues], language="en", duration_s=30.0, fps=25.0
        )
        assert (violations == []) == (cues is CUES)
        async with pool.acquire() as conn:
            row = await seed_track(
                conn, video_id=vid, owner_id=owner, cues=built.records(), quality=built.quality
            )
        return str(row.id)

    client.video, client.track, client.store, client.auth = video, track, fs_store, token_factory.headers
    yield client
    await pool.close()


async def test_a_language_the_model_does_not_speak_is_refused_before_anything_is_held(api: Any) -> None:
    vid, owner = await api.video()
    headers = api.auth(owner)
    r = await api.post(f"/api/v1/videos/{vid}/captions", json={"language": "zz"}, headers=headers)
    problem = await r.json()
    assert r.status == 422 and problem["code"] == "captions.language_unsupported", problem
    assert "zz" in problem["detail"]


async def test_a_video_without_sound_is_refused(api: Any) -> None:
    vid, owner = await api.video(audio="")
    headers = api.auth(owner)
    r = await api.post(f"/api/v1/videos/{vid}/captions", json={"language": "en"}, headers=headers)
    problem = await r.json()
    assert r.status == 422 and problem["code"] == "media.no_audio_stream", problem


@pytest.mark.parametrize("cue_id", ["x --> y", "a\n\n00:00:01.000 --> 00:00:02.000\ninjected", ""])
async def test_a_cue_id_that_would_break_the_webvtt_file_is_refused(api: Any, cue_id: str) -> None:
    vid, owner = await api.video()
    track_id, headers = await api.track(vid, owner), api.auth(owner)
    cues = [{**CUES[0], "id": cue_id}, CUES[1]]
    r = await api.put(f"/api/v1/captions/{track_id}/cues", json={"cues": cues}, headers=headers)
    problem = await r.json()
    assert r.status == 422 and problem["code"] == "validation.invalid", problem


async def test_an_edit_lands_as_the_next_version_and_a_stale_one_stores_nothing(api: Any) -> None:
    vid, owner = await api.video()
    track_id, headers = await api.track(vid, owner), api.auth(owner)
    edit = [{**CUES[0], "id": "c1", "text": "Edited by a person."}, CUES[1]]
    r = await api.put(
        f"/api/v1/captions/{track_id}/cues", json={"cues": edit, "base_version": 1}, headers=headers
    )
    assert r.status == 200, await r.text()
    assert (await r.json())["version"] == 2
    vtt = await api.get(f"/api/v1/captions/{track_id}.vtt", headers=headers)
    body = await vtt.text()
    assert body.startswith("WEBVTT") and "c1\n00:00:00.500 --> 00:00:02.500\nEdited by a person." in body

    stale = await api.put(
        f"/api/v1/captions/{track_id}/cues", json={"cues": CUES, "base_version": 1}, headers=headers
    )
    assert stale.status == 409 and (await stale.json())["code"] == "captions.version_conflict"
    assert not await api.store.exists(f"captions/{vid}/edits/{track_id}/v3.vtt")  # nothing written for it


async def test_the_quality_report_names_the_rules_and_each_cue_that_breaks_one(api: Any) -> None:
    vid, owner = await api.video()
    headers = api.auth(owner)
    clean = await api.get(f"/api/v1/captions/{await api.track(vid, owner)}/quality", headers=headers)
    report = await clean.json()
    assert clean.status == 200 and report["problems"] == [] and set(report["counts"].values()) == {0}, report
    assert report["cue_count"] == 2 and report["language"] == "en"
    assert report["limits"] == {
        "max_chars_per_line": 42.0,
        "max_lines": 2,
        "max_chars_per_second": 20.0,
        "min_duration_s": 0.834,
        "max_duration_s": 7.0,
        "min_gap_ms": 80,
        "half_width_latin": False,
    }
    # cue 2 reads too fast (46 characters in 1.5 s), cue 3 is up for half a second
    rushed = [
        CUES[0],
        {"start": 3.0, "end": 4.5, "text": "Far too many words to read in a second and a half."},
        {"start": 6.0, "end": 6.5, "text": "Blink."},
    ]
    r = await api.get(f"/api/v1/captions/{await api.track(vid, owner, rushed)}/quality", headers=headers)
    report = await r.json()
    assert [(p["number"], p["start_s"], p["end_s"], p["rule"]) for p in report["problems"]] == [
        (2, 3.0, 4.5, "reading_speed"),
        (3, 6.0, 6.5, "min_duration"),
    ], report
    assert report["counts"]["reading_speed"] == 1 and report["counts"]["min_duration"] == 1
    foreign = await api.get(f"/api/v1/captions/{report['track_id']}/quality", headers=api.auth(uuid.uuid4()))
    assert foreign.status == 404 and (await foreign.json())["code"] == "track.not_found"


async def test_a_missing_foreign_or_malformed_id_answers_the_one_not_found_code(api: Any) -> None:
    vid, owner = await api.video()
    tid = await api.track(vid, owner)
    mine, stranger = api.auth(owner), api.auth(uuid.uuid4())
    for path, headers, code in [
        (f"/api/v1/videos/{vid}/captions", stranger, "video.not_found"),
        (f"/api/v1/videos/{uuid.uuid4()}/captions", mine, "video.not_found"),
        ("/api/v1/videos/not-a-uuid/captions", mine, "video.not_found"),
        (f"/api/v1/captions/{tid}.vtt", stranger, "track.not_found"),
        (f"/api/v1/captions/{uuid.uuid4()}.vtt", mine, "track.not_found"),
        ("/api/v1/captions/not-a-uuid.vtt", mine, "track.not_found"),
    ]:
        r = await api.get(path, headers=headers)
        problem = await r.json()
        assert (r.status, problem["code"]) == (404, code), (path, problem)
    r = await api.get(f"/api/v1/videos/{vid}/captions", headers=mine)
    assert r.status == 200 and [t["id"] for t in (await r.json())["items"]] == [tid]
