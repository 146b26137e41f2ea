"""Any medium's first audio stream decoded with PyAV to 16 kHz mono float32, in blocks (memory stays flat)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from .errors import CaptionsError, Code

SAMPLE_RATE = 16_000
_MAX_BAD_PACKETS = 50  # a few damaged packets are skipped; a stream of them is a broken file


def _open(path: Path) -> Any:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as e:
        raise CaptionsError(Code.MEDIA_UNREADABLE, f"the file cannot be read as media: {e}") from e


def _audio_stream(container: Any) -> Any:
    if not container.streams.audio:
        raise CaptionsError(Code.NO_AUDIO, "the media has no audio stream")
    return container.streams.audio[0]


def audio_duration(path: Path) -> float:
    """The duration of the media's audio in seconds (0.0 when the container does not say)."""
    with _open(path) as container:
        stream = _audio_stream(container)
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return container.duration / 1_000_000 if container.duration else 0.0


def iter_audio(path: Path, *, block_s: float = 30.0) -> Iterator[np.ndarray]:
    """16 kHz mono float32 samples of the first audio stream, ``block_s`` seconds at a time (the last shorter)."""
    block = max(1, int(block_s * SAMPLE_RATE))
    pending: list[np.ndarray] = []
    held = 0
    for samples in _decoded(path):
        pending.append(samples)
        held += samples.shape[0]
        while held >= block:
            joined = np.concatenate(pending)
            yield joined[:block]
            rest = joined[block:]
            pending, held = ([rest] if rest.size else []), rest.shape[0]
    if held:
        yield np.concatenate(pending)


def _decoded(path: Path) -> Iterator[np.ndarray]:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    bad = decoded = 0
    with _open(path) as container:
        stream = _audio_stream(container)
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                bad += 1
                if bad > _MAX_BAD_PACKETS:
                    raise CaptionsError(Code.MEDIA_UNREADABLE, f"the audio stream is damaged: {e}") from e
                continue
            for frame in frames:
                frame.pts = None  # the resampler times its output itself; gaps in pts are not ours to fill
                for out in resampler.resample(frame):
                    decoded += out.samples
                    yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
        for out in resampler.resample(None):
            decoded += out.samples
            yield out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
    if decoded == 0:
        raise CaptionsError(Code.MEDIA_UNREADABLE, "the audio stream holds no decodable sound")
