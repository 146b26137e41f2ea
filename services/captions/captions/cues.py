"""Cues built to a language's profile: from word times (a transcript) or from translated text (a re-flow).

Both paths cut the words into runs at pauses, choose the cue boundaries of each run by dynamic programming (each cue
fits its lines, breaks fall at punctuation and clause boundaries, never after an article, reading speed and duration
stay within the profile), then time the cues in one pass (minimum duration, reading-speed extension, gaps of whole
frames, no overlap, the last cue ends inside the media).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import msgspec

from .profiles import (
    DEFAULT_FPS,
    Profile,
    ends_clause,
    ends_sentence,
    first_word,
    is_wide,
    join_lines,
    last_word,
)
from .transcript import Word

RUN_PAUSE_MS = 1500  # a pause this long always ends a cue: no cue spans a silence
CHAIN_FRAMES = 12  # a gap shorter than this is closed to the minimum gap (no flicker between cues)
FORBIDDEN = 1000.0  # a break between an article and its noun
_CUE_COST = 30.0  # each extra cue costs this much: fewer, fuller cues unless a break is cheap
_TIMING_COST = 300.0  # a cue that cannot meet its duration or reading speed
_BALANCE_COST = 0.5  # per character a line is longer or shorter than an even split


class Cue(msgspec.Struct, frozen=True, kw_only=True):
    """One subtitle: a stable id, its time span in milliseconds, its lines, and the words it came from."""

    id: str
    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    words: tuple[Word, ...] = ()

    @property
    def text(self) -> str:
        """The cue's lines as one run of text."""
        return join_lines(self.lines)


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str  # with the space that joins it to the previous token, if the language uses one
    start_ms: int
    end_ms: int
    word: Word | None = None


@dataclass(frozen=True, slots=True)
class _Draft:
    id: str
    start_ms: int
    natural_end_ms: int
    lines: tuple[str, ...]
    width: float
    words: tuple[Word, ...]


class _Run:
    """Tokens without a long pause between them, with O(1) line widths and precomputed break costs."""

    def __init__(self, toks: Sequence[_Tok], profile: Profile) -> None:
        self.toks, self.profile = toks, profile
        full = [profile.width(t.text) for t in toks]
        self.core = [profile.width(t.text.strip()) for t in toks]
        self.prefix = [0.0]
        for w in full:
            self.prefix.append(self.prefix[-1] + w)
        # breaks[k]: the cost of a break between token k and token k+1
        self.breaks = [break_cost(profile, toks[k].text, toks[k + 1].text) for k in range(len(toks) - 1)]

    def width(self, a: int, b: int) -> float:
        """Width of tokens a..b-1 on one line."""
        return self.core[a] + self.prefix[b] - self.prefix[a + 1]

    def text(self, a: int, b: int) -> str:
        return "".join(t.text for t in self.toks[a:b]).strip()

    def layout(self, a: int, b: int) -> tuple[tuple[str, ...], float] | None:
        """The cheapest arrangement of tokens a..b-1 into lines, and its cost; None when they cannot fit."""
        p = self.profile
        if self.width(a, b) <= p.max_chars_per_line:
            return (self.text(a, b),), 0.0
        best: tuple[tuple[str, ...], float] | None = None
        for n_lines in range(2, p.max_lines + 1):
            found = self._split(a, b, n_lines, self.width(a, b) / n_lines)
            if found is not None and (best is None or found[1] < best[1]):
                best = (tuple(self.text(x, y) for x, y in found[0]), found[1] + n_lines)
        return best

    def _split(
        self, a: int, b: int, n_lines: int, ideal: float
    ) -> tuple[list[tuple[int, int]], float] | None:
        """Tokens a..b-1 in exactly ``n_lines`` lines of at most the line width: the cheapest spans and cost."""
        limit = self.profile.max_chars_per_line
        # table[k][i]: the cheapest way to lay tokens i..b-1 in k lines
        table: list[dict[int, tuple[float, list[tuple[int, int]]]]] = [{b: (0.0, [])}]
        for k in range(1, n_lines + 1):
            row: dict[int, tuple[float, list[tuple[int, int]]]] = {}
            for i in range(a, b):
                for j in range(i + 1, b + 1):
                    if self.width(i, j) > limit:
                        break
                    rest = table[k - 1].get(j)
                    if rest is None:
                        continue
                    cost = rest[0] + _BALANCE_COST * abs(self.width(i, j) - ideal)
                    cost += self.breaks[j - 1] if j < b else 0.0
                    if i not in row or cost < row[i][0]:
                        row[i] = (cost, [(i, j), *rest[1]])
            table.append(row)
        found = table[n_lines].get(a)
        return None if found is None else (found[1], found[0])


def break_cost(profile: Profile, before: str, after: str) -> float:
    """The cost of ending a line or a cue after ``before`` when ``after`` comes next (0 = at a sentence end)."""
    if ends_sentence(before):
        return 0.0
    if ends_clause(before):
        return 10.0
    word = last_word(before)
    if word in profile.articles:
        return FORBIDDEN
    if word in profile.weak_ends:
        return 60.0
    if first_word(after) in profile.clause_starts:
        return 20.0
    return 40.0


def build_cues(
    words: Sequence[Word],
    profile: Profile,
    *,
    media_end_ms: int,
    fps: float = DEFAULT_FPS,
    id_prefix: str = "c",
) -> list[Cue]:
    """Cues from recognised words (time order), meeting ``profile``; ids are ``<prefix><n>`` from 1."""
    toks = _word_tokens(words, media_end_ms)
    gap = profile.min_gap_ms(fps)
    spans: list[tuple[_Run, int, int, tuple[str, ...]]] = []
    runs = _runs(toks)
    for k, run_toks in enumerate(runs):
        limit = runs[k + 1][0].start_ms - gap if k + 1 < len(runs) else media_end_ms
        run = _Run(run_toks, profile)
        spans.extend((run, a, b, lines) for a, b, lines in _partition(run, limit, gap))
    drafts = [_draft(f"{id_prefix}{n}", run, a, b, lines) for n, (run, a, b, lines) in enumerate(spans, 1)]
    return _timed(drafts, profile, media_end_ms=media_end_ms, gap=gap, fps=fps)


def reflow(
    source: Sequence[Cue],
    texts: Mapping[str, str],
    profile: Profile,
    *,
    media_end_ms: int,
    fps: float = DEFAULT_FPS,
) -> list[Cue]:
    """Translated cues on the source cues' times, laid out for ``profile``.

    A cue whose translation fits its lines and reading speed keeps its id and times. The cues of a sentence in
    which one does not are re-split over the sentence's time span (merged or split as reading speed demands):
    they keep the sentence's ids in order; an extra cue gets ``<last id>.<n>``.
    """
    gap = profile.min_gap_ms(fps)
    drafts: list[_Draft] = []
    groups = _sentences(source)
    for g, group in enumerate(groups):
        first, last = group[0], group[-1]
        limit = min(groups[g + 1][0].start_ms - gap, media_end_ms) if g + 1 < len(groups) else media_end_ms
        kept = _fitting(group, texts, profile, limit, gap)
        if kept is not None:
            drafts.extend(kept)
            continue
        toks = _spread(_text_tokens(" ".join(texts[c.id] for c in group)), first.start_ms, last.end_ms)
        run = _Run(toks, profile)
        spans = _partition(run, limit, gap)
        ids = [c.id for c in group] + [f"{last.id}.{n}" for n in range(2, len(spans) - len(group) + 2)]
        drafts.extend(_draft(i, run, a, b, lines) for i, (a, b, lines) in zip(ids, spans, strict=False))
    return _timed(drafts, profile, media_end_ms=media_end_ms, gap=gap, fps=fps)


def layout_text(text: str, profile: Profile) -> tuple[str, ...]:
    """``text`` broken into lines for ``profile`` (one line per token when nothing fits)."""
    toks = _text_tokens(text)
    if not toks:
        return ()
    run = _Run(_spread(toks, 0, 1), profile)
    laid = run.layout(0, len(toks))
    return laid[0] if laid is not None else (run.text(0, len(toks)),)


def _word_tokens(words: Sequence[Word], media_end_ms: int) -> list[_Tok]:
    toks: list[_Tok] = []
    for w in words:
        if not w.text.strip():
            continue
        start = max(round(w.start * 1000), toks[-1].start_ms if toks else 0)
        if start >= media_end_ms:
            break
        end = min(max(round(w.end * 1000), start), media_end_ms)
        text = w.text if toks else w.text.lstrip()
        toks.append(_Tok(text=text, start_ms=start, end_ms=end, word=w))
    return toks


def _text_tokens(text: str) -> list[str]:
    """Plain text as tokens: words with their joining space, or single characters for text written without."""
    parts = text.split()
    if len(parts) > 1 or not parts:
        return [parts[0], *(" " + p for p in parts[1:])] if parts else []
    return list(parts[0]) if any(is_wide(ch) for ch in parts[0]) else parts


def _spread(texts: Sequence[str], start_ms: int, end_ms: int) -> list[_Tok]:
    """Tokens without times of their own, given times in proportion to their length over a span."""
    total = sum(len(t.strip()) or 1 for t in texts) or 1
    toks, done = [], 0
    for t in texts:
        share = len(t.strip()) or 1
        a = start_ms + (end_ms - start_ms) * done // total
        done += share
        toks.append(_Tok(text=t, start_ms=a, end_ms=start_ms + (end_ms - start_ms) * done // total))
    return toks


def _runs(toks: Sequence[_Tok]) -> list[list[_Tok]]:
    runs: list[list[_Tok]] = []
    for t in toks:
        if runs and t.start_ms - runs[-1][-1].end_ms < RUN_PAUSE_MS:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _partition(run: _Run, limit_ms: int, gap: int) -> list[tuple[int, int, tuple[str, ...]]]:
    """The cheapest cutting of a run into cues: (first token, end token, lines) for each cue."""
    p, toks, n = run.profile, run.toks, len(run.toks)
    best: list[float] = [0.0] + [math.inf] * n
    back: list[tuple[int, tuple[str, ...]]] = [(0, ())] * (n + 1)
    for i in range(n):
        if best[i] == math.inf:
            continue
        for j in range(i + 1, n + 1):
            width = run.width(i, j)
            if j > i + 1 and (
                width > p.max_lines * p.max_chars_per_line
                or toks[j - 1].end_ms - toks[i].start_ms > p.max_duration_ms
            ):
                break
            laid = run.layout(i, j) or ((run.text(i, j),), FORBIDDEN)
            next_start = toks[j].start_ms - gap if j < n else limit_ms
            cost = _CUE_COST + laid[1] + _timing_cost(p, width, toks[i].start_ms, next_start)
            cost += 2 * run.breaks[j - 1] if j < n else 0.0
            if best[i] + cost < best[j]:
                best[j], back[j] = best[i] + cost, (i, laid[0])
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    j = n
    while j > 0:
        i, lines = back[j]
        spans.append((i, j, lines))
        j = i
    return spans[::-1]


def _timing_cost(p: Profile, width: float, start_ms: int, limit_ms: int) -> float:
    """What a cue costs when the time it can have is too short for its duration or reading speed."""
    room = min(limit_ms, start_ms + p.max_duration_ms) - start_ms
    need = max(p.min_duration_ms, math.ceil(width * 1000 / p.max_cps))
    if room >= need:
        return 0.0
    return _TIMING_COST + (need - room) / 10


def _draft(cue_id: str, run: _Run, a: int, b: int, lines: tuple[str, ...]) -> _Draft:
    toks = run.toks[a:b]
    words = tuple(t.word for t in toks if t.word is not None)
    return _Draft(
        id=cue_id,
        start_ms=toks[0].start_ms,
        natural_end_ms=max(t.end_ms for t in toks),
        lines=lines,
        width=run.profile.width(join_lines(lines)),
        words=words,
    )


def _sentences(cues: Sequence[Cue]) -> list[list[Cue]]:
    """Consecutive cues of one sentence (no sentence end and no long pause between them)."""
    groups: list[list[Cue]] = []
    for c in cues:
        prev = groups[-1][-1] if groups else None
        if prev is not None and not ends_sentence(prev.text) and c.start_ms - prev.end_ms < RUN_PAUSE_MS:
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups


def _fitting(
    group: Sequence[Cue], texts: Mapping[str, str], p: Profile, limit_ms: int, gap: int
) -> list[_Draft] | None:
    """The group's cues with their translations when every one fits lines and reading speed; else None."""
    drafts = []
    for k, cue in enumerate(group):
        lines = layout_text(texts[cue.id], p)
        width = p.width(join_lines(lines))
        room_end = group[k + 1].start_ms - gap if k + 1 < len(group) else limit_ms
        if (
            not lines
            or len(lines) > p.max_lines
            or any(p.width(line) > p.max_chars_per_line for line in lines)
            or _timing_cost(p, width, cue.start_ms, room_end) > 0
        ):
            return None
        drafts.append(_Draft(cue.id, cue.start_ms, cue.end_ms, lines, width, ()))
    return drafts


def _timed(drafts: Sequence[_Draft], p: Profile, *, media_end_ms: int, gap: int, fps: float) -> list[Cue]:
    """Cue times: at least the minimum duration and the reading time, short gaps closed, none overlapping."""
    chain_ms = math.ceil(CHAIN_FRAMES * 1000 / fps)
    cues: list[Cue] = []
    prev_end = -gap
    for k, d in enumerate(drafts):
        start = max(d.start_ms, prev_end + gap, 0)
        hard = media_end_ms if k + 1 == len(drafts) else min(media_end_ms, drafts[k + 1].start_ms - gap)
        limit = min(hard, start + p.max_duration_ms)
        need = start + max(p.min_duration_ms, math.ceil(d.width * 1000 / p.max_cps))
        end = min(max(d.natural_end_ms, need), limit)
        if k + 1 < len(drafts) and limit == hard and hard - end < chain_ms:
            end = hard
        if end - start < p.min_duration_ms:
            start = max(prev_end + gap, 0, min(start, end - p.min_duration_ms))
        end = max(end, start + 1)
        cues.append(Cue(id=d.id, start_ms=start, end_ms=end, lines=d.lines, words=d.words))
        prev_end = end
    return cues
