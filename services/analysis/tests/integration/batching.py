"""Helpers of the batch tests: numbered URLs on the subtitle platform, a batch started through the API, its status
polled, every item listed, and the settles the chunk jobs wrote for billing (their credit events)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from common.events.base import decode_as
from common.events.billing import CreditsSettleRequested
from common.testing.gemini import request_text
from common.testing.subtitles import SubtitleServer
from common.testing.waiting import wait_for

from ..conftest import ENGLISH_TOPICS
from .service import Service, talk_lines

_NUMBER = re.compile(r"Video number (\d+)\.")


def numbered_urls(server: SubtitleServer, n: int) -> list[str]:
    """``n`` pages whose transcripts differ by their first line ("Video number i."), so none comes from the cache."""
    lines = talk_lines(ENGLISH_TOPICS)
    return [server.add(f"v{i}", [(0.0, 11.5, f"Video number {i}."), *lines[1:]]) for i in range(n)]


def video_number(request: dict[str, Any]) -> int:
    """Which numbered video a model request analyses."""
    found = _NUMBER.search(request_text(request))
    assert found is not None, "not a numbered video's transcript"
    return int(found.group(1))


async def batch_of(
    start: Callable[..., Awaitable[Service]],
    server: SubtitleServer,
    n: int,
    *,
    workers: int = 0,
    chunk: int = 50,
    **kw: Any,
) -> tuple[Service, dict[str, Any]]:
    """A service (its workers started by the test unless ``workers``) and a batch of ``n`` URLs, ``chunk`` items a
    chunk job."""
    svc = await start(workers=workers, batch_chunk_size=chunk, **kw)
    status, accepted = await svc.post(
        "/api/v1/analyses/batches", {"items": [{"url": u} for u in numbered_urls(server, n)]}
    )
    assert status == 202, accepted
    return svc, accepted


async def batch_status(svc: Service, batch_id: str) -> dict[str, Any]:
    """``GET`` the batch."""
    status, batch = await svc.get(f"/api/v1/analyses/batches/{batch_id}")
    assert status == 200, batch
    return batch


async def batch_when(
    svc: Service, batch_id: str, ready: Callable[[dict[str, Any]], bool], *, timeout: float
) -> dict[str, Any]:
    """The batch's status once ``ready(status)`` holds (polled twice a second)."""

    async def check() -> dict[str, Any] | None:
        b = await batch_status(svc, batch_id)
        return b if ready(b) else None

    batch: dict[str, Any] = await wait_for(check, timeout=timeout, interval=0.5)
    return batch


async def batch_done(svc: Service, batch_id: str, timeout: float) -> dict[str, Any]:
    """The batch's status once it is done."""
    return await batch_when(svc, batch_id, lambda b: b["state"] == "done", timeout=timeout)


async def batch_items(svc: Service, batch_id: str) -> list[dict[str, Any]]:
    """Every item of the batch, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "?limit=100" + (f"&cursor={cursor}" if cursor else "")
        status, page = await svc.get(f"/api/v1/analyses/batches/{batch_id}/items{query}")
        assert status == 200, page
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def settles(svc: Service) -> list[CreditsSettleRequested]:
    """The settles the service wrote for billing (capture what was used, release the rest of the hold)."""
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch("SELECT body FROM outbox WHERE routing_key = 'credits.settle_requested.v1'")
    return [decode_as(bytes(r["body"]), CreditsSettleRequested) for r in rows]


async def all_settled(svc: Service, n: int, *, timeout: float = 60) -> list[CreditsSettleRequested]:
    """The settles once there are ``n``."""

    async def enough() -> list[CreditsSettleRequested] | None:
        found = await settles(svc)
        return found if len(found) >= n else None

    found: list[CreditsSettleRequested] = await wait_for(enough, timeout=timeout, interval=0.5)
    return found


async def holds(svc: Service) -> dict[str, int]:
    """Every credit hold the service asked billing for: its reference → the amount held."""
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch("SELECT hold_ref, amount FROM credit_holds")
    return {r["hold_ref"]: r["amount"] for r in rows}
