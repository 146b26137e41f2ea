"""Probing real files with PyAV: what is accepted, what is refused, and with which code."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.jobs import JobFailure
from common.testing.media import make_video
from ingest.media import Limits, probe

from ..conftest import make_rotated

LIMITS = Limits(max_duration_s=3600, max_dimension=8192, min_dimension=16)


def test_probe_reports_what_the_file_is(mp4: Path) -> None:
    p = probe(mp4, LIMITS)
    assert (p.container, p.width, p.height, p.rotation) == ("mp4", 320, 240, 0)
    assert (p.video_codec, p.audio_codec) == ("h264", "aac")
    assert p.fps == 25 and 1.9 <= p.duration_s <= 2.2
    assert p.size_bytes == mp4.stat().st_size and p.content_type == "video/mp4"


@pytest.mark.parametrize(("degrees", "size"), [(90, (240, 320)), (180, (320, 240)), (270, (240, 320))])
def test_rotated_video_reports_display_dimensions(
    tmp_path: Path, degrees: int, size: tuple[int, int]
) -> None:
    p = probe(make_rotated(tmp_path / "portrait.mp4", degrees), LIMITS)
    assert ((p.width, p.height), p.rotation) == (size, degrees)


def test_webm_is_recognised(tmp_path: Path) -> None:
    webm = make_video(
        seconds=1,
        width=160,
        height=120,
        vcodec="libvpx-vp9",
        container="webm",
        audio=False,
        directory=tmp_path,
    )
    p = probe(webm, LIMITS)
    assert (p.container, p.video_codec, p.content_type) == ("webm", "vp9", "video/webm")


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("empty", "media.unreadable"),
        ("truncated", "media.unreadable"),
        ("text", "media.unreadable"),
        ("audio", "media.no_video_stream"),
    ],
)
def test_bad_media_is_refused_with_its_code(bad_media: dict[str, Path], case: str, code: str) -> None:
    with pytest.raises(JobFailure) as err:
        probe(bad_media[case], LIMITS)
    assert err.value.code == code


def test_audio_only_is_accepted_when_asked(bad_media: dict[str, Path]) -> None:
    p = probe(bad_media["audio"], LIMITS, allow_audio_only=True)
    assert p.audio_only and p.audio_codec == "aac" and p.container == "m4a" and p.width == 0


def test_limits_on_duration_and_dimensions(mp4: Path) -> None:
    with pytest.raises(JobFailure) as err:
        probe(mp4, Limits(max_duration_s=1.0, max_dimension=8192, min_dimension=16))
    assert err.value.code == "media.too_long"
    with pytest.raises(JobFailure) as err:
        probe(mp4, Limits(max_duration_s=60, max_dimension=300, min_dimension=16))
    assert err.value.code == "media.bad_dimensions"
    with pytest.raises(JobFailure) as err:
        probe(mp4, Limits(max_duration_s=60, max_dimension=8192, min_dimension=256))
    assert err.value.code == "media.bad_dimensions"


def test_mp4_cut_after_a_front_moov_is_truncated(tmp_path: Path, mp4: Path) -> None:
    """A faststart MP4 (index first) that lost its tail still opens; its index gives it away."""
    import av

    fast = tmp_path / "fast.mp4"
    with av.open(str(mp4)) as src, av.open(str(fast), "w", options={"movflags": "faststart"}) as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for pkt in src.demux():
            if pkt.dts is None:
                continue
            pkt.stream = streams[pkt.stream.index]
            dst.mux(pkt)
    probe(fast, LIMITS)  # whole: fine
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[: int(fast.stat().st_size * 0.7)])
    with pytest.raises(JobFailure) as err:
        probe(cut, LIMITS)
    assert err.value.code == "media.unreadable"
