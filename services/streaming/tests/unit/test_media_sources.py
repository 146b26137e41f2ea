"""The pipeline on awkward sources (real PyAV encodes, tiny files): rotation, odd sizes, VFR, no audio, 4:3, 9:16."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from common.testing.media import make_video
from streaming import media
from streaming.media.hls import AudioMedia, Variant, avc_codec_string, master_playlist, parse_media_playlist


def write_video(
    path: Path, *, width: int, height: int, times: list[float], rotation: int = 0, audio: bool = False
) -> Path:
    """An H.264 file whose frames carry the given timestamps (seconds); a display rotation if asked."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"preset": "ultrafast"}
        if rotation:
            s.set_display_rotation(rotation)
        for i, t in enumerate(times):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[: height // 2, : width // 3] = 255  # a white block top-left: shows which way is up
            img[..., 2] = (i * 7) % 256
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = round(t * 1000), Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def ladder(src: Path, tmp: Path, **kw: object) -> tuple[media.SourceInfo, media.LadderResult]:
    info = media.probe(src)
    rungs = media.plan_ladder(info)
    res = media.transcode_ladder(
        src,
        tmp,
        info=info,
        rungs=rungs,
        encode_audio=info.has_audio,
        thumbnails=media.plan_thumbnails(info),
        settings=media.EncoderSettings(preset="ultrafast"),
    )
    return info, res


def keyframe_times(directory: Path) -> list[float]:
    with av.open(str(directory / "index.m3u8")) as c:
        return [round(float(f.time), 3) for f in c.decode(video=0) if f.key_frame]


def first_frame(directory: Path) -> np.ndarray:
    with av.open(str(directory / "index.m3u8")) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def test_rotated_phone_video_is_turned_upright(tmp_path: Path) -> None:
    src = write_video(
        tmp_path / "rot.mp4", width=640, height=360, times=[i / 30 for i in range(60)], rotation=90
    )
    info, res = ladder(src, tmp_path / "out")
    assert info.rotation == 90 and (info.display_width, info.display_height) == (360, 640)
    assert not info.copyable  # players ignore rotation metadata in fMP4: never copied
    r360 = next(r for r in res.renditions if r.name == "360p")
    assert (r360.width, r360.height) == (360, 640)
    img = first_frame(r360.directory)
    assert img.shape[:2] == (640, 360)
    # 90° counter-clockwise: the source's top-left white block ends up at the bottom-left
    assert img[-40:, :60, 0].mean() > 200 and img[:40, :60, 0].mean() < 60
    assert res.poster is not None


def test_odd_dimensions_are_rounded_to_even(tmp_path: Path) -> None:
    src = tmp_path / "odd.mkv"
    with av.open(str(src), "w") as c:  # x264 refuses odd 4:2:0 sizes; a lossless 4:4:4 codec takes them
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 321, 241, "yuv444p"
        for i in range(50):
            f = av.VideoFrame.from_ndarray(np.full((241, 321, 3), i * 4, dtype=np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f.reformat(format="yuv444p")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    info, res = ladder(src, tmp_path / "out")
    assert not info.copyable
    (r,) = [r for r in res.renditions if r.kind == "video"]
    assert (r.width % 2, r.height % 2) == (0, 0) and r.height == 240


def test_variable_frame_rate_becomes_constant_with_aligned_keyframes(tmp_path: Path) -> None:
    # 4 s with irregular gaps (10-60 ms) and a stall
    rng = np.random.default_rng(7)
    times, t = [], 0.0
    while t < 4.0:
        times.append(round(t, 3))
        t += float(rng.choice([0.010, 0.033, 0.060])) + (0.4 if 1.5 < t < 1.56 else 0.0)
    src = write_video(tmp_path / "vfr.mp4", width=320, height=240, times=times)
    _info, res = ladder(src, tmp_path / "out")
    r = next(r for r in res.renditions if r.kind == "video")
    _, segs = parse_media_playlist((r.directory / "index.m3u8").read_text())
    assert [round(s.duration_s, 1) for s in segs[:-1]] == [2.0] * (len(segs) - 1)
    keys = keyframe_times(r.directory)
    assert keys[:2] == [0.0, 2.0]
    with av.open(str(r.directory / "index.m3u8")) as c:
        pts = [f.time for f in c.decode(video=0)]
    steps = {round(b - a, 4) for a, b in itertools.pairwise(pts)}
    assert len(steps) == 1  # constant frame rate out


def test_no_audio_source_has_no_audio_rendition_and_a_master_without_audio(tmp_path: Path) -> None:
    src = make_video(seconds=2, width=320, height=240, audio=False)
    info, res = ladder(src, tmp_path / "out")
    assert not info.has_audio and info.copyable
    assert [r.kind for r in res.renditions] == ["video"]
    v = res.renditions[0]
    text = master_playlist(
        [
            Variant(
                uri="240p/index.m3u8",
                bandwidth=1,
                average_bandwidth=1,
                codecs=v.codecs,
                width=v.width,
                height=v.height,
                frame_rate=25,
            )
        ],
        audio=None,
    )
    assert "AUDIO" not in text and "mp4a" not in text


#: the ladder of a 16:9 source of 1080p or more (1080p is the top rung: a 4K source gets the same)
FULL_HD = [
    ("1080p", 1920, 1080),
    ("720p", 1280, 720),
    ("480p", 854, 480),
    ("360p", 640, 360),
    ("240p", 426, 240),
]


@pytest.mark.parametrize(
    ("w", "h", "expected"),
    [
        (1920, 1080, FULL_HD),
        (640, 480, [("480p", 640, 480), ("360p", 480, 360), ("240p", 320, 240)]),  # 4:3
        (
            1080,
            1920,
            [(name, h, w) for name, w, h in FULL_HD],
        ),  # 9:16 keeps its shape: the same rungs, turned
        (3840, 2160, FULL_HD),
        (200, 112, [("240p", 200, 112)]),  # smaller than the lowest rung: its own size, never upscaled
    ],
)
def test_ladder_never_upscales_and_keeps_the_aspect(
    w: int, h: int, expected: list[tuple[str, int, int]]
) -> None:
    info = media.SourceInfo(
        width=w,
        height=h,
        display_width=w,
        display_height=h,
        rotation=0,
        duration_s=10,
        fps=Fraction(30),
        variable_frame_rate=False,
        video_codec="h264",
        pix_fmt="yuv420p",
        profile="High",
        bit_rate=0,
        has_audio=False,
    )
    rungs = media.plan_ladder(info)
    assert [(r.name, r.width, r.height) for r in rungs] == expected
    caps = [r.maxrate_kbps for r in rungs]
    assert caps == sorted(caps, reverse=True)


def test_portrait_and_four_by_three_sources_transcode_at_their_shape(tmp_path: Path) -> None:
    for w, h in ((360, 640), (480, 360)):
        src = make_video(seconds=2, width=w, height=h, audio=True)
        _, res = ladder(src, tmp_path / f"{w}x{h}")
        for r in res.renditions:
            if r.kind == "video":
                assert abs(r.width / r.height - w / h) < 0.02
                with av.open(str(r.directory / "index.m3u8")) as c:
                    f = next(c.decode(video=0))
                    assert (f.width, f.height) == (r.width, r.height)


def test_probe_reports_stable_codes(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(media.MediaError) as e:
        media.probe(junk)
    assert e.value.code == "media.unreadable"


def test_codec_strings_come_from_the_bitstream() -> None:
    assert avc_codec_string(bytes([1, 0x64, 0x00, 0x1F, 0xFF])) == "avc1.64001F"
    assert avc_codec_string(b"\x00\x00\x00\x01\x67\x4d\x40\x1e\xaa") == "avc1.4D401E"
    text = master_playlist(
        [
            Variant(
                uri="a/index.m3u8",
                bandwidth=10,
                average_bandwidth=5,
                codecs="avc1.64001F,mp4a.40.2",
                width=2,
                height=2,
                frame_rate=30,
            )
        ],
        audio=AudioMedia(uri="audio/index.m3u8", channels=2),
    )
    assert 'CODECS="avc1.64001F,mp4a.40.2"' in text and 'AUDIO="audio"' in text


def write_av(
    path: Path,
    *,
    seconds: float,
    tone_spans: list[tuple[float, float]],
    rate: int = 48000,
    layout: str = "mono",
) -> Path:
    """320x240 H.264 from t=0 and an AAC tone that exists only in ``tone_spans`` (no packets in between)."""
    channels = 1 if layout == "mono" else 2
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 320, 240, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        aus = c.add_stream("aac", rate=rate)
        aus.layout = layout
        for i in range(round(seconds * 25)):
            f = av.VideoFrame.from_ndarray(
                np.full((240, 320, 3), (i * 5) % 256, dtype=np.uint8), format="rgb24"
            )
            f.pts = i
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        for a, b in tone_spans:
            for start in range(round(a * rate), round(b * rate), 1024):
                t = np.arange(start, start + 1024) / rate
                samples = np.repeat(
                    (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :], channels, 0
                )
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
                af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
                for p in aus.encode(af):
                    c.mux(p)
        for p in aus.encode():
            c.mux(p)
    return path


def loud_spans(directory: Path, *, threshold: float = 0.1, step_s: float = 0.05) -> list[tuple[float, float]]:
    """Where the decoded audio rendition is audible, on a ``step_s`` grid (output time, from 0)."""
    with av.open(str(directory / "index.m3u8")) as c:
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
        rate = c.streams.audio[0].sample_rate
    step = int(rate * step_s)
    loud = [float(np.abs(pcm[i : i + step]).max()) > threshold for i in range(0, len(pcm) - step + 1, step)]
    spans: list[tuple[float, float]] = []
    for i, is_loud in enumerate(loud):
        if is_loud and (not spans or spans[-1][1] < i * step_s - 1e-9):
            spans.append((i * step_s, (i + 1) * step_s))
        elif is_loud:
            spans[-1] = (spans[-1][0], (i + 1) * step_s)
    return spans


@pytest.mark.parametrize(("rate", "layout"), [(48000, "mono"), (44100, "stereo")])
def test_late_starting_and_interrupted_audio_stays_in_sync_with_the_picture(
    tmp_path: Path, rate: int, layout: str
) -> None:
    # 44.1 kHz stereo: the silence put in the holes must match what the resampler was set up with
    src = write_av(
        tmp_path / "late.mp4", seconds=4.0, tone_spans=[(1.0, 2.0), (3.0, 4.0)], rate=rate, layout=layout
    )
    _, res = ladder(src, tmp_path / "out")
    audio = next(r for r in res.renditions if r.kind == "audio")
    spans = loud_spans(audio.directory)
    # the tone is heard where it was recorded (AAC priming and window edges blur ~50 ms), silence elsewhere
    assert len(spans) == 2, spans
    for (got_a, got_b), (want_a, want_b) in zip(spans, [(1.0, 2.0), (3.0, 4.0)], strict=True):
        assert abs(got_a - want_a) <= 0.1 and abs(got_b - want_b) <= 0.1, spans


def test_a_rungs_bitrate_stays_under_its_cap_even_on_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    src = tmp_path / "noise.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "10"}
        for i in range(100):  # 4 s of pure noise: what an uncapped CRF encode spends megabits on
            f = av.VideoFrame.from_ndarray(
                rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), format="rgb24"
            )
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    info = media.probe(src)
    rung = media.Rung(name="capped", width=320, height=240, maxrate_kbps=400)
    res = media.transcode_ladder(
        src,
        tmp_path / "out",
        info=info,
        rungs=[rung],
        encode_audio=False,
        thumbnails=None,
        settings=media.EncoderSettings(preset="ultrafast"),
    )
    [out] = res.renditions
    _, segments = parse_media_playlist((out.directory / "index.m3u8").read_text())
    rates = [(out.directory / seg.uri).stat().st_size * 8 / seg.duration_s for seg in segments]
    cap = rung.maxrate_kbps * 1000
    # VBV (maxrate, bufsize = 2 s of it) holds every 2-s segment near the cap; the encoder is pressing on it
    assert max(rates) <= cap * 1.25, rates
    assert sum(rates) / len(rates) >= cap * 0.5, rates
    assert out.measured.bandwidth <= cap * 1.25  # what the master playlist declares
