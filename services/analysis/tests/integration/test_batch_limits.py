"""A batch's size limit through the real API and Postgres (10,000 items accepted, one more refused with nothing
written), and a batch whose items are all in the content cache: every item ``cached``, no model request, its
chunk's hold settled capturing 0."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from common.testing.gemini import GeminiStub
from common.testing.subtitles import SubtitleServer

from .batching import all_settled, batch_done, batch_items, holds, numbered_urls
from .service import PRICE, Service

pytestmark = pytest.mark.xdist_group("analysis_service")
CAP = 10_000  # BATCH_MAX_ITEMS's default, and the JSON body's documented maxItems


async def _rows(svc: Service) -> tuple[int, int, int]:
    """Batches, items and jobs in the service's schema."""
    async with svc.pool.acquire() as conn:
        return (
            await conn.fetchval("SELECT count(*) FROM batches"),
            await conn.fetchval("SELECT count(*) FROM analyses"),
            await conn.fetchval("SELECT count(*) FROM jobs"),
        )


async def test_a_batch_of_10000_items_is_accepted_and_one_more_is_refused_writing_nothing(
    analysis_service: Callable[..., Awaitable[Service]],
) -> None:
    svc = await analysis_service(workers=0)
    urls = [f"https://videos.example.com/watch?v={n}" for n in range(CAP + 1)]

    # JSON: the body's schema says at most 10,000 items
    status, refused = await svc.post("/api/v1/analyses/batches", {"items": [{"url": u} for u in urls]})
    assert status == 422 and refused["code"] == "validation.invalid" and "items" in refused["detail"], refused
    # a CSV (uploaded or as the body) is counted by the service: batch.too_large
    csv = ("url\n" + "\n".join(urls) + "\n").encode()
    headers = {**svc.auth, "Content-Type": "text/csv"}
    async with svc.api.post("/api/v1/analyses/batches", data=csv, headers=headers) as r:
        status, too_large = r.status, await r.json()
    assert status == 422 and too_large["code"] == "batch.too_large", too_large
    assert f"{CAP}" in too_large["detail"]
    assert await _rows(svc) == (0, 0, 0)  # nothing held, queued or written

    status, accepted = await svc.post("/api/v1/analyses/batches", {"items": [{"url": u} for u in urls[:CAP]]})
    assert status == 202, accepted
    assert accepted["batch"]["total"] == CAP and accepted["batch"]["counts"]["queued"] == CAP
    # the batch's job and one paid chunk job (one hold) per 100 items
    assert await _rows(svc) == (1, CAP, 1 + CAP // 100)
    assert len(await holds(svc)) == CAP // 100 and set((await holds(svc)).values()) == {100 * PRICE}


async def test_a_batch_of_items_analysed_before_is_all_cached_free_and_never_asks_the_model(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    n = 8
    svc = await analysis_service(workers=1)
    urls = numbered_urls(subtitle_server, n)
    body = {"items": [{"url": u} for u in urls], "options": {"detail": "brief"}}

    status, first = await svc.post("/api/v1/analyses/batches", body)
    assert status == 202, first
    assert await svc.grant_holds() == 1
    done = await batch_done(svc, first["batch"]["id"], timeout=120)
    assert done["counts"]["succeeded"] == n and done["credits"] == n * PRICE, done
    assert len(gemini_stub.requests) == n
    analysed = {i["url"]: i["result"] for i in await batch_items(svc, first["batch"]["id"])}

    # the same URLs and options again: each item comes from the content cache, inside the batch
    status, second = await svc.post("/api/v1/analyses/batches", body)
    assert status == 202, second
    assert await svc.grant_holds() == 1
    again = await batch_done(svc, second["batch"]["id"], timeout=120)
    assert again["counts"]["cached"] == n and again["counts"]["succeeded"] == 0, again
    assert again["credits"] == 0
    items = await batch_items(svc, second["batch"]["id"])
    assert {i["state"] for i in items} == {"cached"} and {i["credits"] for i in items} == {0}
    assert {i["url"]: i["result"] for i in items} == analysed  # the earlier results, as they were
    assert {i["source"] for i in items} == {
        "platform_subtitles"
    }  # the transcript was read; the model was not
    assert len(gemini_stub.requests) == n  # zero model requests for the second batch

    # each batch's chunk hold is settled once: the first captures every item, the second nothing
    held = await holds(svc)
    settled = {s.hold_ref: s.capture for s in await all_settled(svc, 2)}
    assert set(settled) == set(held) and sorted(settled.values()) == [0, n * PRICE]
