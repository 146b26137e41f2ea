"""Sound: a clip's audio window as 48 kHz stereo blocks, its loudness (EBU R128), and the output's limiter chain.

Two passes per clip: ``measure`` reads the window once for its integrated loudness; the encode pass reads it again
with the gain that brings it to the target, then one true-peak-safe limiter runs over the whole output. Both use
FFmpeg's own ``ebur128`` and ``alimiter`` filters through PyAV. Blocks stream through; nothing holds a whole clip.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from .errors import MEDIA_UNREADABLE, RenderError

RATE = 48_000
CHANNELS = 2
BLOCK = 4800  # 0.1 s
TARGET_LUFS = -14.0
#: the limiter's ceiling, applied at 4x the sample rate (so inter-sample peaks are limited too: a true-peak
#: limiter); 2 dB under full scale leaves 1 dB for the AAC encoder's overshoot under the -1 dBTP goal
LIMIT_DBFS = -2.0
OVERSAMPLE = 4
#: a quiet clip is raised at most this much (more would mostly raise its noise)
MAX_GAIN_DB = 20.0
#: integrated loudness at or under this is silence (EBU R128's absolute gate is -70 LUFS): it gets no gain
SILENT_LUFS = -60.0

Block = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True, kw_only=True)
class Loudness:
    """EBU R128 integrated loudness (LUFS) and true peak (dBTP) of some audio."""

    integrated_lufs: float
    true_peak_dbtp: float

    @property
    def silent(self) -> bool:
        """Nothing audible (under the gate, or no audio at all)."""
        return self.integrated_lufs <= SILENT_LUFS


def gain_db(measured: Loudness, *, target_lufs: float = TARGET_LUFS) -> float:
    """The gain that brings ``measured`` to ``target_lufs`` (0 for silence, capped at ``MAX_GAIN_DB``)."""
    if measured.silent:
        return 0.0
    return min(MAX_GAIN_DB, target_lufs - measured.integrated_lufs)


def silence(samples: int) -> Iterator[Block]:
    """``samples`` of stereo silence, in blocks."""
    for at in range(0, samples, BLOCK):
        yield np.zeros((CHANNELS, min(BLOCK, samples - at)), dtype=np.float32)


def read_window(path: Path, start_s: float, samples: int) -> Generator[Block, None, None]:
    """Exactly ``samples`` of 48 kHz stereo float from ``start_s`` of the file's first audio stream (silence
    where there is none: no stream, a late start, an early end)."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise RenderError(MEDIA_UNREADABLE, f"the clip cannot be opened ({e})") from e
    window = _Window(start_s, samples)
    with container:
        if not container.streams.audio:
            yield from silence(samples)
            return
        stream = container.streams.audio[0]
        tb = stream.time_base or Fraction(1, RATE)
        if start_s > 0:
            container.seek(max(0, math.floor(start_s / tb)), stream=stream, backward=True)
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
        try:
            yield from _decode_window(container.decode(stream), resampler, window)
        except av.error.FFmpegError as e:
            raise RenderError(MEDIA_UNREADABLE, f"the clip's audio cannot be decoded ({e})") from e
    yield from silence(samples - window.written)


class _Window:
    """Where resampled audio falls in the window: counts output samples from ``start_s``, trims to ``samples``."""

    def __init__(self, start_s: float, samples: int) -> None:
        self.start_s = start_s
        self.samples = samples
        #: output-rate sample index (relative to start_s) of the next resampled sample; None until the first
        #: timed frame places the stream
        self.position: int | None = None
        self.written = 0

    @property
    def full(self) -> bool:
        """All ``samples`` are out."""
        return self.written >= self.samples

    def lead_in(self, time_s: float) -> Iterator[Block]:
        """Place the stream by its first frame's time: the silence before it, if it starts after the window."""
        self.position = round((time_s - self.start_s) * RATE)
        if self.position > 0:
            yield from silence(min(self.position, self.samples))
            self.written = min(self.position, self.samples)

    def trim(self, block: Block) -> Block:
        """The part of the next resampled ``block`` inside the window (empty before its start or past its end)."""
        assert self.position is not None
        skip = max(0, -self.position)
        self.position += block.shape[1]
        block = block[:, skip:][:, : self.samples - self.written]
        self.written += block.shape[1]
        return block


def _decode_window(frames: Iterator[Any], resampler: av.AudioResampler, window: _Window) -> Iterator[Block]:
    """The decoded ``frames`` resampled and trimmed to ``window``, until it is full or the frames (then the
    resampler's tail) run out."""
    for frame in _and_flush(frames):
        if frame is not None and window.position is None:
            if frame.time is None:
                continue  # an untimed frame cannot place the stream: wait for one that can
            yield from window.lead_in(frame.time)
        if frame is not None:
            frame.pts = None  # the resampler restamps; the position is counted by the window
        for out in resampler.resample(frame):
            block = window.trim(out.to_ndarray().astype(np.float32, copy=False))
            if block.shape[1]:
                yield block
        if window.full:
            return


def _and_flush(frames: Iterator[Any]) -> Iterator[Any]:
    """The decoded frames, then None (which flushes the resampler)."""
    yield from frames
    yield None


def _frame(block: Block, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout="stereo")
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = Fraction(1, RATE)
    return frame


def _drain(sink: Any) -> Iterator[Any]:
    while True:
        try:
            yield sink.pull()
        except (BlockingIOError, av.error.EOFError):
            return


def _loudness_of(frame: Any, last: Loudness) -> Loudness:
    meta = frame.metadata
    if "lavfi.r128.I" not in meta:
        return last
    peak = float(meta.get("lavfi.r128.true_peak", "0") or 0)
    return Loudness(
        integrated_lufs=float(meta["lavfi.r128.I"]),
        true_peak_dbtp=20 * math.log10(peak) if peak > 0 else -math.inf,
    )


NO_SOUND = Loudness(integrated_lufs=-70.0, true_peak_dbtp=-math.inf)


def measure(blocks: Iterator[Block]) -> Loudness:
    """Integrated loudness and true peak of 48 kHz stereo blocks (FFmpeg's ``ebur128``)."""
    graph = av.filter.Graph()
    src = graph.add_abuffer(format="fltp", sample_rate=RATE, layout="stereo", time_base=Fraction(1, RATE))
    meter = graph.add("ebur128", "metadata=1:peak=true")
    sink = graph.add("abuffersink")
    src.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    result, pts = NO_SOUND, 0
    for block in blocks:
        src.push(_frame(block, pts))
        pts += block.shape[1]
        for f in _drain(sink):
            result = _loudness_of(f, result)
    src.push(None)
    for f in _drain(sink):
        result = _loudness_of(f, result)
    return result


class OutputAudio:
    """The output's audio chain: gain per block, one limiter over the whole programme, AAC-sized frames, and a
    meter of what comes out. ``write`` blocks in, then ``frames`` to encode; ``close`` flushes."""

    def __init__(self, *, frame_size: int = 1024, limit_dbfs: float = LIMIT_DBFS) -> None:
        self.graph = av.filter.Graph()
        tb = Fraction(1, RATE)
        self._src = self.graph.add_abuffer(format="fltp", sample_rate=RATE, layout="stereo", time_base=tb)
        chain = [
            *(self.graph.add(name, args) for name, args in limiter_chain(limit_dbfs)),
            self.graph.add("ebur128", "metadata=1:peak=true"),
            self.graph.add("aformat", f"sample_fmts=fltp:sample_rates={RATE}:channel_layouts=stereo"),
            self.graph.add("asetnsamples", f"n={frame_size}:p=0"),
        ]
        self._sink = self.graph.add("abuffersink")
        prev = self._src
        for node in [*chain, self._sink]:
            prev.link_to(node)
            prev = node
        self.graph.configure()
        self.pushed = 0
        self.pulled = 0
        self.loudness = NO_SOUND

    def write(self, block: Block, gain_db: float = 0.0) -> list[av.AudioFrame]:
        """Push a block (scaled by ``gain_db``); the frames that are ready, stamped in samples."""
        if gain_db:
            block = block * np.float32(10 ** (gain_db / 20))
        self._src.push(_frame(block, self.pushed))
        self.pushed += block.shape[1]
        return self._pull()

    def close(self) -> list[av.AudioFrame]:
        """Flush the limiter: the last frames."""
        self._src.push(None)
        return self._pull()

    def _pull(self) -> list[av.AudioFrame]:
        out = []
        for f in _drain(self._sink):
            self.loudness = _loudness_of(f, self.loudness)
            f.pts = self.pulled
            f.time_base = Fraction(1, RATE)
            self.pulled += f.samples
            out.append(f)
        return out


def limiter_chain(limit_dbfs: float = LIMIT_DBFS) -> list[tuple[str, str]]:
    """The true-peak limiter as filters: up to 4x the rate, ``alimiter`` (a fixed ceiling, no auto-levelling, its
    delay compensated so it stays in sync), back to 48 kHz."""
    limit = f"limit={10 ** (limit_dbfs / 20):.5f}:level=0:latency=1:attack=5:release=50"
    return [("aresample", str(RATE * OVERSAMPLE)), ("alimiter", limit), ("aresample", str(RATE))]
