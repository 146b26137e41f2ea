"""Issue 14 item 6: retried paid analysis requests (``Idempotency-Key``) through the real analysis API and Postgres:
a single analysis, a JSON batch and a CSV batch are each one job and one credit hold however often they are sent,
and the same key with another body is refused; a batch's ``retry-failed`` (worker processes, the Gemini stub) sent
twice with one key holds credits once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from common.testing.gemini import GeminiStub, Reply, answer
from common.testing.subtitles import SubtitleServer

from ..conftest import ENGLISH_TOPICS
from .batching import batch_of, batch_when, holds
from .conftest import WorkerFactory
from .service import PRICE, Service, talk_lines

pytestmark = pytest.mark.xdist_group("analysis_service")


def _csv_form(urls: list[str]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(
        "file", "".join(f"{u}\n" for u in urls).encode(), filename="videos.csv", content_type="text/csv"
    )
    form.add_field("detail", "brief")
    return form


async def _send(svc: Service, path: str, key: str, body: list[str] | dict[str, Any]) -> tuple[int, Any]:
    headers = {**svc.auth, "Idempotency-Key": key}
    kw: dict[str, Any] = {"data": _csv_form(body)} if isinstance(body, list) else {"json": body}
    async with svc.api.post(path, headers=headers, **kw) as r:
        return r.status, await r.json()


@pytest.mark.parametrize(
    ("path", "body", "other"),
    [
        ("/api/v1/analyses", lambda u: {"url": u[0]}, lambda u: {"url": u[1]}),
        (
            "/api/v1/analyses/batches",
            lambda u: {"items": [{"url": x} for x in u]},
            lambda u: {"items": [{"url": u[0]}]},
        ),
        ("/api/v1/analyses/batches/csv", lambda u: u, lambda u: u[:1]),
    ],
    ids=["single", "batch", "csv"],
)
async def test_a_retried_paid_analysis_request_is_one_job_and_one_hold(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    path: str,
    body: Callable[[list[str]], Any],
    other: Callable[[list[str]], Any],
) -> None:
    svc = await analysis_service(workers=0)
    urls = [subtitle_server.add(f"idem{i}", talk_lines(ENGLISH_TOPICS)) for i in range(2)]
    first = await _send(svc, path, "analysis-1", body(urls))
    assert first[0] == 202, first
    assert await _send(svc, path, "analysis-1", body(urls)) == first  # the first answer, nothing run again
    status, problem = await _send(svc, path, "analysis-1", other(urls))
    assert status == 409 and problem["code"] == "idempotency.key_reused"
    async with svc.pool.acquire() as conn:
        batches = await conn.fetchval("SELECT count(*) FROM batches")
        analyses = await conn.fetchval("SELECT count(*) FROM analyses")
        holds = await conn.fetchval("SELECT count(*) FROM credit_holds")
        subjects = [
            r["subject"] for r in await conn.fetch("SELECT subject FROM jobs WHERE kind <> 'analysis_batch'")
        ]
    # one request's work (one analysis, or one batch of two), charged once
    assert (batches, analyses, holds) == ((0, 1, 1) if path == "/api/v1/analyses" else (1, 2, 1))
    # the paid job names what it analyses, as the job list shows it (issue 14 item 9)
    named = (
        {"kind": "url", "id": urls[0]}
        if path == "/api/v1/analyses"
        else {"kind": "analysis_batch", "id": first[1]["batch"]["id"]}
    )
    assert subjects == [{**named, "title": ""}]


async def test_a_retried_retry_failed_holds_credits_once(
    analysis_service: Callable[..., Awaitable[Service]],
    workers: WorkerFactory,
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    def garbage(request: dict[str, Any]) -> Reply:
        return answer("Sure! Here is your analysis: {not json")  # every item fails model.malformed_output

    gemini_stub.responder = garbage
    svc, accepted = await batch_of(analysis_service, subtitle_server, 2, chunk=2)
    batch_id = accepted["batch"]["id"]
    await workers(svc)
    assert await svc.grant_holds() == 1

    def all_failed(b: dict[str, Any]) -> bool:
        return bool(b["counts"]["failed"] == 2)

    await batch_when(svc, batch_id, all_failed, timeout=120)
    path = f"/api/v1/analyses/batches/{batch_id}/retry-failed"

    async def retry(key: str) -> tuple[int, Any]:
        async with svc.api.post(path, headers={**svc.auth, "Idempotency-Key": key}) as r:
            return r.status, await r.json()

    first = await retry("retry-1")
    assert first[0] == 200 and first[1]["counts"]["failed"] == 0, first
    assert len(await holds(svc)) == 2  # the batch's chunk and the retry's
    # the retried items fail again before the client, unsure its retry went through, sends it again
    assert await svc.grant_holds() == 1
    await batch_when(svc, batch_id, all_failed, timeout=120)
    assert await retry("retry-1") == first  # the first answer: nothing requeued, nothing held
    assert len(await holds(svc)) == 2
    # another key is another request: the failed items are retried and held for again
    again = await retry("retry-2")
    assert again[0] == 200 and again[1]["counts"]["failed"] == 0, again
    assert sorted((await holds(svc)).values()) == [2 * PRICE] * 3  # each held for the two items it ran
