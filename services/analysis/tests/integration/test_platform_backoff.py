"""A platform that rate-limits is backed off by the whole batch, not item by item: after its 429, no item of any
chunk reads a page of that host until the back-off (shared through Redis, keyed by host and port) has passed; only
pages already being read when the 429 came may still arrive."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from common.testing.gemini import GeminiStub
from common.testing.subtitles import SubtitleServer

from .batching import batch_done, batch_items, batch_of
from .service import PRICE, Service

pytestmark = pytest.mark.xdist_group("analysis_service")
BACKOFF_S = 3.0
CONCURRENCY = 4  # items of the chunk in flight at once: at most 3 others can be mid-page when the 429 comes


@dataclass
class ThrottlingPlatform(SubtitleServer):
    """The subtitle platform, answering 429 to its first page request; every page request logged (when, which)."""

    log: list[tuple[float, str, int]] = field(default_factory=list)
    refuse: int = 1

    async def _video(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.refuse > 0:
            self.refuse -= 1
            self.log.append((time.monotonic(), name, 429))
            return web.Response(status=429, text="Too Many Requests", content_type="text/html")
        self.log.append((time.monotonic(), name, 200))
        return await super()._video(request)


async def test_a_429_backs_the_whole_batch_off_the_platform(
    analysis_service: Callable[..., Awaitable[Service]], gemini_stub: GeminiStub
) -> None:
    async with ThrottlingPlatform() as platform:
        await _batch_backs_off(analysis_service, platform)


async def _batch_backs_off(
    analysis_service: Callable[..., Awaitable[Service]], platform: ThrottlingPlatform
) -> None:
    n = 20
    svc, accepted = await batch_of(
        analysis_service,
        platform,
        n,
        workers=1,
        chunk=n,
        batch_item_concurrency=CONCURRENCY,
        subtitle_backoff_s=(str(BACKOFF_S),),
    )
    assert await svc.grant_holds() == 1
    batch = await batch_done(svc, accepted["batch"]["id"], timeout=180)
    assert batch["counts"]["succeeded"] == n and batch["credits"] == n * PRICE, batch

    [(limited_at, limited, _)] = [entry for entry in platform.log if entry[2] == 429]  # one 429 in all
    backing_off = [
        name for at, name, _ in platform.log if limited_at < at < limited_at + BACKOFF_S and name != limited
    ]
    # during the back-off only the pages already in flight were read (at most one per other running item),
    # and the refused page was read again once it had passed
    assert len(set(backing_off)) <= CONCURRENCY - 1, (backing_off, platform.log)
    again = [at for at, name, status in platform.log if name == limited and status == 200]
    assert again and min(again) >= limited_at + BACKOFF_S
    items = await batch_items(svc, accepted["batch"]["id"])
    assert {i["state"] for i in items} == {"succeeded"} and {i["source"] for i in items} == {
        "platform_subtitles"
    }
