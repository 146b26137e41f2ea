"""The page memo: a URL analysed before with the same engine, model, prompt version and options is answered from
the content cache without reading its page again (within ``PAGE_MEMO_TTL_S``); other options read the page, and a
TTL of 0 reads it every time (the content cache still answers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from common.testing.gemini import GeminiStub
from common.testing.subtitles import SubtitleServer

from ..conftest import ENGLISH_TOPICS
from .service import PRICE, Service, talk_lines

pytestmark = pytest.mark.xdist_group("analysis_service")


async def test_a_url_seen_before_is_answered_without_reading_its_page(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    svc = await analysis_service()
    url = subtitle_server.add("talk", talk_lines(ENGLISH_TOPICS), title="Four topics")
    first = await svc.analyse(url, detail="brief")
    assert first["state"] == "succeeded" and first["credits"] == PRICE, first
    assert subtitle_server.hits["v/talk"] == 1 and len(gemini_stub.requests) == 1

    again = await svc.analyse(url, detail="brief")
    assert again["state"] == "cached" and again["credits"] == 0 and again["result"] == first["result"], again
    assert subtitle_server.hits["v/talk"] == 1 and len(gemini_stub.requests) == 1  # neither page nor model
    assert (again["source"], again["language"]) == ("platform_subtitles", "en")
    assert again["title"] == first["title"] and again["duration_s"] == first["duration_s"]
    status, transcript = await svc.get(f"/api/v1/analyses/{again['id']}/transcript")
    assert status == 200 and transcript["source"] == "platform_subtitles"
    assert len(transcript["segments"]) == sum(map(len, ENGLISH_TOPICS))

    # other options are another analysis: the page is read and the model asked
    detailed = await svc.analyse(url, detail="detailed")
    assert detailed["state"] == "succeeded" and detailed["credits"] == PRICE, detailed
    assert subtitle_server.hits["v/talk"] == 2 and len(gemini_stub.requests) == 2


async def test_without_the_memo_the_page_is_read_and_the_content_cache_answers(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    svc = await analysis_service(page_memo_ttl_s=0.0)
    url = subtitle_server.add("talk", talk_lines(ENGLISH_TOPICS))
    first = await svc.analyse(url, detail="brief")
    assert first["state"] == "succeeded", first
    again = await svc.analyse(url, detail="brief")
    assert again["state"] == "cached" and again["credits"] == 0 and again["result"] == first["result"], again
    assert subtitle_server.hits["v/talk"] == 2 and len(gemini_stub.requests) == 1
