"""One analysis through the service: a URL whose page has json3 subtitles → Gemini (the stub) → a stored result,
the transcript served, the credits used recorded for the settle; the same URL again → the cache, charged nothing."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from common.events.base import decode_as
from common.events.billing import CreditsSettleRequested
from common.testing.gemini import GeminiStub
from common.testing.subtitles import SubtitleServer
from common.testing.waiting import wait_for

from ..conftest import ENGLISH_TOPICS
from .service import PRICE, Service, talk_lines

pytestmark = pytest.mark.xdist_group("analysis_service")


async def _settles(svc: Service) -> list[CreditsSettleRequested]:
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT body FROM outbox WHERE routing_key = 'credits.settle_requested.v1' ORDER BY seq"
        )
    return [decode_as(bytes(r["body"]), CreditsSettleRequested) for r in rows]


async def test_a_url_with_json3_subtitles_is_analysed_then_served_from_the_cache_for_nothing(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    svc = await analysis_service()
    url = subtitle_server.add("talk", talk_lines(ENGLISH_TOPICS), title="Four topics")

    status, accepted = await svc.post("/api/v1/analyses", {"url": url, "options": {"detail": "brief"}})
    assert status == 202, accepted
    assert accepted["job"]["stage"] == "awaiting_credits" and accepted["analysis"]["state"] == "queued"
    assert await svc.grant_holds() == 1
    done = await svc.ended(accepted["analysis"]["id"])
    assert done["state"] == "succeeded", done
    assert done["source"] == "platform_subtitles" and done["language"] == "en" and done["credits"] == PRICE
    result = done["result"]
    assert result["engine"] == "gemini" and result["model"] == "gemini-stub" and result["prompt_version"]
    chapters = result["chapters"]
    assert chapters[0]["start_s"] == 0 and len(chapters) >= 3
    assert all(b["start_s"] - a["start_s"] >= 10 for a, b in itertools.pairwise(chapters))
    assert len(gemini_stub.requests) == 1

    async with aiohttp.ClientSession() as http:
        base = str(svc.api.make_url(f"/api/v1/analyses/{done['id']}/transcript"))
        async with http.get(base + ".txt", headers=svc.auth) as r:
            text = await r.text()
            assert r.status == 200 and text.splitlines()[0] == ENGLISH_TOPICS[0][0]
        async with http.get(base + ".json", headers=svc.auth) as r:
            assert r.status == 200 and r.content_type == "application/json"
            assert r.headers["Content-Disposition"] == f'inline; filename="{done["id"]}.json"'
            as_json = await r.json()
    # the transcript file has every segment with the times the subtitles gave it
    assert as_json["analysis_id"] == done["id"] and as_json["source"] == "platform_subtitles"
    assert as_json["language"] == "en"
    served = [(s["start_s"], s["end_s"], s["text"]) for s in as_json["segments"]]
    assert served == talk_lines(ENGLISH_TOPICS)
    status, transcript = await svc.get(f"/api/v1/analyses/{done['id']}/transcript")
    assert status == 200 and transcript["source"] == "platform_subtitles"
    assert len(transcript["segments"]) == sum(map(len, ENGLISH_TOPICS))

    # the same video again: the content cache answers, the model is not asked, nothing is charged
    status, again = await svc.post("/api/v1/analyses", {"url": url, "options": {"detail": "brief"}})
    assert status == 202
    await svc.grant_holds()
    cached = await svc.ended(again["analysis"]["id"])
    assert cached["state"] == "cached" and cached["credits"] == 0 and cached["result"] == result
    assert len(gemini_stub.requests) == 1

    settles = await wait_for(lambda: _settles_if(svc, 2), timeout=10, interval=0.2)
    assert sorted(s.capture for s in settles) == [0, PRICE]

    status, page = await svc.get("/api/v1/analyses?limit=1")
    assert status == 200 and len(page["items"]) == 1 and page["next_cursor"]


async def _settles_if(svc: Service, n: int) -> list[CreditsSettleRequested] | None:
    found = await _settles(svc)
    return found if len(found) >= n else None


async def test_a_blocked_page_fails_with_a_typed_code_and_costs_nothing(
    analysis_service: Callable[..., Awaitable[Service]], subtitle_server: SubtitleServer
) -> None:
    svc = await analysis_service()
    subtitle_server.add("talk", talk_lines(ENGLISH_TOPICS))
    status, accepted = await svc.post("/api/v1/analyses", {"url": subtitle_server.url("talk", "blocked")})
    assert status == 202
    await svc.grant_holds()
    failed = await svc.ended(accepted["analysis"]["id"])
    assert failed["state"] == "failed" and failed["error"]["code"] == "source.blocked", failed
    settles = await wait_for(lambda: _settles_if(svc, 1), timeout=10, interval=0.2)
    assert [s.capture for s in settles] == [0]

    # a rate-limited platform is backed off from and asked again
    status, accepted = await svc.post("/api/v1/analyses", {"url": subtitle_server.url("talk", "limited")})
    await svc.grant_holds()
    done = await svc.ended(accepted["analysis"]["id"])
    assert done["state"] == "succeeded" and subtitle_server.hits["limited/talk"] >= 2
