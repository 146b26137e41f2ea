"""Without a Gemini key the service still analyses: the offline extractive engine, through the API, on the real
Postgres and bus, an English and a Korean page whose subtitles yt-dlp reads from 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from common.testing.gemini import GeminiStub, assert_chapters_follow_the_rules
from common.testing.subtitles import SubtitleServer
from common.testing.waiting import wait_for

from ..conftest import ENGLISH_TOPICS, KOREAN_TOPICS
from .service import PRICE, Service, talk_lines

pytestmark = pytest.mark.xdist_group("analysis_service")
HANGUL = re.compile("[\uac00-\ud7a3]")


async def _analysed(svc: Service, url: str) -> dict[str, Any]:
    status, accepted = await svc.post("/api/v1/analyses", {"url": url})
    assert status == 202, accepted
    assert await svc.grant_holds() == 1

    async def ended() -> dict[str, Any] | None:
        status, body = await svc.get(f"/api/v1/analyses/{accepted['analysis']['id']}")
        return body if status == 200 and body["state"] not in ("queued", "running") else None

    done: dict[str, Any] = await wait_for(ended, timeout=180, interval=0.5)
    return done


@pytest.mark.parametrize(
    ("language", "topics", "words"),
    [
        ("en", ENGLISH_TOPICS, re.compile(r"[a-z]{3,}", re.I)),
        ("ko", KOREAN_TOPICS, HANGUL),
    ],
    ids=["english", "korean"],
)
async def test_without_a_gemini_key_the_offline_engine_answers_through_the_api(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
    language: str,
    topics: list[list[str]],
    words: re.Pattern[str],
) -> None:
    svc = await analysis_service(keyless=True)
    lines = talk_lines(topics)
    url = subtitle_server.add(f"talk-{language}", lines, language=language, title="Four topics")

    done = await _analysed(svc, url)

    assert done["state"] == "succeeded", done
    assert done["source"] == "platform_subtitles" and done["language"] == language
    assert done["credits"] == PRICE  # an analysis is an analysis, whichever engine made it
    result = done["result"]
    assert result["engine"] == "extractive" and result["model"], result
    assert words.search(result["summary"]), result["summary"]
    assert result["keywords"] and all(words.search(k) for k in result["keywords"]), result["keywords"]
    duration = done["duration_s"] or lines[-1][1]
    assert_chapters_follow_the_rules(result["chapters"], duration_s=duration)
    said = " ".join(text for _, _, text in lines)
    assert result["highlights"], result
    for h in result["highlights"]:
        assert 0 <= h["start_s"] < h["end_s"] <= duration + 1, h
        assert h["quote"] and h["quote"] in said, h  # a quote of the transcript, not made up
    assert gemini_stub.requests == []  # no key: the model was never asked
