"""Controlling a running batch through the API, with worker processes on the real Postgres and RabbitMQ and the
real google-genai client against the Gemini stub: retry-failed while the batch runs, pause then resume, and what
the batch's status and its job's progress events say while it runs."""

from __future__ import annotations

import itertools
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from common.bus.rabbit import RabbitBus
from common.events.jobs import JobProgress
from common.testing.gemini import GeminiStub, Reply, analysis_reply, answer
from common.testing.subtitles import SubtitleServer
from common.testing.waiting import wait_for

from .batching import (
    all_settled,
    batch_done,
    batch_items,
    batch_of,
    batch_status,
    batch_when,
    holds,
    video_number,
)
from .conftest import WorkerFactory
from .service import PRICE, Service

pytestmark = pytest.mark.xdist_group("analysis_service")
#: two chunks of 30 run at once on one worker, two items at a time each, against a model answering in 0.3 s
N, CHUNK = 60, 30
SLOW = {"BATCH_ITEM_CONCURRENCY": "2"}
LEFT = r"(under a minute|about \d+ min|about \d+ h \d+ min) left"  # the ETA in a batch job's stage


async def test_retry_failed_mid_run_reruns_only_the_failed_items_and_the_credits_balance(
    analysis_service: Callable[..., Awaitable[Service]],
    workers: WorkerFactory,
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    broken = {0, 5, 10, 30, 35, 40}  # early items of both chunks: they fail while most of the batch is queued
    asked: Counter[int] = Counter()

    def model(request: dict[str, Any]) -> Reply:
        number = video_number(request)
        asked[number] += 1
        # a broken video's first run gets garbage twice (the engine retries malformed JSON once): it fails with
        # model.malformed_output; its retried run gets a valid answer
        if number in broken and asked[number] <= 2:
            return answer("Sure! Here is your analysis: {not json")
        return analysis_reply(request)

    gemini_stub.responder = model
    gemini_stub.delay_s = 0.3
    svc, accepted = await batch_of(analysis_service, subtitle_server, N, chunk=CHUNK)
    batch_id = accepted["batch"]["id"]
    await workers(svc, **SLOW)
    assert await svc.grant_holds() == N // CHUNK

    failing = await batch_when(svc, batch_id, lambda b: b["counts"]["failed"] == len(broken), timeout=180)
    assert failing["state"] == "running" and failing["counts"]["queued"] > 0, failing  # mid-run
    items = {i["position"]: i for i in await batch_items(svc, batch_id)}
    assert {p for p, i in items.items() if i["state"] == "failed"} == broken
    assert {items[p]["error"]["code"] for p in broken} == {"model.malformed_output"}
    # only its failures, page by page (what the web app's Batches page lists)
    status, first = await svc.get(f"/api/v1/analyses/batches/{batch_id}/items?state=failed&limit=4")
    assert status == 200 and [i["position"] for i in first["items"]] == sorted(broken)[:4], first
    status, rest = await svc.get(
        f"/api/v1/analyses/batches/{batch_id}/items?state=failed&cursor={first['next_cursor']}"
    )
    assert [i["position"] for i in rest["items"]] == sorted(broken)[4:] and rest["next_cursor"] is None, rest
    status, bad = await svc.get(f"/api/v1/analyses/batches/{batch_id}/items?state=lost")
    assert status == 422 and bad["code"] == "validation.invalid", bad

    status, retried = await svc.post(f"/api/v1/analyses/batches/{batch_id}/retry-failed")
    assert status == 200 and retried["state"] == "running", retried
    assert retried["counts"]["failed"] == 0 and retried["counts"]["queued"] >= len(broken)
    # a new chunk job and hold per chunk that had failures, sized for its retried items
    assert await svc.grant_holds() == 2

    batch = await batch_done(svc, batch_id, timeout=180)
    assert batch["counts"]["succeeded"] == N and batch["counts"]["failed"] == 0, batch["counts"]
    assert batch["credits"] == N * PRICE
    items = {i["position"]: i for i in await batch_items(svc, batch_id)}
    assert sorted(items) == list(range(N)) and {i["state"] for i in items.values()} == {"succeeded"}
    # every item was analysed exactly once more than it failed: one request each, three for a broken one
    assert asked == Counter({n: 3 if n in broken else 1 for n in range(N)})

    # the books: four holds (two chunks of 30, and the retry's 3 + 3), each settled once; the succeeded items'
    # price captured, the rest released (the first holds' share of the items that moved to the retry)
    held = await holds(svc)
    assert sorted(held.values()) == [3 * PRICE, 3 * PRICE, CHUNK * PRICE, CHUNK * PRICE]
    found = await all_settled(svc, len(held))
    assert sorted(s.hold_ref for s in found) == sorted(held)
    assert all(0 <= s.capture <= held[s.hold_ref] for s in found)
    captured = sum(s.capture for s in found)
    assert captured == N * PRICE and sum(held.values()) - captured == len(broken) * PRICE


async def test_pause_stops_new_items_and_resume_completes_with_live_status_and_progress(
    analysis_service: Callable[..., Awaitable[Service]],
    workers: WorkerFactory,
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
    rabbit_bus: RabbitBus,
) -> None:
    gemini_stub.delay_s = 0.3
    progress: list[JobProgress] = []

    async def collect(event: Any, delivery: Any) -> None:
        progress.append(event)

    await rabbit_bus.subscribe(f"progress-{uuid.uuid4().hex[:8]}", [JobProgress], collect)
    svc, accepted = await batch_of(analysis_service, subtitle_server, N, chunk=CHUNK)
    batch_id, batch_job = accepted["batch"]["id"], accepted["job"]["id"]
    await workers(svc, **SLOW)
    await svc.grant_holds()

    # while it runs: counts by state that add up, a throughput and an ETA
    running = await batch_when(svc, batch_id, lambda b: b["counts"]["succeeded"] >= 8, timeout=180)
    counts = running["counts"]
    assert running["state"] == "running" and running["total"] == N and sum(counts.values()) == N, running
    assert counts["queued"] > 0 and counts["failed"] == 0
    assert running["throughput_per_min"] > 0 and running["eta_s"] is not None and running["eta_s"] > 0, (
        running
    )
    assert running["quota"]["state"] == "ok"

    status, paused = await svc.post(f"/api/v1/analyses/batches/{batch_id}/pause")
    assert status == 200 and paused["state"] == "paused", paused
    waiting = paused["counts"]["queued"]  # from here on, none of these may start
    assert waiting > 0
    # the running items finish, and every chunk then waits in stage "paused" (it takes no item in that stage)
    await batch_when(svc, batch_id, lambda b: b["counts"]["running"] == 0, timeout=60)

    async def chunks_paused() -> bool:
        async with svc.pool.acquire() as conn:
            rows = await conn.fetch("SELECT status, stage FROM jobs WHERE kind = 'analysis_chunk'")
        return all(r["stage"] == "paused" for r in rows if r["status"] == "running")

    await wait_for(chunks_paused, timeout=30, interval=0.5)
    held = await batch_status(svc, batch_id)
    assert held["state"] == "paused" and held["counts"]["queued"] == waiting, (paused, held)
    assert held["counts"]["running"] == 0 and held["counts"]["succeeded"] < N
    items = await batch_items(svc, batch_id)
    assert sum(i["state"] == "queued" for i in items) == held["counts"]["queued"]
    still = await batch_status(svc, batch_id)
    assert still["counts"] == held["counts"]  # the chunks wait in "paused": nothing started in between

    status, resumed = await svc.post(f"/api/v1/analyses/batches/{batch_id}/resume")
    assert status == 200 and resumed["state"] == "running", resumed
    batch = await batch_done(svc, batch_id, timeout=180)
    assert batch["counts"]["succeeded"] == N and batch["eta_s"] == 0 and batch["credits"] == N * PRICE
    items = await batch_items(svc, batch_id)
    assert [i["position"] for i in items] == list(range(N)) and {i["state"] for i in items} == {"succeeded"}
    assert len(gemini_stub.requests) == N  # each item analysed once

    # the batch's job pushed its progress live: percents that rise between 0 and 100, then its end
    async def ended() -> list[JobProgress] | None:
        mine = sorted((p for p in progress if str(p.job_id) == batch_job), key=lambda p: p.seq)
        return mine if mine and mine[-1].status == "succeeded" else None

    mine: list[JobProgress] = await wait_for(ended, timeout=30, interval=0.5)
    assert {p.kind for p in mine} == {"analysis_batch"}
    percents = [p.percent for p in mine if p.status == "running"]
    assert any(0 < p < 100 for p in percents), percents
    assert all(a <= b for a, b in itertools.pairwise(percents)), percents
    # each running snapshot's stage says how far and, once items have ended, how long is left (the ETA)
    stages = [p.stage for p in mine if p.status == "running"]
    assert all(re.fullmatch(rf"\d+ of {N} analysed( · {LEFT})?", s) for s in stages), stages
    assert any(re.fullmatch(rf"\d+ of {N} analysed · {LEFT}", s) for s in stages), stages
