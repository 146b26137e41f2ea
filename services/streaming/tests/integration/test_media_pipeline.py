"""Transcoding end to end on real RabbitMQ, Postgres, both object stores and PyAV."""

from __future__ import annotations

import io
import math
import os
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import pytest
from PIL import Image

from common.events.captions import CaptionsCompleted, CaptionsTracksChanged, CaptionTrackRef
from common.events.ingest import VideoIngested
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.media import make_audio, make_video
from common.testing.waiting import wait_for
from streaming import store as media_store
from streaming.media.hls import parse_attributes, parse_media_playlist

pytestmark = pytest.mark.timeout(180)


async def ingest(env: Any, src: Path, *, owner: uuid.UUID | None = None) -> VideoIngested:
    """Store an original and announce it as ingest does."""
    vid = uuid.uuid4()
    key = f"originals/{vid}/source{src.suffix}"
    await env.store.put_file(key, src)
    event = VideoIngested(
        video_id=vid, owner_id=owner or uuid.uuid4(), storage_key=key, duration_s=0.0, producer="ingest"
    )
    await env.bus.publish(event)
    return event


async def transcoding(env: Any) -> Any:
    """The transcode job's row once it is running its ladder pass, else None."""
    async with env.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT id, status, stage FROM jobs")
    return row if row and row["status"] == "running" and row["stage"] == "transcoding" else None


def types_for(env: Any, vid: uuid.UUID) -> list[str]:
    return [e.type for e in env.events if e.video_id == vid]


async def playable_then_ready(env: Any, vid: uuid.UUID) -> Any:
    """The ``stream.playable.v1`` of ``vid``, once ``stream.ready.v1`` followed it."""
    await wait_for(lambda: "stream.ready.v1" in types_for(env, vid), timeout=90, interval=0.05)
    kinds = types_for(env, vid)
    assert kinds.index("stream.playable.v1") < kinds.index("stream.ready.v1")
    return next(e for e in env.events if e.type == "stream.playable.v1" and e.video_id == vid)


async def fetch_prefix(st: ObjectStore, prefix: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a test helper on tmp files
    async for obj in st.list(prefix):
        rel = obj.key.removeprefix(prefix)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(await st.read_bytes(obj.key))


def parse_master(text: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(variants with their URI, EXT-X-MEDIA entries)."""
    variants, media = [], []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = parse_attributes(line.removeprefix("#EXT-X-STREAM-INF:"))
            attrs["URI"] = lines[i + 1]
            variants.append(attrs)
        elif line.startswith("#EXT-X-MEDIA:"):
            media.append(parse_attributes(line.removeprefix("#EXT-X-MEDIA:")))
    return variants, media


def segment_bitrates(directory: Path) -> list[float]:
    _, segs = parse_media_playlist((directory / "index.m3u8").read_text())
    return [(directory / s.uri).stat().st_size * 8 / s.duration_s for s in segs]


def decode_rendition(directory: Path) -> tuple[int, int, int, list[float]]:
    """(frames, width, height, keyframe times) decoded by PyAV through the rendition's playlist."""
    frames, w, h, keys = 0, 0, 0, []
    with av.open(str(directory / "index.m3u8")) as c:
        vs = c.streams.video[0]
        for f in c.decode(vs):
            frames += 1
            w, h = f.width, f.height
            if f.key_frame:
                keys.append(round(float(f.time), 3))
    return frames, w, h, keys


async def test_ingested_video_becomes_playable_then_ready_and_every_rendition_decodes(
    store: ObjectStore, media_env: Any, token_factory: TokenFactory, tmp_path: Path
) -> None:
    env = await media_env(store)
    src = make_video(seconds=4, width=640, height=360, fps=25, audio=True)
    event = await ingest(env, src)
    vid = event.video_id

    playable = await playable_then_ready(env, vid)
    assert "src" in playable.renditions  # H.264/AAC source: the stream copy made it playable

    # the job's progress went out on the bus as it ran: to its owner, rising, ending at 100 %
    async def finished() -> bool:
        return any(p.owner_id == event.owner_id and p.status == "succeeded" for p in env.progress)

    await wait_for(finished, timeout=30, interval=0.1)
    snaps = sorted((p for p in env.progress if p.owner_id == event.owner_id), key=lambda p: p.seq)
    assert {p.kind for p in snaps} == {"transcode"} and len({p.job_id for p in snaps}) == 1
    assert "running" in [p.status for p in snaps] and (snaps[-1].status, snaps[-1].percent) == (
        "succeeded",
        100,
    )
    percents = [p.percent for p in snaps]
    assert percents == sorted(percents) and any(0 < p < 100 for p in percents), percents

    local = tmp_path / "stream"
    await fetch_prefix(store, f"streams/{vid}/", local)
    variants, media = parse_master((local / "master.m3u8").read_text())
    assert [v["URI"] for v in variants] == ["360p/index.m3u8", "240p/index.m3u8"]  # never upscaled
    audio = [m for m in media if m["TYPE"] == "AUDIO"]
    assert len(audio) == 1 and audio[0]["URI"] == "audio/index.m3u8"
    audio_rates = segment_bitrates(local / "audio")
    all_keys = []
    for v in variants:
        rdir = local / v["URI"].rsplit("/", 1)[0]
        frames, w, h, keys = decode_rendition(rdir)
        assert f"{w}x{h}" == v["RESOLUTION"]
        assert frames == 100  # 4 s at 25 fps, constant rate
        rates = segment_bitrates(rdir)
        assert int(v["BANDWIDTH"]) == math.ceil(max(rates)) + math.ceil(max(audio_rates))
        avg_expected = sum(rates) / len(rates)
        assert abs(int(v["AVERAGE-BANDWIDTH"]) - int(v["BANDWIDTH"])) <= int(v["BANDWIDTH"])
        assert int(v["AVERAGE-BANDWIDTH"]) >= avg_expected * 0.9
        with av.open(str(rdir / "index.m3u8")) as c:
            avcc = bytes(c.streams.video[0].codec_context.extradata or b"")
        assert (
            v["CODECS"] == f"avc1.{avcc[1]:02X}{avcc[2]:02X}{avcc[3]:02X},mp4a.40.2"
        )  # profile/level as encoded
        all_keys.append(keys)
    assert all_keys[0] == all_keys[1] == [0.0, 2.0]  # aligned 2-s GOPs in every rendition
    with av.open(str(local / "audio" / "index.m3u8")) as c:
        assert sum(f.samples for f in c.decode(audio=0)) >= 4 * 48000 * 0.95

    # poster, sprite and its WebVTT index
    poster = Image.open(io.BytesIO(await store.read_bytes(f"thumbs/{vid}/poster.jpg")))
    assert poster.size == (640, 360)
    sprite = Image.open(io.BytesIO(await store.read_bytes(f"thumbs/{vid}/sprite.jpg")))
    vtt = (await store.read_bytes(f"thumbs/{vid}/thumbnails.vtt")).decode()
    cues = [line for line in vtt.splitlines() if line.startswith("sprite.jpg#xywh=")]
    assert vtt.startswith("WEBVTT") and len(cues) == 4
    for cue in cues:
        x, y, w, h = map(int, cue.split("=", 1)[1].split(","))
        assert x + w <= sprite.size[0] and y + h <= sprite.size[1]

    # the API: the owner sees the ladder, anybody else gets 404
    resp = await env.api.get(f"/api/v1/videos/{vid}/stream", headers=token_factory.headers(event.owner_id))
    assert resp.status == 200
    doc = await resp.json()
    assert doc["status"] == "ready" and doc["error"] is None
    assert [r["name"] for r in doc["renditions"]] == ["360p", "240p", "audio"]
    assert doc["poster_url"] == f"/play/{vid}/thumbs/poster.jpg"
    other = await env.api.get(f"/api/v1/videos/{vid}/stream", headers=token_factory.headers(uuid.uuid4()))
    assert other.status == 404 and (await other.json())["code"] == "stream.not_found"
    assert (await env.api.get(f"/api/v1/videos/{vid}/stream")).status == 401

    # the transcode job succeeded with the renditions as its result
    async with env.pool.acquire() as conn:
        job = await conn.fetchrow("SELECT status, progress, result, kind FROM jobs")
    assert job["kind"] == "transcode" and job["status"] == "succeeded" and job["progress"] == 100
    assert set(job["result"]["renditions"]) >= {"360p", "240p", "audio", "src"}


async def test_corrupt_source_ends_in_error_with_a_stable_code(
    media_env: Any, fs_store: ObjectStore, tmp_path: Path, token_factory: TokenFactory
) -> None:
    env = await media_env(fs_store)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(20_000))
    event = await ingest(env, bad)
    await wait_for(lambda: "stream.failed.v1" in types_for(env, event.video_id), timeout=30, interval=0.05)
    failed = next(e for e in env.events if e.type == "stream.failed.v1")
    assert failed.code == "media.unreadable"
    # a plain sentence: what PyAV said (errno, error names, our scratch paths) stays in the log (issue 14)
    assert not re.search(r"Error|Errno|/tmp|\(", failed.message), failed.message
    resp = await env.api.get(
        f"/api/v1/videos/{event.video_id}/stream", headers=token_factory.headers(event.owner_id)
    )
    doc = await resp.json()
    assert doc["status"] == "error" and doc["error"]["code"] == "media.unreadable"
    async with env.pool.acquire() as conn:
        job = await conn.fetchrow("SELECT status, error FROM jobs")
    assert job["status"] == "failed" and job["error"]["code"] == "media.unreadable"


async def test_an_audio_only_file_streams_as_audio_only_hls(
    media_env: Any, fs_store: ObjectStore, tmp_path: Path, token_factory: TokenFactory
) -> None:
    """What ingest lets through with ``allow_audio_only`` (a podcast, a voice memo) plays, as Mux does it."""
    env = await media_env(fs_store, streaming_dash=True)
    path = make_audio(seconds=2.0)
    event = await ingest(env, path)
    vid = event.video_id
    await wait_for(
        lambda: {"stream.ready.v1", "stream.failed.v1"} & set(types_for(env, vid)), timeout=60, interval=0.05
    )
    assert types_for(env, vid) == ["stream.playable.v1", "stream.ready.v1"], [
        (e.type, getattr(e, "message", "")) for e in env.events
    ]
    local = tmp_path / "stream"
    await fetch_prefix(env.store, f"streams/{vid}/", local)
    master = (local / "master.m3u8").read_text()
    variants, media = parse_master(master)
    assert [(v["URI"], v["CODECS"]) for v in variants] == [("audio/index.m3u8", "mp4a.40.2")]
    assert "RESOLUTION" not in variants[0] and not media  # the audio is the variant, not a group
    with av.open(str(local / "master.m3u8")) as c:
        assert not c.streams.video
        assert sum(f.samples for f in c.decode(audio=0)) >= 2 * 48000 * 0.95
    h = token_factory.headers(event.owner_id)
    doc = await (await env.api.get(f"/api/v1/videos/{vid}/stream", headers=h)).json()
    assert doc["status"] == "ready" and [r["kind"] for r in doc["renditions"]] == ["audio"]
    assert doc["has_dash"] is False and doc["poster_url"] is None and (doc["width"], doc["height"]) == (0, 0)
    pb = await (await env.api.post(f"/api/v1/videos/{vid}/playback", headers=h)).json()
    assert pb["dash_url"] is None and pb["poster_url"] is None
    url = urlsplit(pb["hls_url"])
    resp = await env.api.get(f"{url.path}?{url.query}")
    assert resp.status == 200 and "audio/index.m3u8?token=" in await resp.text()


async def test_captions_completed_adds_a_subtitles_group(media_env: Any, fs_store: ObjectStore) -> None:
    env = await media_env(fs_store)
    event = await ingest(env, make_video(seconds=2, width=320, height=240))
    vid = event.video_id
    await wait_for(lambda: "stream.ready.v1" in types_for(env, vid), timeout=60, interval=0.05)
    vtt = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there\n"
    await fs_store.put(f"captions/{vid}/ko.vtt", vtt)
    await fs_store.put(f"captions/{vid}/en.vtt", vtt)
    await env.bus.publish(
        CaptionsCompleted(
            caption_job_id=uuid.uuid4(),
            video_id=vid,
            owner_id=event.owner_id,
            producer="captions",
            tracks=[
                CaptionTrackRef(
                    language="ko", label="한국어", vtt_key=f"captions/{vid}/ko.vtt", is_original=True
                ),
                CaptionTrackRef(language="en", label="English", vtt_key=f"captions/{vid}/en.vtt"),
            ],
        )
    )

    async def subs_listed() -> list[dict[str, str]]:
        _, media = parse_master((await fs_store.read_bytes(f"streams/{vid}/master.m3u8")).decode())
        return [m for m in media if m["TYPE"] == "SUBTITLES"]

    subs = await wait_for(subs_listed, timeout=20, interval=0.05)
    assert {(m["LANGUAGE"], m["NAME"], m["URI"]) for m in subs} == {
        ("en", "English", "subs/en/index.m3u8"),
        ("ko", "한국어", "subs/ko/index.m3u8"),
    }
    # captions stay off until the viewer turns them on; a player may pick one by the viewer's settings
    assert all((m["DEFAULT"], m["AUTOSELECT"], m["FORCED"]) == ("NO", "YES", "NO") for m in subs)
    master = (await fs_store.read_bytes(f"streams/{vid}/master.m3u8")).decode()
    assert all(
        'SUBTITLES="subs"' in line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")
    )
    # segmented WebVTT: every segment maps its cue times onto the media timeline
    playlist = (await fs_store.read_bytes(f"streams/{vid}/subs/en/index.m3u8")).decode()
    assert "#EXT-X-ENDLIST" in playlist and "#EXT-X-PLAYLIST-TYPE:VOD" in playlist
    segments = [line for line in playlist.splitlines() if line.endswith(".vtt")]
    assert segments
    first = (await fs_store.read_bytes(f"streams/{vid}/subs/en/{segments[0]}")).decode()
    assert first.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n")
    assert "00:00:00.000 --> 00:00:01.500\nHello there" in first


async def test_tracks_changed_makes_the_subtitles_group_exactly_the_live_tracks(
    media_env: Any, fs_store: ObjectStore
) -> None:
    env = await media_env(fs_store)
    event = await ingest(env, make_video(seconds=2, width=320, height=240))
    vid = event.video_id
    await wait_for(lambda: "stream.ready.v1" in types_for(env, vid), timeout=60, interval=0.05)
    for lang in ("en", "es"):
        await fs_store.put(f"captions/{vid}/{lang}.vtt", b"WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nHola\n")
    refs = {
        lang: CaptionTrackRef(language=lang, label=lang.upper(), vtt_key=f"captions/{vid}/{lang}.vtt")
        for lang in ("en", "es")
    }

    async def listed() -> set[str]:
        _, media = parse_master((await fs_store.read_bytes(f"streams/{vid}/master.m3u8")).decode())
        return {m["LANGUAGE"] for m in media if m["TYPE"] == "SUBTITLES"}

    changed = CaptionsTracksChanged(
        video_id=vid, owner_id=event.owner_id, producer="captions", tracks=list(refs.values())
    )
    await env.bus.publish(changed)
    assert await wait_for(lambda: _eq(listed(), {"en", "es"}), timeout=20, interval=0.05)
    # the Spanish track is deleted: the next complete set has only English, and its files go
    await env.bus.publish(
        CaptionsTracksChanged(video_id=vid, owner_id=event.owner_id, producer="captions", tracks=[refs["en"]])
    )
    assert await wait_for(lambda: _eq(listed(), {"en"}), timeout=20, interval=0.05)
    assert [o async for o in fs_store.list(f"streams/{vid}/subs/es/")] == []
    # no track left: the group disappears from the master
    await env.bus.publish(CaptionsTracksChanged(video_id=vid, owner_id=event.owner_id, producer="captions"))
    assert await wait_for(lambda: _eq(listed(), set()), timeout=20, interval=0.05)
    master = (await fs_store.read_bytes(f"streams/{vid}/master.m3u8")).decode()
    assert "SUBTITLES" not in master


async def _eq(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_dash_presentation_when_enabled(media_env: Any, fs_store: ObjectStore, tmp_path: Path) -> None:
    env = await media_env(fs_store, streaming_dash=True)
    event = await ingest(env, make_video(seconds=4, width=640, height=360))
    vid = event.video_id
    await wait_for(lambda: "stream.ready.v1" in types_for(env, vid), timeout=60, interval=0.05)
    local = tmp_path / "dash"
    await fetch_prefix(fs_store, f"streams/{vid}/", local)
    mpd = (local / "manifest.mpd").read_text()
    assert mpd.count("<AdaptationSet") == 2  # one video set with every rung, one audio set
    # PyAV's FFmpeg has no DASH demuxer: play each representation as a player does, init + media segments
    ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
    root = ET.fromstring(mpd)
    video_set = next(a for a in root.iter(f"{{{ns['m']}}}AdaptationSet") if a.get("contentType") == "video")
    sizes = set()
    for rep in video_set.findall("m:Representation", ns):
        rid = rep.get("id")
        tmpl = rep.find("m:SegmentTemplate", ns)
        assert tmpl is not None
        init = local / tmpl.get("initialization", "").replace("$RepresentationID$", str(rid))
        chunks = sorted((local / "dash").glob(f"chunk-{rid}-*.m4s"))
        joined = tmp_path / f"rep{rid}.mp4"
        joined.write_bytes(init.read_bytes() + b"".join(c.read_bytes() for c in chunks))
        with av.open(str(joined)) as c:
            frames = list(c.decode(video=0))
        sizes.add((frames[0].width, frames[0].height))
        assert len(frames) == 100
    assert sizes == {(640, 360), (426, 240)}
    async with env.pool.acquire() as conn:
        stream = await media_store.get_stream(conn, video_id=vid)
    assert stream is not None and stream.has_dash


async def test_a_source_that_cannot_be_copied_is_playable_on_its_lowest_rung_before_the_ladder(
    media_env: Any, fs_store: ObjectStore, tmp_path: Path
) -> None:
    env = await media_env(fs_store)
    src = make_video(seconds=4, width=640, height=360, fps=25, vcodec="mpeg4", bitrate=800_000)
    event = await ingest(env, src)
    vid = event.video_id
    playable = await playable_then_ready(env, vid)
    # the first pass made only the lowest rung and the audio: 360p did not exist yet
    assert sorted(playable.renditions) == ["240p", "audio"]
    local = tmp_path / "stream"
    await fetch_prefix(fs_store, f"streams/{vid}/", local)
    assert "#EXT-X-ENDLIST" in (local / "240p" / "index.m3u8").read_text()
    frames, w, h, keys = decode_rendition(local / "240p")
    assert (frames, w, h, keys) == (100, 426, 240, [0.0, 2.0])  # complete, aligned with the other rungs
    assert decode_rendition(local / "360p")[3] == keys
    variants, _ = parse_master((local / "master.m3u8").read_text())
    assert [v["URI"] for v in variants] == ["360p/index.m3u8", "240p/index.m3u8"]
    async with env.pool.acquire() as conn:
        counts = await media_store.count_renditions(conn, video_id=vid)
        job = await conn.fetchrow("SELECT status, progress FROM jobs")
    assert counts == {"240p": 1, "360p": 1, "audio": 1}
    assert (job["status"], job["progress"]) == ("succeeded", 100)


async def test_a_phone_video_held_upright_streams_upright_through_the_worker(
    media_env: Any, fs_store: ObjectStore, tmp_path: Path, token_factory: TokenFactory
) -> None:
    """640x360 pixels with a 90° display matrix: players ignore rotation in fMP4, so the ladder is 9:16 pixels."""
    env = await media_env(fs_store)
    src = make_video(seconds=2, width=640, height=360, fps=25, rotate=90)
    event = await ingest(env, src)
    vid = event.video_id
    await wait_for(lambda: "stream.ready.v1" in types_for(env, vid), timeout=90, interval=0.05)
    playable = next(e for e in env.events if e.type == "stream.playable.v1" and e.video_id == vid)
    assert "src" not in playable.renditions  # a rotated source is never stream-copied
    local = tmp_path / "stream"
    await fetch_prefix(fs_store, f"streams/{vid}/", local)
    variants, _ = parse_master((local / "master.m3u8").read_text())
    assert [v["RESOLUTION"] for v in variants] == ["360x640", "240x426"]
    for v in variants:
        _, w, h, _ = decode_rendition(local / v["URI"].rsplit("/", 1)[0])
        assert f"{w}x{h}" == v["RESOLUTION"]
    doc = await (
        await env.api.get(f"/api/v1/videos/{vid}/stream", headers=token_factory.headers(event.owner_id))
    ).json()
    assert (doc["width"], doc["height"]) == (360, 640)


async def test_cancel_stops_a_running_transcode_and_the_stream_ends_canceled(
    media_env: Any, fs_store: ObjectStore, token_factory: TokenFactory
) -> None:
    from common.events.jobs import JobCancelRequested

    env = await media_env(fs_store, streaming_x264_preset="slow", streaming_copy_first=False)
    event = await ingest(env, make_video(seconds=6, width=640, height=360, fps=30))
    vid = event.video_id

    job = await wait_for(lambda: transcoding(env), timeout=30, interval=0.05)
    await env.bus.publish(JobCancelRequested(job_id=job["id"], owner_id=event.owner_id, kind="transcode"))
    await wait_for(lambda: "stream.failed.v1" in types_for(env, vid), timeout=20, interval=0.05)
    failed = next(e for e in env.events if e.type == "stream.failed.v1" and e.video_id == vid)
    assert failed.code == "job.canceled"
    async with env.pool.acquire() as conn:
        ended = await conn.fetchrow("SELECT status, error FROM jobs")
        stream = await media_store.get_stream(conn, video_id=vid)
    assert ended["status"] == "canceled" and ended["error"]["code"] == "job.canceled"
    assert stream is not None and stream.status == "error" and stream.error is not None
    assert stream.error["code"] == "job.canceled"
    assert "stream.ready.v1" not in types_for(env, vid)
    resp = await env.api.get(f"/api/v1/videos/{vid}/stream", headers=token_factory.headers(event.owner_id))
    assert (await resp.json())["status"] == "error"
