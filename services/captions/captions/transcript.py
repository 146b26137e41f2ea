"""What speech-to-text produces: segments of words with their times (seconds), and the detected language."""

from __future__ import annotations

import msgspec


class Timed(msgspec.Struct, frozen=True, kw_only=True):
    """Text the recogniser heard between ``start`` and ``end`` (its fields come first)."""

    start: float
    end: float
    text: str


class Word(Timed, frozen=True, kw_only=True):
    """One recognised word; ``text`` keeps the recogniser's leading space (it tells how words join)."""

    probability: float = 1.0


class Segment(Timed, frozen=True, kw_only=True):
    """A stretch of speech as the recogniser decoded it."""

    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0


class Transcript(msgspec.Struct, frozen=True, kw_only=True):
    """A whole medium's speech: the language, the audio's duration and the kept segments in time order."""

    language: str
    language_probability: float
    duration_s: float
    segments: tuple[Segment, ...] = ()

    def words(self) -> list[Word]:
        """Every word of every segment, in time order."""
        return [w for s in self.segments for w in s.words]
