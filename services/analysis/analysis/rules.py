"""YouTube's chapter rules and the highlight rules: checks that name each violation, and repairs that keep what is valid."""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence

from .models import Chapter, Highlight
from .transcript import Sentence

MIN_CHAPTERS = 3
MIN_CHAPTER_S = 10.0
MAX_TITLE_CHARS = 49
# A highlight may end this far past the last word (models round times up).
END_TOLERANCE_S = 1.0


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``), as YouTube writes chapter times."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def sentence_starts(sentences: Sequence[Sentence]) -> list[float]:
    """Where chapters may start: each sentence's start, the first one moved to 0:00."""
    starts = sorted({round(s.start_s, 3) for s in sentences})
    return [0.0, *starts[1:]] if starts else [0.0]


def snap(seconds: float, starts: Sequence[float]) -> float:
    """The sentence start nearest to ``seconds``."""
    index = bisect.bisect_left(starts, seconds)
    candidates = [starts[i] for i in (index - 1, index) if 0 <= i < len(starts)]
    return min(candidates, key=lambda start: abs(start - seconds))


def snap_chapters(
    chapters: Sequence[Chapter], starts: Sequence[float], *, duration_s: float
) -> list[Chapter]:
    """Each chapter inside the video moved to the nearest sentence start (those outside stay, to be reported);
    titles stripped."""
    return [
        Chapter(
            start_s=snap(c.start_s, starts) if 0 <= c.start_s < duration_s else c.start_s,
            title=c.title.strip(),
        )
        for c in chapters
    ]


def chapter_violations(chapters: Sequence[Chapter], *, duration_s: float) -> list[str]:
    """Every way ``chapters`` break YouTube's rules, as sentences a model can act on."""
    errors: list[str] = []
    if len(chapters) < MIN_CHAPTERS:
        errors.append(f"there are {len(chapters)} chapters; at least {MIN_CHAPTERS} are needed")
    if chapters and chapters[0].start_s != 0:
        errors.append(f"the first chapter must start at 0:00, not {clock(chapters[0].start_s)}")
    for index, chapter in enumerate(chapters):
        name = f"chapter {index + 1} ({chapter.title!r} at {clock(chapter.start_s)})"
        if not chapter.title:
            errors.append(f"{name} has no title")
        if len(chapter.title) > MAX_TITLE_CHARS:
            errors.append(f"{name}: the title has {len(chapter.title)} characters; at most {MAX_TITLE_CHARS}")
        if chapter.start_s < 0 or chapter.start_s >= duration_s:
            errors.append(f"{name} lies outside the video (0:00 to {clock(duration_s)})")
        if index > 0:
            gap = chapter.start_s - chapters[index - 1].start_s
            if gap <= 0:
                errors.append(f"{name} does not come after the previous chapter")
            elif gap < MIN_CHAPTER_S:
                errors.append(f"chapter {index} lasts {gap:.0f} s; each chapter must last at least 10 s")
    if chapters and 0 <= duration_s - chapters[-1].start_s < MIN_CHAPTER_S:
        errors.append(f"the last chapter lasts less than 10 s before the end at {clock(duration_s)}")
    return errors


def _shorten(title: str) -> str:
    if len(title) <= MAX_TITLE_CHARS:
        return title
    cut = title[: MAX_TITLE_CHARS - 1].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return f"{cut}…"


def repair_chapters(chapters: Sequence[Chapter], *, duration_s: float) -> tuple[list[Chapter], list[str]]:
    """The valid part of (snapped) ``chapters``, and warnings for what was changed or dropped.

    Out-of-range and untitled chapters are dropped, the earliest is moved to 0:00, any chapter closer than
    10 s to the one kept before it (or to the end) is dropped, long titles are shortened; if fewer than
    three remain, there are no chapters.
    """
    warnings: list[str] = []
    inside = sorted((c for c in chapters if 0 <= c.start_s < duration_s and c.title), key=lambda c: c.start_s)
    if len(inside) < len(chapters):
        warnings.append(f"dropped {len(chapters) - len(inside)} chapters outside the video or untitled")
    if any(b.start_s < a.start_s for a, b in itertools.pairwise(chapters)):
        warnings.append("put the chapters in time order")
    kept: list[Chapter] = []
    for chapter in inside:
        if not kept:
            if chapter.start_s != 0:
                warnings.append(f"moved the first chapter from {clock(chapter.start_s)} to 0:00")
            kept.append(Chapter(start_s=0.0, title=chapter.title))
        elif chapter.start_s - kept[-1].start_s >= MIN_CHAPTER_S:
            kept.append(chapter)
        else:
            warnings.append(f"dropped chapter {chapter.title!r}: less than 10 s after the previous one")
    while len(kept) > 1 and duration_s - kept[-1].start_s < MIN_CHAPTER_S:
        warnings.append(f"dropped chapter {kept.pop().title!r}: less than 10 s before the end")
    shortened = [Chapter(start_s=c.start_s, title=_shorten(c.title)) for c in kept]
    if any(a.title != b.title for a, b in zip(shortened, kept, strict=True)):
        warnings.append(f"shortened chapter titles to {MAX_TITLE_CHARS} characters")
    if len(shortened) < MIN_CHAPTERS:
        warnings.append(f"no chapters: fewer than {MIN_CHAPTERS} valid chapters")
        return [], warnings
    return shortened, warnings


_NOT_WORD = re.compile(r"[^\w]+")


def normalize(text: str) -> str:
    """Case-folded words separated by single spaces (punctuation dropped), for quote matching."""
    return _NOT_WORD.sub(" ", text.casefold()).strip()


def quotes(quote: str, transcript_text: str) -> bool:
    """Whether every part of ``quote`` (split at ellipses) occurs in the normalized transcript text."""
    parts = [normalize(part) for part in re.split(r"\.\.\.|…", quote)]
    parts = [part for part in parts if part]
    return bool(parts) and all(part in transcript_text for part in parts)


def highlight_violations(
    highlights: Sequence[Highlight], *, duration_s: float, transcript_text: str
) -> list[str]:
    """Every highlight outside the video or not quoting the transcript (``transcript_text`` normalized)."""
    errors: list[str] = []
    for index, h in enumerate(highlights):
        name = f"highlight {index + 1} ({clock(h.start_s)}-{clock(h.end_s)})"
        if not (0 <= h.start_s < h.end_s <= duration_s + END_TOLERANCE_S):
            errors.append(f"{name} does not lie inside the video (0:00 to {clock(duration_s)})")
        if not quotes(h.quote, transcript_text):
            errors.append(f"{name}: the quote {h.quote[:80]!r} is not in the transcript word for word")
    return errors


def repair_highlights(
    highlights: Sequence[Highlight], *, duration_s: float, transcript_text: str
) -> tuple[list[Highlight], list[str]]:
    """The highlights that satisfy the rules (ends clamped to the duration), and a warning for the rest."""
    kept = [
        Highlight(start_s=h.start_s, end_s=min(h.end_s, duration_s), quote=h.quote, reason=h.reason)
        for h in highlights
        if not highlight_violations([h], duration_s=duration_s, transcript_text=transcript_text)
    ]
    dropped = len(highlights) - len(kept)
    return kept, [f"dropped {dropped} highlights outside the video or not quoting it"] if dropped else []
