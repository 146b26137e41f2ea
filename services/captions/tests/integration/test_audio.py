"""Audio decoded with PyAV to 16 kHz mono float32, in blocks, with coded errors for files without usable sound."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from captions.audio import SAMPLE_RATE, audio_duration, iter_audio
from captions.errors import CaptionsError, Code
from common.testing.media import make_video
from common.testing.speech import SpeechSample, make_speech


def test_speech_decodes_to_16k_mono_float_blocks(speech_sample: SpeechSample) -> None:
    blocks = list(iter_audio(speech_sample.path, block_s=5.0))
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert all(b.shape[0] == 5 * SAMPLE_RATE for b in blocks[:-1])
    total = sum(b.shape[0] for b in blocks) / SAMPLE_RATE
    assert abs(total - speech_sample.duration_s) < 0.1
    assert abs(audio_duration(speech_sample.path) - speech_sample.duration_s) < 0.1
    assert 0.05 < max(float(np.abs(b).max()) for b in blocks) <= 1.0


def test_a_long_file_decodes_in_flat_memory() -> None:
    long = make_speech(["One.", 240.0, "Two."])
    tracemalloc.start()
    try:
        seconds = 0.0
        for block in iter_audio(long.path, block_s=5.0):
            seconds += block.shape[0] / SAMPLE_RATE
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds > 240
    assert peak < 4 * 5 * SAMPLE_RATE * 4  # a few blocks' worth, not the 15 MB of the whole audio


def test_a_video_without_audio_is_a_coded_error() -> None:
    silent = make_video(seconds=1.0, audio=False)
    with pytest.raises(CaptionsError) as failed:
        list(iter_audio(silent))
    assert failed.value.code == Code.NO_AUDIO and Code.NO_AUDIO.value == "media.no_audio_stream"


def test_a_corrupt_file_is_a_coded_error(tmp_path: Path, speech_sample: SpeechSample) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x11garbage" * 4096)
    with pytest.raises(CaptionsError) as failed:
        audio_duration(junk)
    assert failed.value.code == Code.MEDIA_UNREADABLE
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(speech_sample.path.read_bytes()[:3000])
    with pytest.raises(CaptionsError) as failed:
        list(iter_audio(truncated))
    assert failed.value.code == Code.MEDIA_UNREADABLE
