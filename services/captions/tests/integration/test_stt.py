"""Real faster-whisper on generated speech: accurate text, cues with no style violations, nothing in silence."""

from __future__ import annotations

import time

import jiwer
import pytest

from captions.config import CaptionsSettings
from captions.cues import build_cues
from captions.errors import CaptionsError, Code
from captions.profiles import ENGLISH
from captions.quality import check
from captions.stt import SttOptions, Transcriber
from captions.transcript import Transcript
from common.testing.media import make_video
from common.testing.speech import SpeechSample, make_speech

from ..conftest import normalise

# one worker loads the model and transcribes the shared speech once (make test runs with --dist loadgroup)
pytestmark = pytest.mark.xdist_group("whisper")


def wer(reference: str, transcript: Transcript) -> float:
    return float(jiwer.wer(normalise(reference), normalise(" ".join(s.text for s in transcript.segments))))


def test_generated_speech_is_transcribed_within_10_percent_wer(
    news_transcript: Transcript, speech_sample: SpeechSample
) -> None:
    assert news_transcript.language == "en"
    assert abs(news_transcript.duration_s - speech_sample.duration_s) < 0.1
    assert wer(speech_sample.text, news_transcript) <= 0.10
    words = news_transcript.words()
    assert all(0 <= w.start <= w.end <= news_transcript.duration_s and 0 <= w.probability <= 1 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_its_cues_have_no_style_violations(news_transcript: Transcript) -> None:
    media_end = round(news_transcript.duration_s * 1000)
    cues = build_cues(news_transcript.words(), ENGLISH, media_end_ms=media_end)
    assert cues and check(cues, ENGLISH, media_end_ms=media_end) == []
    assert normalise(" ".join(c.text for c in cues)) == normalise(
        " ".join(w.text for w in news_transcript.words())
    )


def test_a_long_silence_gets_no_line_and_windows_are_cut_in_quiet(
    transcriber: Transcriber, speech_with_silence: SpeechSample
) -> None:
    windowed = Transcriber(transcriber.model, SttOptions(chunk_s=15.0))
    seen: list[float] = []
    started = time.process_time()
    transcript = windowed.transcribe(speech_with_silence.path, language="auto", progress=seen.append)
    cpu = time.process_time() - started
    print(f"silence sample: {cpu / speech_with_silence.duration_s:.2f} CPU s per audio s")
    assert wer(speech_with_silence.text, transcript) <= 0.10
    (quiet_from, quiet_to) = speech_with_silence.silences[0]
    inside = (quiet_from + 0.5, quiet_to - 0.5)
    assert not [w for w in transcript.words() if w.end > inside[0] and w.start < inside[1]]
    media_end = round(transcript.duration_s * 1000)
    cues = build_cues(transcript.words(), ENGLISH, media_end_ms=media_end)
    assert check(cues, ENGLISH, media_end_ms=media_end) == []
    assert all(c.end_ms <= inside[0] * 1000 or c.start_ms >= inside[1] * 1000 for c in cues)
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 100.0
    assert any(
        abs(p - 100 * 15.0 / speech_with_silence.duration_s) < 100 * 10 / speech_with_silence.duration_s
        for p in seen
    )


def test_transcription_stops_when_the_job_is_canceled(
    transcriber: Transcriber, speech_with_silence: SpeechSample
) -> None:
    seen: list[float] = []
    with pytest.raises(CaptionsError) as stopped:
        transcriber.transcribe(
            speech_with_silence.path, progress=seen.append, cancelled=lambda: len(seen) >= 2
        )
    assert stopped.value.code == Code.CANCELED
    assert len(seen) == 2 and seen[-1] < 100


def test_options_follow_the_settings() -> None:
    options = SttOptions.from_settings(CaptionsSettings(stt_no_speech_threshold=0.5, whisper_beam_size=2))
    kwargs = options.transcribe_kwargs()
    assert (
        kwargs["vad_filter"] and kwargs["word_timestamps"] and kwargs["condition_on_previous_text"] is False
    )
    assert kwargs["no_speech_threshold"] == 0.5 and kwargs["beam_size"] == 2
    assert (
        options.is_silence(0.9, -1.5)
        and not options.is_silence(0.9, -0.2)
        and not options.is_silence(0.1, -2.0)
    )


def test_silence_and_a_steady_tone_give_no_lines(transcriber: Transcriber) -> None:
    for path in (make_speech([6.0]).path, make_video(seconds=3.0)):  # the video's sound is a 440 Hz tone
        transcript = transcriber.transcribe(path)
        assert transcript.segments == () and transcript.language == "und"
