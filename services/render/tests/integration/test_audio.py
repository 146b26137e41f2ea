"""The audio chain with FFmpeg's own filters: windows are exact, gains are bounded, the limiter holds its ceiling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from render import audio
from render.samples import make_clip


def _collect(frames: list) -> np.ndarray:  # type: ignore[type-arg]
    return np.concatenate([f.to_ndarray() for f in frames], axis=1)


def test_a_window_is_exactly_as_long_as_asked_and_silence_pads_a_missing_track(clip_dir: Path) -> None:
    mono = make_clip(clip_dir, seconds=2, width=320, height=240, fps=25, audio_rate=44_100, channels=1)
    mute = make_clip(clip_dir, seconds=2, width=320, height=240, fps=25, has_audio=False)
    got = np.concatenate(list(audio.read_window(mono, 0.5, 48_000)), axis=1)
    assert got.shape == (2, 48_000) and np.abs(got).max() > 0.1
    assert np.allclose(got[0], got[1])  # mono reaches both channels
    tail = np.concatenate(list(audio.read_window(mono, 1.5, 48_000)), axis=1)
    assert tail.shape == (2, 48_000) and np.abs(tail[:, 30_000:]).max() == 0  # past the end: silence, no loop
    none = np.concatenate(list(audio.read_window(mute, 0.0, 9_600)), axis=1)
    assert none.shape == (2, 9_600) and not none.any()


def test_gain_brings_a_clip_to_the_target_but_never_boosts_silence_or_noise_too_far() -> None:
    assert audio.gain_db(audio.Loudness(integrated_lufs=-20.0, true_peak_dbtp=-6)) == 6.0
    assert audio.gain_db(audio.Loudness(integrated_lufs=-5.0, true_peak_dbtp=0)) == -9.0
    assert audio.gain_db(audio.NO_SOUND) == 0.0
    assert audio.gain_db(audio.Loudness(integrated_lufs=-50.0, true_peak_dbtp=-40)) == audio.MAX_GAIN_DB


def test_the_limiter_keeps_peaks_under_its_ceiling_and_the_length_exact() -> None:
    t = np.arange(48_000 * 2) / 48_000
    quiet = (0.05 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)
    quiet[48_000:48_100] = 0.99  # a click at full scale
    block = np.stack([quiet, quiet])
    out = audio.OutputAudio()
    frames = []
    for at in range(0, block.shape[1], audio.BLOCK):
        frames += out.write(block[:, at : at + audio.BLOCK], gain_db=12.0)  # the click would reach +12 dBFS
    frames += out.close()
    got = _collect(frames)
    assert got.shape[1] == block.shape[1]
    ceiling = 10 ** (audio.LIMIT_DBFS / 20)
    assert np.abs(got).max() <= ceiling * 1.01  # limited at 4x the rate: the true peak too
    assert out.loudness.true_peak_dbtp <= -1.0
    assert [f.samples for f in frames[:-1]] == [1024] * (len(frames) - 1)  # AAC-sized frames
