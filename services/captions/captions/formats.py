"""Subtitle files: WebVTT (W3C WebVTT), SubRip (SRT) and a JSON form with word times."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .cues import Cue
from .transcript import Transcript

VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"
SRT_CONTENT_TYPE = "application/x-subrip; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"


def _clock(ms: int, separator: str) -> str:
    hours, rest = divmod(max(ms, 0), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _lines(cue: Cue) -> list[str]:
    """The cue's non-empty lines on one line each (a blank line would end the cue in both formats)."""
    return [" ".join(line.split()) for line in cue.lines if line.strip()]


def vtt_escape(text: str) -> str:
    """Text as WebVTT cue text: ``&``, ``<`` and ``>`` as character references (so ``-->`` cannot appear)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Sequence[Cue]) -> str:
    """A WebVTT file: the ``WEBVTT`` header, then each cue with its id, timings and escaped lines."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        timing = f"{_clock(cue.start_ms, '.')} --> {_clock(cue.end_ms, '.')}"
        blocks.append("\n".join([cue.id, timing, *(vtt_escape(line) for line in _lines(cue))]) + "\n")
    return "\n".join(blocks)


def to_srt(cues: Sequence[Cue]) -> str:
    """A SubRip file: counters from 1, ``HH:MM:SS,mmm`` timings, the lines, a blank line after each cue."""
    blocks = []
    for n, cue in enumerate(cues, 1):
        timing = f"{_clock(cue.start_ms, ',')} --> {_clock(cue.end_ms, ',')}"
        blocks.append("\n".join([str(n), timing, *_lines(cue)]) + "\n\n")
    return "".join(blocks)


class _JsonWord(msgspec.Struct, frozen=True):
    start: float
    end: float
    text: str
    probability: float


class _JsonCue(msgspec.Struct, frozen=True):
    id: str
    start: float
    end: float
    text: str
    lines: tuple[str, ...]
    words: tuple[_JsonWord, ...]


class _JsonTrack(msgspec.Struct, frozen=True):
    language: str
    cues: tuple[_JsonCue, ...]


def to_json(cues: Sequence[Cue], *, language: str) -> bytes:
    """The track as JSON: times in seconds, each cue's lines and its words with their times and probabilities."""
    track = _JsonTrack(
        language=language,
        cues=tuple(
            _JsonCue(
                id=c.id,
                start=c.start_ms / 1000,
                end=c.end_ms / 1000,
                text=c.text,
                lines=c.lines,
                words=tuple(
                    _JsonWord(round(w.start, 3), round(w.end, 3), w.text.strip(), round(w.probability, 3))
                    for w in c.words
                ),
            )
            for c in cues
        ),
    )
    return msgspec.json.encode(track)


def transcript_json(transcript: Transcript) -> bytes:
    """A transcript as JSON (segments with word times, in seconds): what other services read by its key."""
    return msgspec.json.encode(transcript)
