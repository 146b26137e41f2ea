"""Speech-to-text with faster-whisper: windows of audio, VAD, word times, and no invented lines in silence.

Audio is decoded in blocks and transcribed a window (``chunk_s``) at a time, each window cut at its quietest tenth of
a second near the end so no word is split; only one window is held in memory. Each window runs with voice activity
detection, word timestamps and ``condition_on_previous_text=False`` (a hallucination cannot feed the next window);
a segment the model itself judges silent (no-speech probability above, mean log-probability below the thresholds)
is dropped, as is one without words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.settings import section

from .audio import SAMPLE_RATE, audio_duration, iter_audio
from .config import CaptionsSettings
from .errors import CaptionsError, Code
from .transcript import Segment, Transcript, Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

_CUT_SEARCH_S = 10.0  # where the window may be cut: its last seconds
_CUT_FRAME_S = 0.1
_HALLUCINATION_SILENCE_S = 2.0  # faster-whisper skips a silence this long around a suspected hallucination


@dataclass(frozen=True, kw_only=True)
class SttOptions:
    """How faster-whisper is asked to transcribe."""

    beam_size: int = 5
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    chunk_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: CaptionsSettings) -> SttOptions:
        """The options a service's settings name."""
        return section(cls, settings, "stt_", "whisper_")

    def transcribe_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``WhisperModel.transcribe`` (also what a benchmark calls it with)."""
        return {
            "beam_size": self.beam_size,
            "vad_filter": True,
            "word_timestamps": True,
            "condition_on_previous_text": False,
            "no_speech_threshold": self.no_speech_threshold,
            "log_prob_threshold": self.log_prob_threshold,
            "hallucination_silence_threshold": _HALLUCINATION_SILENCE_S,
        }

    def is_silence(self, no_speech_prob: float, avg_logprob: float) -> bool:
        """Whether a segment is more likely silence than speech (whisper's own rule)."""
        return no_speech_prob > self.no_speech_threshold and avg_logprob < self.log_prob_threshold


@dataclass
class _Progress:
    duration_s: float
    report: Callable[[float], None] | None
    cancelled: Callable[[], bool] | None

    def at(self, seconds: float) -> None:
        if self.cancelled is not None and self.cancelled():
            raise CaptionsError(Code.CANCELED, "the job was canceled")
        if self.report is not None and self.duration_s > 0:
            self.report(min(100.0, 100.0 * seconds / self.duration_s))


def spoken_language(code: str | None) -> str | None:
    """The model's code for a requested language (``en-US`` → ``en``), None to detect it (``auto``).

    A language the model does not speak is ``captions.language_unsupported``, before any work.
    """
    if code in (None, "", "auto"):
        return None
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # the model's fixed language list

    primary = code.split("-", 1)[0].lower()
    if primary not in _LANGUAGE_CODES:
        raise CaptionsError(
            Code.LANGUAGE_UNSUPPORTED,
            f'speech-to-text does not know the language {code!r}: use "auto" or a code such as "en" or "ko"',
        )
    return primary


class Transcriber:
    """A loaded whisper model and the options to run it with (one per worker process; not thread-safe)."""

    def __init__(self, model: WhisperModel, options: SttOptions) -> None:
        self.model, self.options = model, options

    def transcribe(
        self,
        path: Path,
        *,
        language: str | None = None,
        progress: Callable[[float], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Transcript:
        """The speech of ``path`` (``language`` None or ``auto``: detected on the first window with speech).

        ``progress`` gets the percent of audio done; ``cancelled`` is polled between segments and raises
        ``job.canceled``. No speech at all gives a transcript without segments (the caller decides).
        """
        duration = audio_duration(path)
        ticker = _Progress(duration, progress, cancelled)
        ticker.at(0.0)
        lang = spoken_language(language)
        detected: tuple[str, float] | None = None if lang is None else (lang, 1.0)
        segments: list[Segment] = []
        offset = 0.0
        for window in self._windows(iter_audio(path)):
            kept, info = self._window(window, offset, detected[0] if detected else None, ticker)
            if kept and detected is None:
                detected = (info.language, float(info.language_probability))
            segments.extend(kept)
            offset += window.shape[0] / SAMPLE_RATE
            ticker.at(offset)
        language_out, probability = detected or (lang or "und", 0.0)
        return Transcript(
            language=language_out,
            language_probability=round(probability, 3),
            duration_s=round(duration or offset, 3),
            segments=tuple(segments),
        )

    def _windows(self, blocks: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
        """Windows of about ``chunk_s`` seconds, each cut at a quiet moment near its end."""
        size = int(self.options.chunk_s * SAMPLE_RATE)
        held: list[np.ndarray] = []
        count = 0
        for block in blocks:
            held.append(block)
            count += block.shape[0]
            while count >= size:
                audio = np.concatenate(held)
                cut = quiet_cut(audio, size)
                yield audio[:cut]
                held, count = [audio[cut:]], audio.shape[0] - cut
        if count:
            yield np.concatenate(held)

    def _window(
        self, audio: np.ndarray, offset: float, language: str | None, ticker: _Progress
    ) -> tuple[list[Segment], Any]:
        raw, info = self.model.transcribe(audio, language=language, **self.options.transcribe_kwargs())
        kept = []
        for seg in raw:  # a lazy generator: each step decodes
            ticker.at(offset + float(seg.end))
            words = tuple(
                Word(
                    start=round(offset + float(w.start), 3),
                    end=round(offset + float(w.end), 3),
                    text=w.word,
                    probability=round(float(w.probability), 3),
                )
                for w in seg.words or ()
                if w.word.strip()
            )
            if not words or self.options.is_silence(float(seg.no_speech_prob), float(seg.avg_logprob)):
                continue
            kept.append(
                Segment(
                    start=round(offset + float(seg.start), 3),
                    end=round(offset + float(seg.end), 3),
                    text=seg.text.strip(),
                    words=words,
                    avg_logprob=round(float(seg.avg_logprob), 4),
                    no_speech_prob=round(float(seg.no_speech_prob), 4),
                )
            )
        return kept, info


def quiet_cut(audio: np.ndarray, size: int) -> int:
    """Where to end a window of at least ``size`` samples: the middle of its quietest frame in the last seconds."""
    frame = int(_CUT_FRAME_S * SAMPLE_RATE)
    lo = max(0, size - int(_CUT_SEARCH_S * SAMPLE_RATE))
    region = audio[lo:size]
    n = region.shape[0] // frame
    if n == 0:
        return size
    energy = np.square(region[: n * frame].reshape(n, frame)).mean(axis=1)
    return lo + int(np.argmin(energy)) * frame + frame // 2
