"""The style check of a track: every cue against its language's profile, violations listed per rule.

The same check judges built, translated and user-edited cues (docs/captions.md lists the rules and their sources).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import msgspec

from .cues import Cue
from .profiles import DEFAULT_FPS, Profile, last_word


class Rule(StrEnum):
    """What a cue can break."""

    EMPTY = "empty"
    LINE_COUNT = "line_count"
    LINE_LENGTH = "line_length"
    READING_SPEED = "reading_speed"
    MIN_DURATION = "min_duration"
    MAX_DURATION = "max_duration"
    GAP = "gap"
    OVERLAP = "overlap"
    LINE_BREAK = "line_break"
    BOUNDS = "bounds"
    DUPLICATE_ID = "duplicate_id"


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One broken rule: which cue, which rule, and the numbers."""

    cue_id: str
    rule: Rule
    detail: str


_EPS = 1e-9


def check(
    cues: Sequence[Cue], profile: Profile, *, media_end_ms: int | None = None, fps: float = DEFAULT_FPS
) -> list[Violation]:
    """Every violation of ``profile`` in ``cues`` (time order expected: out-of-order cues are overlaps)."""
    found: list[Violation] = []
    seen: set[str] = set()
    for k, cue in enumerate(cues):
        if cue.id in seen:
            found.append(Violation(cue_id=cue.id, rule=Rule.DUPLICATE_ID, detail="the id is used twice"))
        seen.add(cue.id)
        found.extend(_cue_violations(cue, profile, media_end_ms))
        if k + 1 < len(cues):
            found.extend(_pair_violations(cue, cues[k + 1], profile.min_gap_ms(fps)))
    return found


def summary(violations: Sequence[Violation]) -> dict[str, int]:
    """How many violations of each rule (every rule listed, zero included): a track's quality report."""
    counts = {rule.value: 0 for rule in Rule}
    for v in violations:
        counts[v.rule.value] += 1
    return counts


def _cue_violations(cue: Cue, p: Profile, media_end_ms: int | None) -> list[Violation]:
    out: list[Violation] = []

    def add(rule: Rule, detail: str) -> None:
        out.append(Violation(cue_id=cue.id, rule=rule, detail=detail))

    lines = [line.strip() for line in cue.lines]
    if not any(lines) or not all(lines):
        add(Rule.EMPTY, "the cue or one of its lines has no text")
    if len(lines) > p.max_lines:
        add(Rule.LINE_COUNT, f"{len(lines)} lines > {p.max_lines}")
    for line in lines:
        if p.width(line) > p.max_chars_per_line + _EPS:
            add(Rule.LINE_LENGTH, f"{p.width(line):g} characters > {p.max_chars_per_line:g}: {line!r}")
    if any(last_word(line) in p.articles for line in lines):
        add(Rule.LINE_BREAK, "a line ends on an article, apart from its noun")
    duration = cue.end_ms - cue.start_ms
    if cue.start_ms < 0 or duration <= 0 or (media_end_ms is not None and cue.end_ms > media_end_ms):
        add(Rule.BOUNDS, f"{cue.start_ms}-{cue.end_ms} ms is not a span inside the media ({media_end_ms} ms)")
        return out
    if duration < p.min_duration_ms:
        add(Rule.MIN_DURATION, f"{duration} ms < {p.min_duration_ms} ms")
    if duration > p.max_duration_ms:
        add(Rule.MAX_DURATION, f"{duration} ms > {p.max_duration_ms} ms")
    cps = p.width(cue.text) * 1000 / duration
    if cps > p.max_cps + _EPS:
        add(Rule.READING_SPEED, f"{cps:.1f} characters/s > {p.max_cps:g}")
    return out


def _pair_violations(cue: Cue, nxt: Cue, min_gap_ms: int) -> list[Violation]:
    if nxt.start_ms < cue.end_ms:
        return [
            Violation(cue_id=nxt.id, rule=Rule.OVERLAP, detail=f"starts {cue.end_ms - nxt.start_ms} ms early")
        ]
    gap = nxt.start_ms - cue.end_ms
    if gap < min_gap_ms:
        return [Violation(cue_id=nxt.id, rule=Rule.GAP, detail=f"{gap} ms after {cue.id} < {min_gap_ms} ms")]
    return []
