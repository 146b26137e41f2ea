"""Generated speech (espeak-ng) from a known text, in a small H.264/AAC MP4 (PyAV); cached like ``media``.

A sample is a sequence of parts: a string is spoken, a number is that many seconds of silence. The sample knows its
text and where its silences are, so a test can measure word error rate and check that nothing was heard in them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from .media import media_cache_dir

__all__ = [
    "NEWS_SCRIPT",
    "SILENCE_PARTS",
    "SpeechSample",
    "make_speech",
    "speech_sample",
    "speech_with_silence",
]

NEWS_SCRIPT = (
    "Good morning, and welcome to the weekly news from our small town. The library will open a new reading room "
    "next month. Children can borrow books, play games, and meet their friends after school. The bakery on the "
    "main street is looking for a new cook. If you like to work early in the morning, please call them this week. "
    "Finally, the weather will be warm and sunny on Saturday, so bring your family to the park for the summer "
    "concert."
)
SILENCE_PARTS: tuple[str | float, ...] = (
    "The train to the city leaves every morning from the old station near the river.",
    12.0,
    "Please bring a warm coat, because the evenings are cold in the mountains.",
)


@dataclass(frozen=True)
class SpeechSample:
    """A generated speech file, the text it speaks, and its silences (start, end) in seconds."""

    path: Path
    text: str
    duration_s: float
    silences: tuple[tuple[float, float], ...]


def _speak(text: str, *, voice: str, wpm: int) -> tuple[np.ndarray, int]:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout", text], check=True, capture_output=True
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    return np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0, rate


def _encode(out: Path, audio: np.ndarray, rate: int, *, fps: int) -> None:
    with av.open(str(out), "w") as c:
        vs: Any = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 36, "yuv420p"
        vs.options = {"preset": "ultrafast", "g": str(fps * 2)}
        aus: Any = c.add_stream("aac", rate=rate)
        aus.layout = "mono"
        seconds = audio.shape[0] / rate
        grey = np.full((36, 64, 3), 96, dtype=np.uint8)
        for i in range(max(1, int(seconds * fps))):
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            c.mux(vs.encode(frame))
        c.mux(vs.encode())
        step = 1024
        for pts in range(0, audio.shape[0], step):
            chunk = audio[pts : pts + step]
            af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = rate, pts, Fraction(1, rate)
            c.mux(aus.encode(af))
        c.mux(aus.encode())


def make_speech(
    parts: Sequence[str | float],
    *,
    voice: str = "en-us",
    wpm: int = 165,
    fps: int = 25,
    directory: Path | None = None,
) -> SpeechSample:
    """An MP4 (64x36 grey video, AAC mono) speaking ``parts`` (numbers: seconds of silence). Cached by parameters."""
    key = repr((tuple(parts), voice, wpm, fps))
    out = (directory or media_cache_dir()) / f"speech-{hashlib.sha1(key.encode()).hexdigest()[:16]}.mp4"
    meta = out.with_suffix(".json")
    text = " ".join(p for p in parts if isinstance(p, str))
    if out.exists() and meta.exists():
        known = json.loads(meta.read_text())
        silences = tuple((float(a), float(b)) for a, b in known["silences"])
        return SpeechSample(path=out, text=text, duration_s=known["duration_s"], silences=silences)
    pieces: list[np.ndarray] = []
    spans: list[tuple[float, float]] = []
    rate, at = 22050, 0.0
    for part in parts:
        if isinstance(part, str):
            samples, rate = _speak(part, voice=voice, wpm=wpm)
        else:
            samples = np.zeros(int(part * rate), dtype=np.float32)
            spans.append((at, at + part))
        pieces.append(samples)
        at += samples.shape[0] / rate
    tmp = out.with_suffix(f".tmp{os.getpid()}.mp4")
    _encode(tmp, np.concatenate(pieces), rate, fps=fps)
    tmp.replace(out)
    tmp_meta = meta.with_suffix(f".tmp{os.getpid()}.json")
    tmp_meta.write_text(json.dumps({"duration_s": at, "silences": spans}))
    tmp_meta.replace(meta)
    return SpeechSample(path=out, text=text, duration_s=at, silences=tuple(spans))


@pytest.fixture(scope="session")
def speech_sample() -> SpeechSample:
    """About 26 s of English speech (``NEWS_SCRIPT``) in an MP4."""
    return make_speech([NEWS_SCRIPT])


@pytest.fixture(scope="session")
def speech_with_silence() -> SpeechSample:
    """English speech, 12 s of silence, more speech (``SILENCE_PARTS``), in an MP4."""
    return make_speech(SILENCE_PARTS)
