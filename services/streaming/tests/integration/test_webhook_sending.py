"""Webhook delivery end to end: stream events on RabbitMQ → the worker's queue → signed POSTs to a receiver on
127.0.0.1, retried with back-off, logged attempt by attempt, and endpoints that keep failing disabled."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common.bus.rabbit import RabbitBus
from common.events.streaming import StreamFailed, StreamPlayable, StreamReady
from common.storage.fs import FileStore
from common.testing.auth import TokenFactory
from common.testing.waiting import wait_for
from streaming.webhooks import verify_signature

from .conftest import AppFactory

Client = TestClient[web.Request, web.Application]


@dataclass
class Receiver:
    """A webhook receiver: answers ``fail_first`` requests with 500 (or sleeps), then 200."""

    fail_first: int = 0
    sleep_s: float = 0.0
    requests: list[tuple[dict[str, str], str, float]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.requests.append((dict(request.headers), body, asyncio.get_running_loop().time()))
        if len(self.requests) <= self.fail_first:
            if self.sleep_s:
                await asyncio.sleep(self.sleep_s)
            return web.Response(status=500, text="try later")
        return web.Response(status=200, text="ok")


async def _receiver(aiohttp_server: Any, **kw: Any) -> Receiver:
    r = Receiver(**kw)
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    r.url = str(server.make_url("/hook"))
    return r


@dataclass
class Hooks:
    """The streaming API, one owner's webhook endpoints, receivers on 127.0.0.1 and workers on RabbitMQ."""

    api: Client
    owner: uuid.UUID
    tokens: TokenFactory
    bus: RabbitBus
    app_factory: AppFactory
    store: FileStore
    aiohttp_server: Any

    @property
    def headers(self) -> dict[str, str]:
        """The owner's credentials."""
        return self.tokens.headers(self.owner)

    async def receiver(self, **kw: Any) -> Receiver:
        """A receiver (see ``Receiver``) listening on 127.0.0.1."""
        return await _receiver(self.aiohttp_server, **kw)

    async def worker(self, *, bus: RabbitBus | None = None, **changes: Any) -> None:
        """A worker (settings ``changes``) consuming from ``bus`` (the test's bus by default)."""
        await self.app_factory(self.store, role="worker", bus=bus or self.bus, **changes)

    async def register(self, url: str, events: list[str]) -> dict[str, Any]:
        """A new endpoint of the owner's."""
        resp = await self.api.post(
            "/api/v1/webhooks", json={"url": url, "events": events}, headers=self.headers
        )
        assert resp.status == 201, await resp.text()
        doc: dict[str, Any] = await resp.json()
        return doc

    async def hook(self, hook_id: str) -> dict[str, Any]:
        """An endpoint as its owner sees it."""
        doc: dict[str, Any] = await (
            await self.api.get(f"/api/v1/webhooks/{hook_id}", headers=self.headers)
        ).json()
        return doc

    async def deliveries(self, hook_id: str) -> list[dict[str, Any]]:
        """An endpoint's delivery log."""
        resp = await self.api.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=self.headers)
        assert resp.status == 200
        items: list[dict[str, Any]] = (await resp.json())["items"]
        return items

    async def first_delivery_in(self, hook_id: str, status: str) -> list[dict[str, Any]]:
        """The log once its newest delivery is in ``status`` (else empty: for ``wait_for``)."""
        items = await self.deliveries(hook_id)
        return items if items and items[0]["status"] == status else []

    async def all_delivered(self, hook_id: str) -> bool:
        """Every delivery of the endpoint was delivered."""
        items = await self.deliveries(hook_id)
        return bool(items) and all(d["status"] == "delivered" for d in items)


@pytest.fixture
async def hooks(
    app_factory: AppFactory,
    fs_store: FileStore,
    rabbit_bus: RabbitBus,
    token_factory: TokenFactory,
    aiohttp_server: Any,
) -> Hooks:
    """The streaming API for one owner (start workers with ``hooks.worker()``)."""
    return Hooks(
        api=await app_factory(fs_store),
        owner=uuid.uuid4(),
        tokens=token_factory,
        bus=rabbit_bus,
        app_factory=app_factory,
        store=fs_store,
        aiohttp_server=aiohttp_server,
    )


async def test_a_stream_ready_event_reaches_the_receiver_correctly_signed(hooks: Hooks) -> None:
    receiver = await hooks.receiver()
    await hooks.worker()
    hook = await hooks.register(receiver.url, ["stream.ready"])

    event = StreamReady(
        video_id=uuid.uuid4(),
        owner_id=hooks.owner,
        renditions=["src", "360p"],
        duration_s=3.0,
        producer="streaming",
    )
    await hooks.bus.publish(event)
    await wait_for(lambda: receiver.requests, timeout=30)

    headers, body, _ = receiver.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["Reelforge-Event-Id"] == str(event.id)
    assert verify_signature(hook["secret"], body, headers["Reelforge-Signature"])
    doc = json.loads(body)
    assert doc["id"] == str(event.id) and doc["type"] == "stream.ready"
    assert doc["data"] == {
        "video_id": str(event.video_id),
        "status": "ready",
        "renditions": ["src", "360p"],
        "duration_s": 3.0,
    }

    (d,) = await wait_for(lambda: hooks.first_delivery_in(hook["id"], "delivered"), timeout=30)
    assert d["event_id"] == str(event.id) and d["event_type"] == "stream.ready" and d["attempt_count"] == 1
    (a,) = d["attempts"]
    assert (
        a["status_code"] == 200 and a["error"] is None and a["latency_ms"] >= 0 and a["next_retry_at"] is None
    )
    hook_now = await hooks.hook(hook["id"])
    assert hook_now["last_success_at"] is not None and hook_now["consecutive_failures"] == 0


async def test_a_failing_receiver_gets_retries_with_back_off_until_it_answers(hooks: Hooks) -> None:
    receiver = await hooks.receiver(fail_first=3)
    await hooks.worker(webhook_retry_base_s=0.2, webhook_retry_max_delay_s=5)
    hook = await hooks.register(receiver.url, ["stream.failed", "stream.ready"])
    event = StreamFailed(
        video_id=uuid.uuid4(), owner_id=hooks.owner, code="media.unreadable", message="cannot decode"
    )
    await hooks.bus.publish(event)
    await wait_for(lambda: len(receiver.requests) >= 4, timeout=20)

    # every retry is the same event, byte for byte, freshly signed
    bodies = {body for _, body, _ in receiver.requests}
    assert len(bodies) == 1
    assert all(h["Reelforge-Event-Id"] == str(event.id) for h, _, _ in receiver.requests)
    assert all(verify_signature(hook["secret"], b, h["Reelforge-Signature"]) for h, b, _ in receiver.requests)
    gaps = [b[2] - a[2] for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    # equal jitter: each wait is between half and all of 0.2·2^(n-1) s — so it grows
    assert gaps[0] >= 0.09 and gaps[2] >= 0.39 and gaps[2] > gaps[0]

    (d,) = await wait_for(lambda: hooks.first_delivery_in(hook["id"], "delivered"), timeout=30)
    assert [a["status_code"] for a in d["attempts"]] == [500, 500, 500, 200]
    assert [a["attempt"] for a in d["attempts"]] == [1, 2, 3, 4]
    for a in d["attempts"][:3]:
        assert a["error"] == "HTTP 500 Internal Server Error"
        assert datetime.fromisoformat(a["next_retry_at"]) > datetime.fromisoformat(a["started_at"])
    assert d["attempts"][3]["next_retry_at"] is None and d["next_attempt_at"] is None
    assert len(receiver.requests) == 4  # nothing after the success


async def test_only_the_owners_subscribed_events_are_delivered_once(hooks: Hooks) -> None:
    receiver = await hooks.receiver()
    await hooks.worker()
    owner, bus = hooks.owner, hooks.bus
    hook = await hooks.register(receiver.url, ["stream.playable"])
    video = uuid.uuid4()
    playable = StreamPlayable(video_id=video, owner_id=owner, renditions=["src"])
    await bus.publish(playable)
    await bus.publish(playable)  # a redelivery of the same event
    await bus.publish(StreamReady(video_id=video, owner_id=owner))  # not subscribed
    await bus.publish(StreamPlayable(video_id=uuid.uuid4(), owner_id=uuid.uuid4()))  # someone else's
    marker = StreamPlayable(video_id=uuid.uuid4(), owner_id=owner)
    await bus.publish(marker)
    await wait_for(
        lambda: any(json.loads(b)["id"] == str(marker.id) for _, b, _ in receiver.requests), timeout=30
    )
    await asyncio.sleep(0.3)
    ids = [json.loads(b)["id"] for _, b, _ in receiver.requests]
    assert sorted(ids) == sorted([str(playable.id), str(marker.id)])
    items = await hooks.deliveries(hook["id"])
    assert len(items) == 2 and {d["event_type"] for d in items} == {"stream.playable"}


async def test_an_endpoint_that_keeps_failing_is_disabled_and_says_so(hooks: Hooks) -> None:
    receiver = await hooks.receiver(fail_first=10**6, sleep_s=0.0)
    await hooks.worker(webhook_disable_after_failures=3)
    hook = await hooks.register(receiver.url, ["stream.ready"])
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))

    async def disabled() -> dict[str, Any] | None:
        h = await hooks.hook(hook["id"])
        return h if not h["enabled"] else None

    h = await wait_for(disabled, timeout=30)
    assert "3 consecutive failed attempts" in h["disabled_reason"] and h["disabled_at"] is not None
    assert len(receiver.requests) == 3
    (d,) = await hooks.deliveries(hook["id"])
    assert d["status"] == "canceled" and len(d["attempts"]) == 3 and "endpoint disabled" in d["last_error"]

    # a disabled endpoint gets nothing new ...
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == 3
    # ... until its owner turns it back on
    receiver.fail_first = 0
    resp = await hooks.api.post(f"/api/v1/webhooks/{hook['id']}/enable", headers=hooks.headers)
    assert resp.status == 200 and (await resp.json())["enabled"] is True
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))
    await wait_for(lambda: len(receiver.requests) == 4, timeout=30)


async def test_retries_stop_when_the_window_closes_and_timeouts_are_logged(hooks: Hooks) -> None:
    receiver = await hooks.receiver(fail_first=10**6, sleep_s=1.0)
    await hooks.worker(webhook_timeout_s=0.3, webhook_retry_window_s=0.8, webhook_retry_base_s=0.1)
    hook = await hooks.register(receiver.url, ["stream.ready"])
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))

    (d,) = await wait_for(lambda: hooks.first_delivery_in(hook["id"], "failed"), timeout=15)
    assert d["attempt_count"] >= 2 and d["next_attempt_at"] is None
    assert all(a["status_code"] is None and "timed out" in a["error"] for a in d["attempts"])
    assert all(200 <= a["latency_ms"] < 1000 for a in d["attempts"])
    assert d["attempts"][-1]["next_retry_at"] is None and "retries exhausted" in d["last_error"]


async def test_two_workers_deliver_each_event_exactly_once(hooks: Hooks, rabbit_bus_factory: Any) -> None:
    receiver = await hooks.receiver()
    for _ in range(2):  # competing consumers on one queue, two dispatchers on one table
        await hooks.worker(bus=await rabbit_bus_factory())
    await hooks.register(receiver.url, ["stream.ready"])
    events = [StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner) for _ in range(20)]
    for e in events:
        await hooks.bus.publish(e)
        await hooks.bus.publish(e)  # and every event twice, as an at-least-once broker may
    await wait_for(lambda: len(receiver.requests) >= 20, timeout=15)
    await asyncio.sleep(0.5)
    ids = sorted(json.loads(b)["id"] for _, b, _ in receiver.requests)
    assert ids == sorted(str(e.id) for e in events)


async def test_a_dispatcher_that_died_mid_request_hands_the_delivery_back(
    hooks: Hooks, streaming_pool: Any
) -> None:
    from streaming import webhook_store as wstore

    receiver = await hooks.receiver()
    hook = await hooks.register(receiver.url, ["stream.ready"])
    async with streaming_pool.acquire() as conn:
        await wstore.add_delivery(
            conn,
            delivery_id=uuid.uuid4(),
            webhook_id=uuid.UUID(hook["id"]),
            event_id=uuid.uuid4(),
            event_type="stream.ready",
            body='{"id":"x"}',
        )
        # a dispatcher leases it, then dies before it records anything
        # a lease that outlives the worker's start even on a loaded machine (1 s did not, under xdist)
        (leased,) = await wstore.claim_due_deliveries(conn, limit=10, lease_s=5.0)
        assert await wstore.claim_due_deliveries(conn, limit=10, lease_s=5.0) == []  # nobody else may take it
    await hooks.worker()
    await asyncio.sleep(0.5)
    assert receiver.requests == []  # still leased
    await wait_for(lambda: receiver.requests, timeout=30)
    (d,) = await hooks.deliveries(hook["id"])
    assert d["id"] == str(leased.id)
    await wait_for(lambda: hooks.all_delivered(hook["id"]), timeout=30)


async def test_deleting_an_endpoint_mid_retry_stops_its_deliveries_only(hooks: Hooks) -> None:
    failing = await hooks.receiver(fail_first=10**6)
    healthy = await hooks.receiver()
    await hooks.worker()
    doomed = await hooks.register(failing.url, ["stream.ready"])
    kept = await hooks.register(healthy.url, ["stream.ready"])
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))
    await wait_for(lambda: len(failing.requests) >= 2, timeout=30)
    resp = await hooks.api.delete(f"/api/v1/webhooks/{doomed['id']}", headers=hooks.headers)
    assert resp.status == 204
    seen = len(failing.requests)
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))
    await wait_for(lambda: len(healthy.requests) == 2, timeout=30)
    await asyncio.sleep(0.5)
    assert len(failing.requests) <= seen + 1  # at most the attempt already in flight
    assert await hooks.all_delivered(kept["id"])


async def test_finished_deliveries_are_purged_after_the_retention_but_pending_ones_stay(
    hooks: Hooks, streaming_pool: Any
) -> None:
    from streaming import webhook_store as wstore

    hook = await hooks.register("http://127.0.0.1:9/hook", ["stream.ready"])
    async with streaming_pool.acquire() as conn:
        ids = []
        for _ in range(3):
            ids.append(uuid.uuid4())
            await wstore.add_delivery(
                conn,
                delivery_id=ids[-1],
                webhook_id=uuid.UUID(hook["id"]),
                event_id=uuid.uuid4(),
                event_type="stream.ready",
                body="{}",
            )
        # two are old: one delivered, one still pending; the third is recent and delivered
        await conn.execute(
            "UPDATE webhook_deliveries SET created_at = now() - interval '40 days' WHERE id = ANY($1)",
            ids[:2],
        )
        await conn.execute(
            "UPDATE webhook_deliveries SET status = 'delivered' WHERE id = ANY($1)", [ids[0], ids[2]]
        )
        assert await wstore.purge_deliveries(conn, older_than_s=30 * 86400) == 1
    left = {d["id"] for d in await hooks.deliveries(hook["id"])}
    assert left == {str(ids[1]), str(ids[2])}


async def test_a_finished_delivery_is_redelivered_on_request_with_the_same_event(hooks: Hooks) -> None:
    receiver = await hooks.receiver()
    await hooks.worker()
    hook = await hooks.register(receiver.url, ["stream.ready"])
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))
    (d,) = await wait_for(lambda: hooks.first_delivery_in(hook["id"], "delivered"), timeout=30)
    url = f"/api/v1/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver"

    resp = await hooks.api.post(url, headers=hooks.headers)
    assert resp.status == 202, await resp.text()
    queued = await resp.json()
    assert (queued["id"], queued["status"], queued["attempt_count"]) == (d["id"], "pending", 1)
    await wait_for(lambda: len(receiver.requests) == 2, timeout=30)
    (again,) = await wait_for(lambda: hooks.first_delivery_in(hook["id"], "delivered"), timeout=30)
    assert [a["attempt"] for a in again["attempts"]] == [1, 2]
    assert [a["status_code"] for a in again["attempts"]] == [200, 200]
    (h1, b1, _), (h2, b2, _) = receiver.requests
    assert b1 == b2 and h1["Reelforge-Event-Id"] == h2["Reelforge-Event-Id"] == d["event_id"]
    assert verify_signature(hook["secret"], b2, h2["Reelforge-Signature"])

    someone = await hooks.api.post(url, headers=hooks.tokens.headers(uuid.uuid4()))
    assert (someone.status, (await someone.json())["code"]) == (404, "webhook.not_found")
    missing = f"/api/v1/webhooks/{hook['id']}/deliveries/{uuid.uuid4()}/redeliver"
    for path in (missing, f"/api/v1/webhooks/{hook['id']}/deliveries/nope/redeliver"):
        resp = await hooks.api.post(path, headers=hooks.headers)
        assert (resp.status, (await resp.json())["code"]) == (404, "webhook_delivery.not_found")


async def test_a_delivery_waiting_for_its_retry_is_not_redelivered_beside_it(hooks: Hooks) -> None:
    receiver = await hooks.receiver(fail_first=10**6)
    await hooks.worker(webhook_retry_base_s=30)  # the first retry is 15-30 s away
    hook = await hooks.register(receiver.url, ["stream.ready"])
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))

    async def failed_once() -> list[dict[str, Any]]:
        items = await hooks.first_delivery_in(hook["id"], "pending")
        return items if items and items[0]["attempt_count"] == 1 else []

    (d,) = await wait_for(failed_once, timeout=30)
    resp = await hooks.api.post(
        f"/api/v1/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver", headers=hooks.headers
    )
    assert (resp.status, (await resp.json())["code"]) == (409, "webhook_delivery.pending")


async def test_a_disabled_endpoint_is_not_redelivered_until_enabled(hooks: Hooks) -> None:
    receiver = await hooks.receiver(fail_first=1)
    # the first failure disables the endpoint (and cancels the delivery)
    await hooks.worker(webhook_disable_after_failures=1)
    hook = await hooks.register(receiver.url, ["stream.ready"])
    await hooks.bus.publish(StreamReady(video_id=uuid.uuid4(), owner_id=hooks.owner))
    (d,) = await wait_for(lambda: hooks.first_delivery_in(hook["id"], "canceled"), timeout=30)
    url = f"/api/v1/webhooks/{hook['id']}/deliveries/{d['id']}/redeliver"
    resp = await hooks.api.post(url, headers=hooks.headers)
    assert (resp.status, (await resp.json())["code"]) == (409, "webhook.disabled")
    assert len(receiver.requests) == 1

    enabled = await hooks.api.post(f"/api/v1/webhooks/{hook['id']}/enable", headers=hooks.headers)
    assert enabled.status == 200
    resp = await hooks.api.post(url, headers=hooks.headers)
    assert resp.status == 202
    (done,) = await wait_for(lambda: hooks.first_delivery_in(hook["id"], "delivered"), timeout=30)
    assert [a["status_code"] for a in done["attempts"]] == [500, 200]
    assert len(receiver.requests) == 2
