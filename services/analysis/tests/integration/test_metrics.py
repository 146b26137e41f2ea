"""A worker process's ``/metrics``, scraped: the transcript-source counters (by source and outcome) and the model
quota counters (429s by scope, retries, time waited, parks) are there from the start and count what happened."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.testing.gemini import GeminiStub, rate_limited, server_error
from common.testing.subtitles import SubtitleServer

from ..conftest import ENGLISH_TOPICS
from .conftest import WorkerFactory
from .service import Service, talk_lines

pytestmark = pytest.mark.xdist_group("analysis_service")
SOURCE = "analysis_transcript_source_attempts_total"
LIMITED = "analysis_model_rate_limited_total"


async def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _series(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


async def test_the_source_and_quota_counters_are_scraped_and_count(
    analysis_service: Callable[..., Awaitable[Service]],
    workers: WorkerFactory,
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    svc = await analysis_service(workers=0)
    worker = await workers(svc)
    before = await _scrape(worker.port)
    served = _series(SOURCE, source="platform_subtitles", outcome="served")
    failed = _series(SOURCE, source="platform_subtitles", outcome="failed")
    minute, day = _series(LIMITED, scope="minute"), _series(LIMITED, scope="day")
    for series in (
        served,
        failed,
        _series(SOURCE, source="caption_track", outcome="none"),
        _series(SOURCE, source="audio", outcome="served"),
        minute,
        day,
        _series("analysis_model_retries_total"),
        _series("analysis_quota_parked_total"),
        _series("analysis_quota_wait_seconds_total"),
    ):
        assert before.get(series) == 0, series  # every series is there before anything happened

    # a page with subtitles; the model answers a per-minute 429 (RetryInfo 0.3 s), then a 503, then the analysis
    url = subtitle_server.add("talk", talk_lines(ENGLISH_TOPICS))
    gemini_stub.then(rate_limited(retry_delay_s=0.3), server_error(503))  # then the analysis
    done = await svc.analyse(url)
    assert done["state"] == "succeeded", done
    # a platform that refuses the page
    blocked = await svc.analyse(subtitle_server.url("talk", "blocked"))
    assert blocked["error"]["code"] == "source.blocked", blocked
    # a per-day 429: the single analysis fails with quota.parked
    gemini_stub.then(rate_limited(per_day=True, retry_delay_s=None))
    other = subtitle_server.add("other", talk_lines(ENGLISH_TOPICS[1:]))
    parked = await svc.analyse(other)
    assert parked["error"]["code"] == "quota.parked", parked

    after = await _scrape(worker.port)
    assert after[served] - before[served] == 2  # the talk and the other page
    assert after[failed] - before[failed] == 1  # the blocked page
    assert after[minute] - before[minute] == 1 and after[day] - before[day] == 1
    assert after[_series("analysis_model_retries_total")] == 1  # the 503, backed off and sent again
    assert after[_series("analysis_quota_parked_total")] >= 1
    # the 429's RetryInfo delay (0.3 s), waited: measured on Redis's clock from when the hold was set, so a few
    # milliseconds of the delay may have passed before the worker starts waiting
    assert after[_series("analysis_quota_wait_seconds_total")] >= 0.25
