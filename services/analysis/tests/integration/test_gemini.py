"""The Gemini engine through the real google-genai client against the local Gemini REST stub, with the
quota governor on the real Redis."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from analysis.gemini import PROMPT_VERSION, RESPONSE_SCHEMA, GeminiEngine, make_client
from analysis.models import AnalysisErrorCode, AnalysisOptions, Chapter, Engine
from analysis.quota import QuotaParked, RetryPolicy
from analysis.rules import chapter_violations
from analysis.transcript import Transcript
from common.jobs import JobFailure
from common.testing.gemini import (
    GeminiStub,
    Reply,
    answer,
    bad_request,
    count_tokens,
    rate_limited,
    server_error,
)

from ..conftest import GovernorFactory

MODEL = "gemini-stub"

# A valid analysis of the English fixture (sentences start at 1 + 6k s; topics at 43, 85 and 127 s).
VALID: dict[str, Any] = {
    "title": "Solar power, sourdough, a football final and the Moon",
    "summary": "The video covers home solar power, baking sourdough bread, a football final and a Moon mission.",
    "key_points": ["Rooftop solar makes about four kilowatts", "Sourdough needs an active starter"],
    "chapters": [
        {"start_s": 0, "title": "Solar power at home"},
        {"start_s": 44.2, "title": "Baking sourdough bread"},
        {"start_s": 84.0, "title": "The football final"},
        {"start_s": 128.5, "title": "A new mission to the Moon"},
    ],
    "highlights": [
        {
            "start_s": 7.0,
            "end_s": 12.8,
            "quote": "Solar panels turn sunlight into electricity with silicon cells.",
            "reason": "The core idea of the solar part.",
        },
        {
            "start_s": 103.0,
            "end_s": 108.8,
            "quote": "The goalkeeper saved a penalty in the last minute of the game",
            "reason": "The decisive moment of the final.",
        },
    ],
    "keywords": ["solar panels", "sourdough", "football", "Moon mission"],
}


def variant(**changes: Any) -> dict[str, Any]:
    """VALID with some fields replaced."""
    return {**copy.deepcopy(VALID), **changes}


@pytest.fixture
async def engine_for(gemini_stub: GeminiStub, governors: GovernorFactory) -> AsyncIterator[Any]:
    """Builds engines on the stub: each call is a new "worker" (its own client and governor)."""
    clients = []

    def make(*, timeout_s: float = 10.0, **limits: Any) -> GeminiEngine:
        client = make_client(api_key=gemini_stub.api_key, base_url=gemini_stub.base_url, timeout_s=timeout_s)
        clients.append(client)
        return GeminiEngine(client=client, governor=governors(**limits), model=MODEL)

    yield make
    for client in clients:
        await client.aio.aclose()


def texts(request: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of each content of a generateContent body."""
    return [(c.get("role", ""), "".join(p.get("text", "") for p in c["parts"])) for c in request["contents"]]


async def test_a_valid_answer(english: Transcript, gemini_stub: GeminiStub, engine_for: Any) -> None:
    gemini_stub.then(answer(VALID))
    result = await engine_for().analyze(english, AnalysisOptions())
    assert (
        result.engine is Engine.GEMINI and result.model == MODEL and result.prompt_version == PROMPT_VERSION
    )
    # Chapter times are snapped to the sentence starts.
    assert [c.start_s for c in result.chapters] == [0.0, 43.0, 85.0, 127.0]
    assert [h.quote for h in result.highlights] == [h["quote"] for h in VALID["highlights"]]
    assert result.warnings == [] and result.title == VALID["title"]
    [request] = gemini_stub.requests
    # The transcript is the first part (the prefix repeated prompts share), the instructions after it.
    (role, transcript), (_, instructions) = texts(request)
    assert role == "user" and transcript.startswith("TRANSCRIPT (language: en")
    assert "[0:43] Now let us move to the kitchen" in transcript
    assert PROMPT_VERSION in instructions and "at least 3" in instructions
    assert request["generationConfig"]["responseJsonSchema"] == RESPONSE_SCHEMA
    assert request["generationConfig"]["responseMimeType"] == "application/json"
    assert len(gemini_stub.count_requests) == 1 and gemini_stub.api_keys == [gemini_stub.api_key]


async def test_the_tokens_reserved_are_trued_up_with_the_answers_usage_metadata(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    engine: GeminiEngine = engine_for()
    in_flight: list[int] = []

    async def model(request: dict[str, Any]) -> Reply:
        # while the request is out, the shared window holds what the engine reserved for it
        in_flight.append(await engine.governor.window_tokens())
        return answer(VALID, prompt_tokens=700, output_tokens=80)  # usageMetadata.totalTokenCount: 780

    gemini_stub.responder = model
    await engine.analyze(english, AnalysisOptions())
    [counted] = gemini_stub.count_requests
    reserved = (
        count_tokens(counted) + engine.expected_output_tokens
    )  # countTokens' answer + the output expected
    assert in_flight == [reserved] and reserved != 780
    assert await engine.governor.window_tokens() == 780  # trued up to what the model says it used


async def test_bad_chapters_are_retried_with_the_errors(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    bad = variant(
        chapters=[
            {"start_s": 20, "title": "Intro"},
            {"start_s": 25, "title": "x" * 60},
            {"start_s": 400, "title": "Later"},
        ]
    )
    gemini_stub.then(answer(bad), answer(VALID))
    result = await engine_for().analyze(english, AnalysisOptions())
    assert [c.start_s for c in result.chapters] == [0.0, 43.0, 85.0, 127.0] and result.warnings == []
    first, second = gemini_stub.requests
    assert texts(second)[: len(texts(first))] == texts(first)
    (model_role, echoed), (user_role, errors) = texts(second)[-2:]
    assert model_role == "model" and '"Intro"' in echoed and user_role == "user"
    assert "first chapter must start at 0:00" in errors and "at most 49" in errors
    assert "outside the video" in errors and "at least 10 s" in errors


async def test_still_bad_after_the_retry_keeps_what_is_valid(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    highlights = [
        *VALID["highlights"],
        {"start_s": 50, "end_s": 55, "quote": "Wind power is better", "reason": "invented"},
    ]
    bad = variant(
        chapters=[
            {"start_s": 0, "title": "Solar"},
            {"start_s": 5, "title": "Too close"},
            {"start_s": 85, "title": "Football"},
            {"start_s": 127, "title": "Moon"},
        ],
        highlights=highlights,
    )
    gemini_stub.then(answer(bad), answer(bad))
    result = await engine_for().analyze(english, AnalysisOptions())
    assert len(gemini_stub.requests) == 2
    assert result.chapters == [Chapter(0.0, "Solar"), Chapter(85.0, "Football"), Chapter(127.0, "Moon")]
    assert chapter_violations(result.chapters, duration_s=english.duration_s) == []
    assert [h.quote for h in result.highlights] == [h["quote"] for h in VALID["highlights"]]
    warnings = " | ".join(result.warnings)
    assert "still broke a rule after a retry" in warnings
    assert "dropped chapter 'Too close'" in warnings and "dropped 1 highlights" in warnings


async def test_malformed_json_is_retried_then_a_coded_error(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    gemini_stub.then(answer("{not json"), answer('{"title": "only a title"}'))
    with pytest.raises(JobFailure) as failure:
        await engine_for().analyze(english, AnalysisOptions())
    assert failure.value.code == AnalysisErrorCode.MODEL_MALFORMED_OUTPUT
    assert len(gemini_stub.requests) == 2
    assert "not valid JSON" in texts(gemini_stub.requests[1])[-1][1]


async def test_malformed_json_then_a_valid_answer(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    gemini_stub.then(answer("Sure! Here is the analysis: ..."), answer(VALID))
    result = await engine_for().analyze(english, AnalysisOptions())
    assert len(result.chapters) == 4 and result.warnings == []


async def test_a_per_minute_429_waits_its_retry_delay(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    gemini_stub.then(rate_limited(retry_delay_s=1.0), answer(VALID))
    engine = engine_for()
    started = time.monotonic()
    result = await engine.analyze(english, AnalysisOptions())
    assert time.monotonic() - started >= 1.0
    assert len(result.chapters) == 4 and len(gemini_stub.requests) == 2
    assert engine.governor.stats.rate_limited == 1


async def test_a_per_day_429_parks_every_worker(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    gemini_stub.then(rate_limited(per_day=True, retry_delay_s=None))
    with pytest.raises(QuotaParked) as parked:
        await engine_for().analyze(english, AnalysisOptions())
    # Another worker parks at once, without sending anything.
    with pytest.raises(QuotaParked) as again:
        await engine_for().analyze(english, AnalysisOptions())
    assert again.value.until == parked.value.until
    assert len(gemini_stub.requests) == 1


async def test_server_errors_back_off_then_succeed(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    gemini_stub.then(server_error(503), server_error(500), answer(VALID))
    engine = engine_for()
    result = await engine.analyze(english, AnalysisOptions())
    assert len(result.chapters) == 4 and engine.governor.stats.retried == 2


async def test_server_errors_give_up_after_the_attempts(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    gemini_stub.then(*(server_error() for _ in range(3)))
    with pytest.raises(JobFailure) as failure:
        await engine_for(policy=RetryPolicy(attempts=3, base_delay_s=0.05)).analyze(
            english, AnalysisOptions()
        )
    assert failure.value.code == AnalysisErrorCode.MODEL_UNAVAILABLE and len(gemini_stub.requests) == 3


async def test_a_slow_answer_times_out_and_is_retried(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    gemini_stub.then(answer(VALID, delay_s=1.5), answer(VALID))
    engine = engine_for(timeout_s=0.5)
    result = await engine.analyze(english, AnalysisOptions())
    assert len(result.chapters) == 4 and engine.governor.stats.retried == 1 and len(gemini_stub.requests) == 2


async def test_a_rejected_request_is_not_retried(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    gemini_stub.then(bad_request())
    with pytest.raises(JobFailure) as failure:
        await engine_for().analyze(english, AnalysisOptions())
    assert failure.value.code == AnalysisErrorCode.MODEL_REJECTED and len(gemini_stub.requests) == 1


async def test_many_analyses_across_two_workers_keep_to_the_quota(
    english: Transcript, gemini_stub: GeminiStub, engine_for: Any
) -> None:
    """The stub allows 10 requests per 2 s and answers 429 beyond; two workers whose governors share that
    limit through Redis analyse 30 videos: each succeeds, with one accepted request each, in about three windows."""
    gemini_stub.requests_per_window, gemini_stub.window_s = 10, 2.0
    gemini_stub.responder = lambda _: answer(VALID)
    workers = [engine_for(rpm=10, window_s=2.0), engine_for(rpm=10, window_s=2.0)]
    started = time.monotonic()
    results = await asyncio.gather(*(workers[i % 2].analyze(english, AnalysisOptions()) for i in range(30)))
    elapsed = time.monotonic() - started
    assert all(len(r.chapters) == 4 and r.warnings == [] for r in results)
    assert len(gemini_stub.requests) - gemini_stub.refused == 30
    # The governors keep to the limit; a 429 can only come from the time between admission and arrival, which
    # grows on a loaded machine (8 of 30 seen under the full parallel suite): far fewer than without a governor.
    assert gemini_stub.refused <= 15
    assert sum(w.governor.stats.rate_limited for w in workers) == gemini_stub.refused
    assert elapsed >= 2 * 2.0 - 0.1
