"""Records of the analysis service: the analysis result (both engines produce it) and its error codes."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Detail(StrEnum):
    """How long the summary and lists are."""

    BRIEF = "brief"
    STANDARD = "standard"
    DETAILED = "detailed"


class Engine(StrEnum):
    """Which engine wrote a result."""

    GEMINI = "gemini"
    EXTRACTIVE = "extractive"


class AnalysisErrorCode(StrEnum):
    """Stable codes of analysis failures a user sees (raised as ``common.jobs.JobFailure``)."""

    TRANSCRIPT_EMPTY = "transcript.empty"
    MODEL_MALFORMED_OUTPUT = "model.malformed_output"
    MODEL_UNAVAILABLE = "model.unavailable"
    MODEL_REJECTED = "model.rejected"
    QUOTA_REQUEST_TOO_LARGE = "quota.request_too_large"


class AnalysisOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What the caller asks for: how detailed, and in which language (default: the transcript's)."""

    detail: Detail = Detail.STANDARD
    output_language: str | None = None


class Chapter(msgspec.Struct, frozen=True):
    """A chapter mark: where it starts and its title."""

    start_s: float
    title: str


class Highlight(msgspec.Struct, frozen=True):
    """A moment worth watching, quoting the transcript."""

    start_s: float
    end_s: float
    quote: str
    reason: str


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    """What an engine writes about a video (and the JSON the Gemini model must return)."""

    title: str
    summary: str
    key_points: list[str]
    chapters: list[Chapter]
    highlights: list[Highlight]
    keywords: list[str]


class AnalysisResult(Analysis, frozen=True, kw_only=True):
    """The structured analysis of one video, with who wrote it; ``warnings`` says what was dropped or repaired."""

    engine: Engine
    model: str
    prompt_version: str
    warnings: list[str] = []
