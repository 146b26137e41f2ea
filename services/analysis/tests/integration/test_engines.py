"""Both engines behind one interface, and the content cache key."""

from __future__ import annotations

from typing import Any

from analysis.engines import Analyzer, ExtractiveEngine, cache_key
from analysis.gemini import PROMPT_VERSION, GeminiEngine, make_client
from analysis.models import AnalysisOptions, Detail, Engine
from analysis.transcript import Segment, Transcript, TranscriptSource

from ..conftest import GovernorFactory


async def test_the_extractive_engine_runs_in_a_thread(english: Transcript) -> None:
    analyzer: Analyzer = ExtractiveEngine()
    result = await analyzer.analyze(english, AnalysisOptions(detail=Detail.BRIEF))
    assert result.engine is Engine.EXTRACTIVE and result.model == analyzer.model
    assert result.prompt_version == analyzer.prompt_version and len(result.chapters) >= 3


async def test_the_cache_key_changes_with_content_model_prompt_and_options(
    english: Transcript, governors: GovernorFactory
) -> None:
    client = make_client(api_key="k", base_url="http://127.0.0.1:9")
    gemini: Analyzer = GeminiEngine(client=client, governor=governors(), model="gemini-a")
    key: Any = lambda **changes: cache_key(  # noqa: E731
        **{
            "source_id": "yt:abc",
            "transcript": english,
            "analyzer": gemini,
            "options": AnalysisOptions(),
            **changes,
        }
    )
    base = key()
    assert key() == base
    assert key(options=AnalysisOptions(output_language="en")) == base  # the transcript's own language
    edited = Transcript(
        segments=[*english.segments, Segment(200.0, 201.0, "More.")],
        language="en",
        source=TranscriptSource.AUDIO,
    )
    others = [
        key(source_id="yt:def"),
        key(transcript=edited),
        key(analyzer=GeminiEngine(client=client, governor=governors(), model="gemini-b")),
        key(
            analyzer=GeminiEngine(
                client=client, governor=governors(), model="gemini-a", prompt_version=PROMPT_VERSION + "x"
            )
        ),
        key(analyzer=ExtractiveEngine()),
        key(options=AnalysisOptions(detail=Detail.BRIEF)),
        key(options=AnalysisOptions(output_language="ko")),
    ]
    assert len({base, *others}) == len(others) + 1
    await client.aio.aclose()
