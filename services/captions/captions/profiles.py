"""Subtitle style profiles per language (numbers and their sources: docs/captions.md)."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

# 5/6 of a second, rounded up to whole milliseconds, so a cue of exactly 5/6 s passes.
MIN_DURATION_MS = math.ceil(5000 / 6)
MAX_DURATION_MS = 7000
DEFAULT_FPS = 25.0

# ASCII, the ellipsis, and the ideographic / full-width forms (escaped: they look like ASCII)
SENTENCE_END = frozenset(".?!\u2026\u3002\uff1f\uff01")
CLAUSE_END = frozenset(",;:\u2014\u2013\u3001\uff0c\uff1b\uff1a")
_CLOSERS = "\"'\u201d\u2019\u00bb)]}"
_OPENERS = "\"'\u201c\u2018\u00ab([{\u00bf\u00a1"


@dataclass(frozen=True, kw_only=True)
class Profile:
    """The rules one language's cues must meet, and the words a line or cue may not end on."""

    language: str
    max_chars_per_line: float
    max_lines: int = 2
    max_cps: float
    min_duration_ms: int = MIN_DURATION_MS
    max_duration_ms: int = MAX_DURATION_MS
    min_gap_frames: int = 2
    half_width_latin: bool = False  # Latin letters, digits, spaces and punctuation count half (Korean)
    articles: frozenset[str] = frozenset()  # never the last word of a line or cue (article | noun)
    weak_ends: frozenset[str] = (
        frozenset()
    )  # a break after these splits a phrase (prepositions, conjunctions)
    clause_starts: frozenset[str] = frozenset()  # a break before these falls on a clause boundary

    def width(self, text: str) -> float:
        """How many characters ``text`` counts for under this profile."""
        if not self.half_width_latin:
            return float(len(text))
        return sum(0.5 if _is_half(ch) else 1.0 for ch in text)

    def min_gap_ms(self, fps: float = DEFAULT_FPS) -> int:
        """The smallest gap between two cues, in whole milliseconds, at ``fps`` frames per second."""
        return math.ceil(self.min_gap_frames * 1000 / fps)


def _is_half(ch: str) -> bool:
    if ch.isspace() or (ch.isascii() and ch.isprintable()):
        return True
    return unicodedata.category(ch)[0] in "PZ" or (ch.isalpha() and "LATIN" in unicodedata.name(ch, ""))


_EN_ARTICLES = frozenset({"a", "an", "the"})
_EN_DETERMINERS = frozenset(
    [
        "this",
        "that",
        "these",
        "those",
        "my",
        "your",
        "his",
        "her",
        "its",
        "our",
        "their",
        "some",
        "any",
        "no",
        "every",
        "each",
    ]
)
_EN_PREPOSITIONS = frozenset(
    [
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "with",
        "from",
        "by",
        "about",
        "into",
        "onto",
        "over",
        "under",
        "after",
        "before",
        "between",
        "through",
        "during",
        "without",
        "within",
        "near",
    ]
)
_EN_CONJUNCTIONS = frozenset(
    [
        "and",
        "but",
        "or",
        "nor",
        "so",
        "yet",
        "because",
        "if",
        "when",
        "while",
        "although",
        "though",
        "since",
        "unless",
    ]
)
_EN_AUXILIARIES = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "will",
        "would",
        "can",
        "could",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "do",
    ]
)
_EN_SUBJECTS = frozenset(["i", "you", "he", "she", "we", "they", "it"])

ENGLISH = Profile(
    language="en",
    max_chars_per_line=42,
    max_cps=20,
    articles=_EN_ARTICLES,
    weak_ends=_EN_DETERMINERS
    | _EN_PREPOSITIONS
    | _EN_CONJUNCTIONS
    | _EN_AUXILIARIES
    | _EN_SUBJECTS
    | frozenset({"to", "not"}),
    # a break before a conjunction, a relative pronoun or a noun phrase falls between phrases
    clause_starts=_EN_CONJUNCTIONS
    | _EN_ARTICLES
    | _EN_DETERMINERS
    | frozenset(["which", "who", "whose", "where", "to"]),
)
KOREAN = Profile(language="ko", max_chars_per_line=16, max_cps=12, half_width_latin=True)
DEFAULT = Profile(language="*", max_chars_per_line=42, max_cps=17)

PROFILES: dict[str, Profile] = {p.language: p for p in (ENGLISH, KOREAN)}


def profile_for(language: str) -> Profile:
    """The profile of a language code (``en``, ``en-US``, ``ko``...); the default profile for others."""
    base = language.split("-")[0].split("_")[0].lower()
    return PROFILES.get(base, DEFAULT)


def last_word(text: str) -> str:
    """The last word of ``text``, lower-cased, without surrounding punctuation."""
    parts = text.split()
    return parts[-1].strip(_CLOSERS + "".join(SENTENCE_END | CLAUSE_END)).lower() if parts else ""


def first_word(text: str) -> str:
    """The first word of ``text``, lower-cased, without surrounding punctuation."""
    parts = text.split()
    return parts[0].strip(_CLOSERS + _OPENERS).lower() if parts else ""


def ends_sentence(text: str) -> bool:
    """Whether ``text`` ends a sentence (closing quotes and brackets aside)."""
    t = text.rstrip().rstrip(_CLOSERS)
    return bool(t) and t[-1] in SENTENCE_END


def ends_clause(text: str) -> bool:
    """Whether ``text`` ends on clause punctuation (comma, semicolon, colon, dash)."""
    t = text.rstrip().rstrip(_CLOSERS)
    return bool(t) and t[-1] in CLAUSE_END


def is_wide(ch: str) -> bool:
    """Whether ``ch`` is written without spaces between words (CJK ideographs, kana)."""
    return unicodedata.east_asian_width(ch) in "WF" and not ("\uac00" <= ch <= "\ud7a3")


def join_lines(lines: tuple[str, ...] | list[str]) -> str:
    """The lines of a cue as one run of text: a space between them unless both sides are CJK."""
    out = ""
    for line in lines:
        if out and not (is_wide(out[-1]) and is_wide(line[:1] or " ")):
            out += " "
        out += line
    return out
