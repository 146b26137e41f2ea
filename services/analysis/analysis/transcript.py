"""The transcript an analysis reads: timed segments, parsed from YouTube json3 or WebVTT, split into sentences."""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import re
from enum import StrEnum
from typing import Any

import msgspec


class TranscriptSource(StrEnum):
    """Where a transcript came from, cheapest first."""

    CAPTION_TRACK = "caption_track"
    PLATFORM_SUBTITLES = "platform_subtitles"
    AUDIO = "audio"


class Segment(msgspec.Struct, frozen=True):
    """A stretch of speech with its times in seconds."""

    start_s: float
    end_s: float
    text: str


class Sentence(msgspec.Struct, frozen=True):
    """A sentence of the transcript, timed by the segments it was cut from."""

    start_s: float
    end_s: float
    text: str


class Transcript(msgspec.Struct, frozen=True, kw_only=True):
    """Segments in time order, their language (BCP 47, e.g. ``en``, ``ko``) and source."""

    segments: list[Segment]
    language: str
    source: TranscriptSource

    @property
    def duration_s(self) -> float:
        """The end of the last segment (the video may run longer)."""
        return max((s.end_s for s in self.segments), default=0.0)

    @property
    def text(self) -> str:
        """The whole transcript as one string."""
        return " ".join(s.text for s in self.segments)

    def content_hash(self) -> str:
        """A hex sha256 of the language and the timed text (not the source): the content cache's key part."""
        body = [self.language, [[round(s.start_s, 2), round(s.end_s, 2), s.text] for s in self.segments]]
        return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()


class TranscriptError(ValueError):
    """Subtitle data that cannot be parsed."""


def is_korean(text: str) -> bool:
    """Whether Hangul makes up most of the letters of ``text``."""
    hangul = sum(1 for ch in text if "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff")
    letters = sum(1 for ch in text if ch.isalpha())
    return letters > 0 and hangul / letters > 0.5


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def parse_json3(data: str | bytes, *, language: str, source: TranscriptSource) -> Transcript:
    """Parse YouTube's ``json3`` subtitle format (events with ``tStartMs``, ``dDurationMs`` and ``segs``)."""
    try:
        doc: Any = json.loads(data)
        events = doc["events"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TranscriptError(f"not json3 subtitles: {exc}") from exc
    segments: list[Segment] = []
    for event in events:
        segs = event.get("segs") if isinstance(event, dict) else None
        if not segs:
            continue
        text = _clean("".join(str(seg.get("utf8", "")) for seg in segs))
        if not text:
            continue
        start_ms = int(event.get("tStartMs", 0))
        end_ms = start_ms + max(int(event.get("dDurationMs", 0)), 0)
        segments.append(Segment(start_s=start_ms / 1000, end_s=end_ms / 1000, text=text))
    segments.sort(key=lambda s: s.start_s)
    return Transcript(segments=segments, language=language, source=source)


_VTT_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})")
_VTT_TAG = re.compile(r"<[^>]*>")


def _vtt_seconds(stamp: str) -> float:
    match = _VTT_TIME.fullmatch(stamp.strip())
    if match is None:
        raise TranscriptError(f"bad VTT timestamp {stamp!r}")
    hours, minutes, seconds, millis = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def parse_vtt(text: str, *, language: str, source: TranscriptSource) -> Transcript:
    """Parse WebVTT; a line that repeats one of the last lines shown is dropped.

    YouTube's auto-caption VTT shows each line two or three times: once as it is spoken (with inline word
    timings), then as the upper line of the next cues while the following line is spoken. Only the first
    showing is kept, with that cue's times.
    """
    if not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise TranscriptError("not WebVTT: missing the WEBVTT header")
    segments: list[Segment] = []
    recent: list[str] = []
    # Cues end at an empty line; YouTube's cues hold whitespace-only lines, which are not empty.
    for block in re.split(r"\r?\n\r?\n", text):
        lines = block.strip("\r\n").splitlines()
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        start_raw, _, rest = lines[timing].partition("-->")
        start = _vtt_seconds(start_raw)
        end = _vtt_seconds(rest.split()[0])
        for raw in lines[timing + 1 :]:
            line = _clean(_VTT_TAG.sub("", raw))
            if not line or line in recent:
                continue
            recent = [*recent[-2:], line]
            segments.append(Segment(start_s=start, end_s=max(end, start), text=line))
    return Transcript(segments=segments, language=language, source=source)


# Latin and full-width (CJK) sentence ends.
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff1f\uff01])[\"')\]]*\s+")
MAX_SENTENCE_WORDS = 40


@functools.cache
def kiwi() -> Any:
    """The process-wide Kiwi (Korean morphological analyser)."""
    from kiwipiepy import Kiwi

    return Kiwi()


def _sentence_spans(text: str, *, korean: bool) -> list[tuple[int, int]]:
    if korean:
        return [(s.start, s.end) for s in kiwi().split_into_sents(text)]
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def split_sentences(transcript: Transcript) -> list[Sentence]:
    """Sentences with times interpolated inside the segments they span.

    Korean is split by kiwipiepy (which finds sentence endings without punctuation); other languages at
    ``.!?``. A sentence longer than ``MAX_SENTENCE_WORDS`` (unpunctuated auto-captions) is cut at segment
    boundaries instead.
    """
    segments = [s for s in transcript.segments if s.text]
    if not segments:
        return []
    offsets: list[int] = []
    pieces: list[str] = []
    position = 0
    for segment in segments:
        offsets.append(position)
        pieces.append(segment.text)
        position += len(segment.text) + 1
    text = " ".join(pieces)

    def time_at(offset: int) -> float:
        index = max(bisect.bisect_right(offsets, offset) - 1, 0)
        segment = segments[index]
        fraction = min(max((offset - offsets[index]) / max(len(segment.text), 1), 0.0), 1.0)
        return segment.start_s + fraction * (segment.end_s - segment.start_s)

    korean = transcript.language.lower().startswith("ko") or is_korean(text)
    sentences: list[Sentence] = []
    for start, end in _sentence_spans(text, korean=korean):
        for piece_start, piece_end in _cut_long(text, start, end, offsets):
            body = text[piece_start:piece_end].strip()
            if body:
                sentences.append(
                    Sentence(
                        start_s=time_at(piece_start),
                        end_s=time_at(max(piece_end - 1, piece_start)),
                        text=body,
                    )
                )
    return sentences


def _cut_long(text: str, start: int, end: int, offsets: list[int]) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` at segment starts so that no piece is much longer than the word limit."""
    if len(text[start:end].split()) <= MAX_SENTENCE_WORDS:
        return [(start, end)]
    pieces: list[tuple[int, int]] = []
    piece_start = start
    for offset in offsets:
        if offset <= piece_start or offset >= end:
            continue
        if len(text[piece_start:offset].split()) >= MAX_SENTENCE_WORDS // 2:
            pieces.append((piece_start, offset))
            piece_start = offset
    pieces.append((piece_start, end))
    return pieces
