"""Generated media samples (PyAV), small and cached on disk by their parameters."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

__all__ = ["make_audio", "make_video", "media_cache_dir", "media_sample", "mixed_clips"]


def media_cache_dir() -> Path:
    """Where generated samples are cached (``REELFORGE_MEDIA_CACHE`` or ``var/cache/media``)."""
    d = Path(os.environ.get("REELFORGE_MEDIA_CACHE", "var/cache/media")).resolve()
    d.mkdir(parents=True, exist_ok=True)
    return d


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's ``streams`` and ``format`` of ``path`` (an independent reader of what PyAV wrote)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    info: dict[str, Any] = json.loads(out.stdout)
    return info


def mixed_clips(directory: Path | None = None, *, seconds: float = 3.0) -> list[Path]:
    """Four clips as a compilation mixes them: landscape 30 fps, vertical 24 fps, 4:3 25 fps without sound, and a
    60 fps phone shot stored rotated (display matrix 90)."""
    return [
        make_video(seconds=seconds, width=640, height=360, fps=30, directory=directory),
        make_video(seconds=seconds, width=360, height=640, fps=24, directory=directory),
        make_video(seconds=seconds, width=480, height=360, fps=25, audio=False, directory=directory),
        make_video(seconds=seconds, width=640, height=360, fps=60, rotate=90, directory=directory),
    ]


def make_video(
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    audio: bool = True,
    vcodec: str = "libx264",
    acodec: str = "aac",
    container: str = "mp4",
    rotate: int = 0,
    gop_s: float = 2.0,
    bitrate: int = 0,
    directory: Path | None = None,
) -> Path:
    """A test video: a moving gradient with a frame counter band, and a 440 Hz tone. Cached by parameters.

    ``rotate`` is the display matrix's counter-clockwise angle (90 = a phone shot held upright), the value
    ``VideoFrame.rotation`` and ffprobe read back; the pixels stay ``width`` x ``height``. ``container`` is the file
    extension (``ts``, ``mov``, ``mkv``, ``webm`` with ``libvpx-vp9``/``libopus``, ``avi`` with ``mpeg4``/``libmp3lame``).
    """
    codecs = vcodec if acodec == "aac" else f"{vcodec}+{acodec}"  # the key of every AAC file stays as it was
    key = f"{seconds}-{width}x{height}-{fps}-{audio}-{codecs}-{rotate}-{gop_s}-{bitrate}.{container}"
    name = hashlib.sha1(key.encode()).hexdigest()[:16] + f".{container}"
    out = (directory or media_cache_dir()) / name
    if out.exists() and out.stat().st_size > 0:
        return out
    tmp = out.with_suffix(f".tmp{os.getpid()}.{container}")
    with av.open(str(tmp), "w") as c:
        vs = _video_stream(
            c, vcodec=vcodec, width=width, height=height, fps=fps, gop_s=gop_s, bitrate=bitrate
        )
        if rotate:
            # FFmpeg 7+ ignores the old ``rotate`` metadata tag when muxing: write the display matrix itself
            vs.set_display_rotation(rotate)
        as_: Any = None
        if audio:
            as_ = c.add_stream(acodec, rate=48000)
            as_.layout = "stereo"
        _write_gradient(c, vs, seconds=seconds, width=width, height=height, fps=fps)
        if as_ is not None:
            _write_tone(c, as_, seconds=seconds)
    tmp.replace(out)
    return out


def _video_stream(
    c: Any, *, vcodec: str, width: int, height: int, fps: int, gop_s: float, bitrate: int
) -> Any:
    vs: Any = c.add_stream(vcodec, rate=fps)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    if vcodec == "libx264":
        vs.options = {
            "preset": "ultrafast",
            "g": str(max(1, int(fps * gop_s))),
            "keyint_min": str(max(1, int(fps * gop_s))),
        }
    elif vcodec == "libvpx-vp9":
        vs.options = {"deadline": "realtime", "cpu-used": "8", "g": str(max(1, int(fps * gop_s)))}
    if bitrate:
        vs.bit_rate = bitrate
    return vs


def _write_gradient(c: Any, vs: Any, *, seconds: float, width: int, height: int, fps: int) -> None:
    """A moving gradient with a progress band along the top (so frames differ and their order shows)."""
    nframes = int(seconds * fps)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(nframes):
        img = np.empty((height, width, 3), dtype=np.uint8)
        img[..., 0] = (xx + i * 4) % 256
        img[..., 1] = (yy + i * 2) % 256
        img[..., 2] = (i * 8) % 256
        band = max(1, height // 12)
        img[:band, : int(width * (i + 1) / nframes)] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1, fps)
        for p in vs.encode(frame):
            c.mux(p)
    for p in vs.encode():
        c.mux(p)


def _write_tone(c: Any, as_: Any, *, seconds: float) -> None:
    """A 440 Hz stereo tone at 48 kHz."""
    sr, spf = 48000, 1024
    total = int(seconds * sr)
    pts = 0
    while pts < total:
        n = min(spf, total - pts)
        t = (np.arange(pts, pts + n) / sr).astype(np.float32)
        tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        af.sample_rate = sr
        af.pts = pts
        af.time_base = Fraction(1, sr)
        for p in as_.encode(af):
            c.mux(p)
        pts += n
    for p in as_.encode():
        c.mux(p)


def make_audio(*, seconds: float = 2.0, container: str = "m4a", directory: Path | None = None) -> Path:
    """An audio-only file (a podcast, a voice memo): the 440 Hz stereo tone in AAC, no picture. Cached."""
    name = hashlib.sha1(f"audio-{seconds}.{container}".encode()).hexdigest()[:16] + f".{container}"
    out = (directory or media_cache_dir()) / name
    if out.exists() and out.stat().st_size > 0:
        return out
    tmp = out.with_suffix(f".tmp{os.getpid()}.{container}")
    with av.open(str(tmp), "w", format="mp4" if container == "m4a" else None) as c:
        as_: Any = c.add_stream("aac", rate=48000)
        as_.layout = "stereo"
        _write_tone(c, as_, seconds=seconds)
    tmp.replace(out)
    return out


@pytest.fixture(scope="session")
def media_sample() -> Path:
    """A 2-second 320x240 25 fps H.264/AAC MP4."""
    return make_video()
