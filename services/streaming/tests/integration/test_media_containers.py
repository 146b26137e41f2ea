"""The containers people upload each become a ready stream whose renditions decode (real worker, PyAV, RabbitMQ).

MPEG-TS carries its AAC ADTS-framed: stream-copying it into fMP4 once failed with ``[Errno 1] Operation not
permitted`` (issue 14); H.264/AAC in TS, MOV and MKV is stream-copied, VP9/Opus (WebM) and MPEG-4/MP3 (AVI) are
transcoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import pytest

from common.storage import ObjectStore
from common.testing.media import make_video
from common.testing.waiting import wait_for

from .test_media_pipeline import fetch_prefix, ingest, parse_master, types_for

pytestmark = pytest.mark.timeout(180)

CONTAINERS = {
    "ts": {},
    "mov": {},
    "mkv": {},
    "webm": {"vcodec": "libvpx-vp9", "acodec": "libopus"},
    "avi": {"vcodec": "mpeg4", "acodec": "libmp3lame"},
}


@pytest.mark.parametrize("container", list(CONTAINERS))
async def test_each_uploaded_container_becomes_a_ready_stream_that_decodes(
    media_env: Any, fs_store: ObjectStore, tmp_path: Path, container: str
) -> None:
    env = await media_env(fs_store)
    src = make_video(seconds=2, width=320, height=240, fps=25, container=container, **CONTAINERS[container])
    event = await ingest(env, src)
    vid = event.video_id
    await wait_for(
        lambda: {"stream.ready.v1", "stream.failed.v1"} & set(types_for(env, vid)), timeout=120, interval=0.1
    )
    failed = [e for e in env.events if e.type == "stream.failed.v1" and e.video_id == vid]
    assert not failed, (failed[0].code, failed[0].message)
    copyable = container in ("ts", "mov", "mkv")
    playable = next(e for e in env.events if e.type == "stream.playable.v1" and e.video_id == vid)
    assert ("src" in playable.renditions) == copyable  # H.264/AAC is remuxed at once, the rest transcoded

    local = tmp_path / "stream"
    await fetch_prefix(fs_store, f"streams/{vid}/", local)
    variants, media = parse_master((local / "master.m3u8").read_text())
    assert variants and [m["URI"] for m in media if m["TYPE"] == "AUDIO"] == ["audio/index.m3u8"]
    for v in variants:
        with av.open(str(local / v["URI"])) as c:
            frames = sum(1 for _ in c.decode(video=0))
        assert frames >= 48, (v["URI"], frames)  # 2 s at 25 fps
    with av.open(str(local / "audio" / "index.m3u8")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert sum(f.samples for f in c.decode(audio=0)) >= 2 * 48000 * 0.9
    if copyable:  # the stream copy itself plays: video and its copied AAC
        with av.open(str(local / "src" / "index.m3u8")) as c:
            assert sum(1 for _ in c.decode(video=0)) >= 48
