"""Batches through the service: worker processes (SIGKILLed mid-run), RabbitMQ connections cut and Postgres gone
away as in a restart, a per-day 429 that parks the batch until a resume; every item ends exactly once and the credits captured are exactly the analysed items'."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from common.testing.bus import proxied_url
from common.testing.gemini import GeminiStub, Reply, analysis_reply, rate_limited
from common.testing.netproxy import TcpProxy
from common.testing.subtitles import SubtitleServer
from common.testing.waiting import wait_for

from .batching import all_settled, batch_done, batch_items, batch_of, batch_status, batch_when
from .conftest import WorkerFactory
from .service import PRICE, Service

pytestmark = pytest.mark.xdist_group("analysis_service")


async def test_a_batch_survives_a_killed_worker_and_cut_broker_and_database_connections(
    analysis_service: Callable[..., Awaitable[Service]],
    workers: WorkerFactory,
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
    amqp_url: str,
    database_url: str,
) -> None:
    n = 240
    svc, accepted = await batch_of(analysis_service, subtitle_server, n)
    batch_id = accepted["batch"]["id"]
    assert accepted["batch"]["total"] == n and accepted["batch"]["counts"]["queued"] == n

    async with (
        TcpProxy.in_front_of(amqp_url, default_port=5672) as broker,
        TcpProxy.in_front_of(database_url, default_port=5432) as database,
    ):
        doomed = await workers(svc)
        # the survivor reaches RabbitMQ and Postgres through proxies; a chunk that meets the outage is retried soon
        await workers(
            svc,
            amqp_url=proxied_url(amqp_url, broker),
            database_url=database.url_via(database_url),
            JOB_RETRY_DELAYS_S="1,2",
        )
        assert await svc.grant_holds() == n // 50 + 1  # one hold per chunk of 50
        await batch_when(svc, batch_id, lambda b: b["counts"]["succeeded"] >= 40, timeout=180)
        doomed.kill()  # SIGKILL: its chunks' leases lapse and the other worker takes them over
        assert broker.cut() >= 1  # and the survivor's broker connections drop mid-run
        # and its database goes away as in a restart: every connection reset, new ones refused for a while
        database.pause()
        assert database.cut() >= 1
        middle = (await batch_status(svc, batch_id))["counts"]
        await asyncio.sleep(3)  # the outage lasts (the API reads Postgres directly)
        database.resume()
        assert middle["succeeded"] < n, middle  # the restart came mid-batch
        batch = await batch_done(svc, batch_id, timeout=300)
        assert database.refused >= 1  # the survivor did try to reconnect during the outage

    assert batch["counts"]["succeeded"] == n and batch["counts"]["failed"] == 0, batch["counts"]
    assert batch["credits"] == n * PRICE and batch["eta_s"] == 0
    items = await batch_items(svc, batch_id)
    assert [i["position"] for i in items] == list(range(n))  # every item once, in order
    assert {i["state"] for i in items} == {"succeeded"} and {i["credits"] for i in items} == {PRICE}
    found = await all_settled(svc, n // 50 + 1)
    assert len({s.hold_ref for s in found}) == len(found) == n // 50 + 1  # each hold settled once
    assert sum(s.capture for s in found) == n * PRICE  # captured exactly what was analysed

    async with svc.api.get(f"/api/v1/analyses/batches/{batch_id}/export?format=jsonl", headers=svc.auth) as r:
        lines = (await r.text()).splitlines()
    assert r.status == 200 and len(lines) == n
    async with svc.api.get(f"/api/v1/analyses/batches/{batch_id}/export?format=csv", headers=svc.auth) as r:
        rows = (await r.text()).splitlines()
    assert r.status == 200 and len(rows) == n + 1 and rows[0].startswith("position,video_id,url,state")


async def test_a_per_day_429_parks_the_batch_until_a_resume(
    analysis_service: Callable[..., Awaitable[Service]],
    workers: WorkerFactory,
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    n = 60
    answered = [0]

    def model(request: dict[str, Any]) -> Reply:
        answered[0] += 1
        if answered[0] == 20:
            return rate_limited(per_day=True, retry_delay_s=None)
        return analysis_reply(request)

    gemini_stub.responder = model
    svc, accepted = await batch_of(analysis_service, subtitle_server, n)
    batch_id = accepted["batch"]["id"]
    await workers(svc)
    await svc.grant_holds()

    async def parked() -> dict[str, Any] | None:
        b = await batch_status(svc, batch_id)
        return b if b["quota"]["state"] == "parked" and b["counts"]["running"] == 0 else None

    batch = await wait_for(parked, timeout=120, interval=0.5)
    assert "waiting for the per-day quota to reset at" in batch["quota"]["message"]
    stalled = batch["counts"]["succeeded"]
    assert stalled < n and batch["state"] == "running"

    status, resumed = await svc.post(f"/api/v1/analyses/batches/{batch_id}/resume")
    assert status == 200 and resumed["quota"]["state"] == "ok"
    batch = await batch_done(svc, batch_id, timeout=120)
    assert batch["counts"]["succeeded"] == n and batch["credits"] == n * PRICE


async def test_a_canceled_batch_charges_only_the_items_it_analysed(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
) -> None:
    gemini_stub.delay_s = 0.3  # a slow model: the cancel lands mid-run
    n = 100
    svc, accepted = await batch_of(analysis_service, subtitle_server, n, workers=1, batch_item_concurrency=2)
    batch_id = accepted["batch"]["id"]
    await svc.grant_holds()

    async def started() -> bool:
        return (await batch_status(svc, batch_id))["counts"]["succeeded"] >= 5

    await wait_for(started, timeout=120, interval=0.5)
    status, canceled = await svc.post(f"/api/v1/analyses/batches/{batch_id}/cancel")
    assert status == 200 and canceled["state"] == "canceled"
    status, again = await svc.post(f"/api/v1/analyses/batches/{batch_id}/cancel")
    assert status == 409 and again["code"] == "batch.ended"

    async def settled() -> dict[str, Any] | None:
        b = await batch_status(svc, batch_id)
        return b if b["counts"]["queued"] == 0 and b["counts"]["running"] == 0 else None

    batch = await wait_for(settled, timeout=120, interval=0.5)
    analysed = batch["counts"]["succeeded"]
    assert analysed + batch["counts"]["canceled"] == n and analysed < n
    found = await all_settled(svc, 2)
    assert sum(s.capture for s in found) == analysed * PRICE == batch["credits"]
