"""Generated sample clips (PyAV) for the tests and the benchmark: moving pictures, a tone at a chosen level."""

from __future__ import annotations

import hashlib
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np


def make_clip(
    directory: Path,
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: float = 25,
    audio_rate: int = 48_000,
    channels: int = 2,
    amplitude: float = 0.2,
    has_audio: bool = True,
    rotate: int = 0,
    colour: tuple[int, int, int] = (40, 90, 160),
    bitrate: int = 0,
    clicks: bool = False,
) -> Path:
    """An H.264/AAC MP4: a coloured field with a moving bar and a frame counter band, and a 440 Hz tone of
    ``amplitude`` (``channels`` at ``audio_rate``); ``clicks`` adds a full-scale 2-ms burst every 0.25 s (peaks far
    above the tone's loudness). ``rotate`` writes a display matrix (90 = held upright).
    Cached in ``directory`` by its parameters."""
    key = f"{seconds}-{width}x{height}-{fps}-{audio_rate}-{channels}-{amplitude}-{has_audio}-{rotate}-{colour}-{bitrate}-{clicks}"
    out = directory / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".mp4")
    if out.exists() and out.stat().st_size > 0:
        return out
    directory.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}.mp4")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(tmp), "w") as c:
        vs: Any = c.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "g": str(max(1, round(2 * fps)))}
        if bitrate:
            vs.bit_rate = bitrate
        if rotate:
            vs.set_display_rotation(rotate)
        layout = "mono" if channels == 1 else "stereo"
        a: Any = None
        if has_audio:
            a = c.add_stream("aac", rate=audio_rate)
            a.layout = layout
        nframes = round(seconds * fps)
        base = np.empty((height, width, 3), dtype=np.uint8)
        base[...] = colour
        yy, xx = np.mgrid[0:height, 0:width]
        texture = ((xx // 16 + yy // 16) % 2 * 24).astype(np.uint8)
        for i in range(nframes):
            img = base.copy()
            img[..., 1] += texture
            bar = (i * 8) % max(1, width)
            img[:, bar : bar + max(2, width // 20)] = 250
            img[: max(1, height // 12), : int(width * (i + 1) / nframes)] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for p in vs.encode(frame):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if a is not None:
            total, spf, pts = int(seconds * audio_rate), 1024, 0
            while pts < total:
                n = min(spf, total - pts)
                t = (np.arange(pts, pts + n) / audio_rate).astype(np.float32)
                tone = (amplitude * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
                if clicks:
                    tone[(t % 0.25) < 0.002] = 0.99
                af = av.AudioFrame.from_ndarray(np.stack([tone] * channels), format="fltp", layout=layout)
                af.sample_rate = audio_rate
                af.pts = pts
                af.time_base = Fraction(1, audio_rate)
                for p in a.encode(af):
                    c.mux(p)
                pts += n
            for p in a.encode():
                c.mux(p)
    tmp.replace(out)
    return out
