"""The two engines behind one interface, and the content cache's key."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .extractive import EXTRACTIVE_VERSION, Embedder, analyze_extractive, default_embedder
from .models import AnalysisOptions, AnalysisResult, Engine
from .transcript import Transcript


class Analyzer(Protocol):
    """An engine: what it is called (stored with each result) and how it analyses a transcript."""

    @property
    def engine(self) -> Engine:
        """Which engine this is."""
        ...

    @property
    def model(self) -> str:
        """The model name stored with each result."""
        ...

    @property
    def prompt_version(self) -> str:
        """The prompt (or algorithm) version stored with each result."""
        ...

    async def analyze(
        self, transcript: Transcript, options: AnalysisOptions, *, duration_s: float | None = None
    ) -> AnalysisResult:
        """The analysis of ``transcript`` (of a video lasting ``duration_s``, if known)."""
        ...


@dataclass(frozen=True)
class ExtractiveEngine:
    """The offline engine as an ``Analyzer`` (its CPU work runs in a thread)."""

    embedder: Embedder = field(default_factory=default_embedder)
    engine: Engine = Engine.EXTRACTIVE
    prompt_version: str = EXTRACTIVE_VERSION

    @property
    def model(self) -> str:
        """The embedding model's name."""
        return self.embedder.name

    async def analyze(
        self, transcript: Transcript, options: AnalysisOptions, *, duration_s: float | None = None
    ) -> AnalysisResult:
        """``analyze_extractive`` in a worker thread."""
        return await asyncio.to_thread(
            analyze_extractive, transcript, options, duration_s=duration_s, embedder=self.embedder
        )


def cache_key(*, source_id: str, transcript: Transcript, analyzer: Analyzer, options: AnalysisOptions) -> str:
    """The content cache's key: the source, the transcript's content, the engine's model and prompt version,
    and the options (a different detail or language is a different analysis)."""
    parts = [
        source_id,
        transcript.content_hash(),
        analyzer.engine,
        analyzer.model,
        analyzer.prompt_version,
        options.detail,
        options.output_language or transcript.language,
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def memo_key(*, url: str, analyzer: Analyzer, options: AnalysisOptions) -> str:
    """The page memo's key: the URL as given, the engine's model and prompt version, and the options as asked (the
    output language left to the transcript stays unset: the same page gives the same transcript language)."""
    parts = [
        url,
        analyzer.engine,
        analyzer.model,
        analyzer.prompt_version,
        options.detail,
        options.output_language or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


if TYPE_CHECKING:
    from .gemini import GeminiEngine

    def _both_are_analyzers(gemini: GeminiEngine, extractive: ExtractiveEngine) -> tuple[Analyzer, Analyzer]:
        return gemini, extractive
