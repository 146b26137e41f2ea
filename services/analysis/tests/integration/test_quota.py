"""The quota governor against the real Redis: limits hold across two governors (two workers) sharing it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from analysis.models import AnalysisErrorCode
from analysis.quota import Lease, QuotaParked
from common.jobs import JobFailure

from ..conftest import GovernorFactory


async def test_requests_per_minute_hold_across_two_workers(governors: GovernorFactory) -> None:
    window = 2.0
    workers = [governors(rpm=5, window_s=window), governors(rpm=5, window_s=window)]
    sent: list[float] = []

    async def send(i: int) -> None:
        await workers[i % 2].acquire(10)
        sent.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(send(i) for i in range(12)))
    sent.sort()
    assert len(sent) == 12
    # In no window are more than 5 requests sent (a little slack for the time between admission and recording).
    assert max(sum(1 for u in sent if t <= u < t + window - 0.1) for t in sent) == 5
    # 12 requests at 5 per window need three windows: 5 now, 5 after one window, 2 after two.
    assert time.monotonic() - started >= 2 * window - 0.1
    assert sum(w.stats.sent for w in workers) == 12 and sum(w.stats.waited_s for w in workers) > 0


async def test_tokens_per_minute_and_the_true_up(governors: GovernorFactory) -> None:
    one, two = governors(tpm=1000, window_s=30), governors(tpm=1000, window_s=30)
    first, second = await one.try_acquire(400), await two.try_acquire(400)
    assert isinstance(first, Lease) and isinstance(second, Lease)
    refused = await one.try_acquire(400)
    assert isinstance(refused, float) and 28 < refused <= 30
    # usage_metadata said each used 100 tokens: the room comes back at once, for both workers.
    await one.settle(first, 100)
    await two.settle(second, 100)
    assert isinstance(await two.try_acquire(700), Lease)
    assert isinstance(await one.try_acquire(101), float)


async def test_requests_per_day_park_every_worker_until_the_reset(governors: GovernorFactory) -> None:
    one, two = governors(rpd=3), governors(rpd=3)
    for worker in (one, two, one):
        assert isinstance(await worker.try_acquire(1), Lease)
    for worker in (two, one):
        with pytest.raises(QuotaParked) as parked:
            await worker.try_acquire(1)
        until = parked.value.until
        assert until > datetime.now(UTC)
        local = until.astimezone(ZoneInfo("America/Los_Angeles"))
        assert (local.hour, local.minute) == (0, 0)
        assert "waiting for the per-day quota to reset at" in str(parked.value)


async def test_a_hold_makes_every_worker_wait(governors: GovernorFactory) -> None:
    one, two = governors(), governors()
    await one.hold(1.5)
    wait = await two.try_acquire(1)
    assert isinstance(wait, float) and 1.0 < wait <= 1.5


async def test_a_request_larger_than_the_minute_is_refused(governors: GovernorFactory) -> None:
    with pytest.raises(JobFailure) as failure:
        await governors(tpm=1000).try_acquire(1001)
    assert failure.value.code == AnalysisErrorCode.QUOTA_REQUEST_TOO_LARGE


async def test_keys_and_models_are_independent(governors: GovernorFactory) -> None:
    a, b, c = governors(rpm=1), governors(rpm=1, model="other"), governors(rpm=1, api_key="other-key")
    for worker in (a, b, c):
        assert isinstance(await worker.try_acquire(1), Lease)
    assert isinstance(await a.try_acquire(1), float)
