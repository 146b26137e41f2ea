"""Translation through the real google-genai client against the Gemini REST stub on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from captions.config import CaptionsSettings
from captions.cues import Cue, build_cues
from captions.errors import CaptionsError, Code
from captions.profiles import ENGLISH, KOREAN
from captions.quality import check
from captions.translate import GeminiConfig, GeminiTranslator, ensure_available, translate_track
from common.testing.gemini import GeminiStub, request_schema, request_text
from common.testing.speech import NEWS_SCRIPT

from ..conftest import fake_responder, speak


@dataclass
class Harness:
    """English cues of the news script, a translator on the stub, and the back-off sleeps it asked for."""

    stub: GeminiStub
    translator: GeminiTranslator
    cues: list[Cue]
    media_end_ms: int
    slept: list[float]

    async def track(self, target: str) -> list[Cue]:
        self.stub.responder = fake_responder(target)
        return await translate_track(
            self.translator, self.cues, source="en", target=target, media_end_ms=self.media_end_ms
        )

    async def texts(self, count: int) -> dict[str, str]:
        return await self.translator.translate(self.cues[:count], source="en", target="es")


@pytest.fixture
async def harness(gemini_stub: GeminiStub) -> AsyncIterator[Harness]:
    words = speak(NEWS_SCRIPT)
    media_end = round(words[-1].end * 1000) + 2000
    settings = CaptionsSettings(
        gemini_api_key=gemini_stub.api_key, gemini_base_url=gemini_stub.base_url, translate_batch_cues=4
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    translator = GeminiTranslator(GeminiConfig.from_settings(settings), sleep=sleep)
    yield Harness(
        gemini_stub, translator, build_cues(words, ENGLISH, media_end_ms=media_end), media_end, slept
    )
    await translator.aclose()


async def test_a_translated_track_keeps_cue_ids_and_times(harness: Harness) -> None:
    out = await harness.track("es")
    cues = harness.cues
    assert [c.id for c in out] == [c.id for c in cues]
    assert [c.start_ms for c in out] == [c.start_ms for c in cues]
    assert out[0].text.startswith("dooG gninrom,")
    assert check(out, ENGLISH, media_end_ms=harness.media_end_ms) == []
    # one request per batch of 4 cues, each asking for exactly its cue ids, through the v1beta REST path
    assert len(harness.stub.requests) == -(-len(cues) // 4)
    first = harness.stub.requests[0]
    schema = request_schema(first)
    assert schema is not None and schema["required"] == ["c1", "c2", "c3", "c4"]
    assert schema["additionalProperties"] is False and set(schema["properties"]) == {"c1", "c2", "c3", "c4"}
    assert list(json.loads(request_text(first))) == ["c1", "c2", "c3", "c4"]
    assert harness.stub.models[0] == "gemini-2.5-flash"


async def test_a_korean_track_passes_the_korean_profile(harness: Harness) -> None:
    out = await harness.track("ko")
    cues = harness.cues
    assert check(out, KOREAN, media_end_ms=harness.media_end_ms) == []
    assert {c.id.split(".")[0] for c in out} <= {c.id for c in cues}
    assert "도서관" in " ".join(c.text for c in out)


async def test_429_and_5xx_are_retried_and_retry_info_is_honoured(harness: Harness) -> None:
    harness.stub.responder = fake_responder("es")
    harness.stub.fail(429, retry_delay_s=7.5)
    harness.stub.fail(503)
    harness.stub.fail(500)
    texts = await harness.texts(3)
    assert list(texts) == ["c1", "c2", "c3"]
    slept = harness.slept
    assert len(slept) == 3 and slept[0] == 7.5  # the server's RetryInfo, then our own back-off
    assert 1.0 <= slept[1] <= 2.0 and 2.0 <= slept[2] <= 4.0  # 1 s doubling, jittered down to half
    assert len(harness.stub.requests) == 4


async def test_garbage_and_wrong_ids_are_retried_then_fail_with_a_code(harness: Harness) -> None:
    harness.stub.reply_text("Sure! Here is your translation: hola")
    harness.stub.reply_text(json.dumps({"c1": "uno", "c9": "nueve"}))
    harness.stub.reply_text(json.dumps(["uno", "dos"]))
    harness.stub.reply_text(json.dumps({"c1": "uno", "c2": " "}))
    harness.stub.reply_raw(200, b"<html>not json</html>")
    with pytest.raises(CaptionsError) as failed:
        await harness.texts(2)
    assert failed.value.code in (Code.TRANSLATION_INVALID, Code.TRANSLATION_FAILED)
    assert len(harness.stub.requests) == 5 and len(harness.slept) == 4


async def test_a_missing_id_is_a_coded_error(harness: Harness) -> None:
    harness.stub.reply_text(json.dumps({"c1": "uno"}), times=5)
    with pytest.raises(CaptionsError) as failed:
        await harness.texts(2)
    assert failed.value.code == Code.TRANSLATION_INVALID
    assert "missing ['c2']" in failed.value.message


async def test_a_client_error_is_not_retried(harness: Harness) -> None:
    harness.stub.fail(400, message="Request contains an invalid argument.")
    with pytest.raises(CaptionsError) as failed:
        await harness.texts(2)
    assert failed.value.code == Code.TRANSLATION_FAILED
    assert "400" in failed.value.message and len(harness.stub.requests) == 1


async def test_an_unreachable_gemini_fails_with_a_code_after_the_attempts() -> None:
    cue = Cue(id="c1", start_ms=0, end_ms=1000, lines=("Hello.",))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    config = GeminiConfig.from_settings(
        CaptionsSettings(gemini_api_key="k", gemini_base_url="http://127.0.0.1:9", translate_attempts=2)
    )
    translator = GeminiTranslator(config, sleep=sleep)
    try:
        with pytest.raises(CaptionsError) as failed:
            await translator.translate([cue], source="en", target="es")
    finally:
        await translator.aclose()
    assert failed.value.code == Code.TRANSLATION_FAILED and len(slept) == 1


def test_without_a_key_translation_is_unavailable() -> None:
    with pytest.raises(CaptionsError) as refused:
        ensure_available(CaptionsSettings())
    assert refused.value.code.value == "captions.translation_unavailable"
    with pytest.raises(CaptionsError):
        GeminiConfig.from_settings(CaptionsSettings(gemini_base_url="http://127.0.0.1:1"))
