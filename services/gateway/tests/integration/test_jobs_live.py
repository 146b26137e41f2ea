"""Jobs read model and live WebSocket fan-out: real RabbitMQ, two gateway replicas, two users."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from common.bus import Delivery
from common.bus.rabbit import RabbitBus
from common.events.base import Event
from common.events.billing import CreditsToppedUp
from common.events.jobs import JobCancelRequested, JobError, JobProgress, JobSubject
from common.service import POOL
from common.testing.bus import RabbitBusFactory, unique_name
from common.testing.waiting import wait_for
from gateway.api import HUB
from gateway.config import GatewaySettings

from ..conftest import GatewayFactory, bearer, register_and_login


def snapshot(
    owner: str, job_id: uuid.UUID, seq: int, status: str, percent: float = 0.0, **kw: Any
) -> JobProgress:
    """A job snapshot as a producing service would publish it."""
    return JobProgress(
        job_id=job_id,
        owner_id=uuid.UUID(owner),
        kind=kw.pop("kind", "transcode"),
        status=status,
        percent=percent,
        seq=seq,
        producer="streaming",
        created_at=kw.pop("created_at", datetime.now(UTC)),
        updated_at=datetime.now(UTC),
        **kw,
    )


Live = tuple[TestClient[Any, Any], RabbitBus]


@pytest.fixture
async def live(start_gateway: GatewayFactory, rabbit_bus_factory: RabbitBusFactory) -> Live:
    """A gateway that consumes job events from RabbitMQ, and a bus to publish them on."""
    return await start_gateway(bus=await rabbit_bus_factory()), await rabbit_bus_factory()


async def _next_job_message(ws: aiohttp.ClientWebSocketResponse, timeout: float = 30.0) -> dict[str, Any]:
    while True:
        msg = await asyncio.wait_for(ws.receive_json(), timeout=timeout)
        if msg["type"] == "job":
            return dict(msg["job"])


async def test_job_events_reach_the_right_users_sockets_on_every_replica(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, rabbit_bus_factory: RabbitBusFactory
) -> None:
    a = await start_gateway(bus=await rabbit_bus_factory())
    b = await start_gateway(bus=await rabbit_bus_factory())
    publisher = await rabbit_bus_factory()
    alice, bob = await register_and_login(a), await register_and_login(a)

    # alice has a socket on each replica (header and query-string auth); bob one on A
    alice_on_a = await a.ws_connect("/api/v1/ws", headers=bearer(alice["access_token"]))
    alice_on_b = await b.ws_connect(f"/api/v1/ws?access_token={alice['access_token']}")
    bob_on_a = await a.ws_connect("/api/v1/ws", headers=bearer(bob["access_token"]))
    for ws in (alice_on_a, alice_on_b, bob_on_a):
        assert (await ws.receive_json(timeout=30))["type"] == "hello"

    job_id = uuid.uuid4()
    await publisher.publish(snapshot(alice["user"]["id"], job_id, 1, "queued"))
    await publisher.publish(snapshot(alice["user"]["id"], job_id, 2, "running", 42.5, stage="encoding 720p"))
    for ws in (alice_on_a, alice_on_b):
        first = await _next_job_message(ws)
        assert first["id"] == str(job_id) and first["status"] == "queued"
        second = await _next_job_message(ws)
        assert (
            second["status"] == "running"
            and second["progress"] == 42.5
            and second["stage"] == "encoding 720p"
        )
    # bob's socket got nothing of alice's
    try:
        leaked = await bob_on_a.receive_json(timeout=1.0)
    except TimeoutError:
        leaked = None
    assert leaked is None

    # the read model caught up too; owner-scoped
    async def listed() -> list[dict[str, Any]]:
        r = await b.get("/api/v1/jobs", headers=bearer(alice["access_token"]))
        items: list[dict[str, Any]] = (await r.json())["items"]
        return items if items and items[0]["status"] == "running" else []

    items = await wait_for(listed, timeout=30, interval=0.1)
    assert items[0]["id"] == str(job_id) and items[0]["owner_id"] == alice["user"]["id"]
    r = await a.get(f"/api/v1/jobs/{job_id}", headers=bearer(bob["access_token"]))
    assert r.status == 404 and (await r.json())["code"] == "job.not_found"
    assert (await (await a.get("/api/v1/jobs", headers=bearer(bob["access_token"]))).json())["items"] == []

    # a failure says why
    await publisher.publish(
        snapshot(
            alice["user"]["id"],
            job_id,
            3,
            "failed",
            42.5,
            error=JobError(code="media.unsupported_codec", message="VP6 is not supported"),
        )
    )
    failed = await _next_job_message(alice_on_b)
    assert failed["status"] == "failed" and failed["error"]["code"] == "media.unsupported_codec"

    for ws in (alice_on_a, alice_on_b, bob_on_a):
        await ws.close()


async def test_read_model_keeps_the_newest_snapshot_and_terminal_states(live: Live) -> None:
    a, publisher = live
    user = await register_and_login(a)
    owner, job_id = user["user"]["id"], uuid.uuid4()
    ws = await a.ws_connect("/api/v1/ws", headers=bearer(user["access_token"]))
    await ws.receive_json(timeout=30)

    holiday = JobSubject(kind="video", id=str(uuid.uuid4()), title="Holiday")
    await publisher.publish(snapshot(owner, job_id, 3, "running", 60, subject=holiday))
    await publisher.publish(snapshot(owner, job_id, 2, "running", 30))  # late, stale
    await publisher.publish(snapshot(owner, job_id, 4, "succeeded", 100, result={"video_id": "v1"}))
    await publisher.publish(snapshot(owner, job_id, 5, "running", 10))  # nothing moves a finished job back

    pushed = [await _next_job_message(ws), await _next_job_message(ws)]
    assert [(m["status"], m["progress"]) for m in pushed] == [("running", 60), ("succeeded", 100)]
    assert pushed[0]["subject"] == {"kind": "video", "id": holiday.id, "title": "Holiday"}  # names its video

    async def final() -> dict[str, Any] | None:
        r = await a.get(f"/api/v1/jobs/{job_id}", headers=bearer(user["access_token"]))
        job: dict[str, Any] = await r.json()
        return job if job.get("status") == "succeeded" else None

    job = await wait_for(final, timeout=30, interval=0.1)
    await asyncio.sleep(0.5)  # the later stale snapshot has been consumed by now
    job = await (await a.get(f"/api/v1/jobs/{job_id}", headers=bearer(user["access_token"]))).json()
    assert job["status"] == "succeeded" and job["progress"] == 100 and job["result"] == {"video_id": "v1"}
    assert job["subject"] == {
        "kind": "video",
        "id": holiday.id,
        "title": "Holiday",
    }  # kept by later snapshots
    await ws.close()


async def test_cancel_goes_to_the_owning_service_through_the_outbox(live: Live) -> None:
    a, publisher = live
    requests: list[JobCancelRequested] = []

    async def on_cancel(event: Event, delivery: Delivery) -> None:
        assert isinstance(event, JobCancelRequested)
        requests.append(event)

    await publisher.subscribe(unique_name("probe"), [JobCancelRequested], on_cancel)
    user, other = await register_and_login(a), await register_and_login(a)
    owner = user["user"]["id"]
    running, done = uuid.uuid4(), uuid.uuid4()
    await publisher.publish(snapshot(owner, running, 1, "running", 5, kind="render"))
    await publisher.publish(snapshot(owner, done, 1, "succeeded", 100))

    async def both_known() -> bool:
        r = await a.get("/api/v1/jobs", headers=bearer(user["access_token"]))
        return len((await r.json())["items"]) == 2

    await wait_for(both_known, timeout=30, interval=0.1)

    r = await a.post(f"/api/v1/jobs/{running}/cancel", headers=bearer(other["access_token"]))
    assert r.status == 404
    r = await a.post(f"/api/v1/jobs/{running}/cancel", headers=bearer(user["access_token"]))
    assert r.status == 202
    job = await r.json()
    assert job["id"] == str(running) and job["cancel_requested"] is True and job["status"] == "running"
    await wait_for(lambda: requests, timeout=30)
    assert (
        requests[0].job_id == running and requests[0].kind == "render" and str(requests[0].owner_id) == owner
    )
    # asking twice is fine and does not ask the service twice
    assert (
        await a.post(f"/api/v1/jobs/{running}/cancel", headers=bearer(user["access_token"]))
    ).status == 202

    r = await a.post(f"/api/v1/jobs/{done}/cancel", headers=bearer(user["access_token"]))
    assert r.status == 409 and (await r.json())["code"] == "job.not_cancelable"
    await asyncio.sleep(0.3)
    assert len(requests) == 1


async def test_job_list_filters_and_pages(live: Live) -> None:
    a, publisher = live
    user = await register_and_login(a)
    owner = user["user"]["id"]
    base = datetime.now(UTC).timestamp()
    ids = [uuid.uuid4() for _ in range(5)]
    for i, job_id in enumerate(ids):
        await publisher.publish(
            snapshot(
                owner,
                job_id,
                1,
                "running" if i % 2 else "queued",
                kind="render" if i < 2 else "captions",
                created_at=datetime.fromtimestamp(base + i, UTC),
            )
        )
    h = bearer(user["access_token"])

    async def all_there() -> bool:
        return len((await (await a.get("/api/v1/jobs?limit=100", headers=h)).json())["items"]) == 5

    await wait_for(all_there, timeout=30, interval=0.1)
    page1 = await (await a.get("/api/v1/jobs?limit=2", headers=h)).json()
    page2 = await (await a.get(f"/api/v1/jobs?limit=2&cursor={page1['next_cursor']}", headers=h)).json()
    page3 = await (await a.get(f"/api/v1/jobs?limit=2&cursor={page2['next_cursor']}", headers=h)).json()
    seen = [j["id"] for p in (page1, page2, page3) for j in p["items"]]
    assert seen == [str(i) for i in reversed(ids)] and page3["next_cursor"] is None  # newest first

    running = await (await a.get("/api/v1/jobs?status=running", headers=h)).json()
    assert {j["id"] for j in running["items"]} == {str(ids[1]), str(ids[3])}
    renders = await (await a.get("/api/v1/jobs?kind=render&status=queued,running", headers=h)).json()
    assert {j["id"] for j in renders["items"]} == {str(ids[0]), str(ids[1])}

    for query, code in (
        ("status=exploded", "validation.status"),
        ("limit=0", "validation.invalid"),
        ("limit=x", "validation.invalid"),
        ("cursor=%%%", "validation.invalid"),
    ):
        r = await a.get(f"/api/v1/jobs?{query}", headers=h)
        assert r.status == 422 and (await r.json())["code"] == code, query
    r = await a.get("/api/v1/jobs/not-a-uuid", headers=h)
    assert r.status == 404


async def test_websocket_refuses_bad_tokens_and_closes_on_shutdown(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    a = await start_gateway()
    r = await a.get(
        "/api/v1/ws",
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert r.status == 401 and (await r.json())["code"] == "auth.missing_token"
    try:
        await a.ws_connect("/api/v1/ws?access_token=forged.token.here")
        raise AssertionError("connected with a forged token")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 401

    user = await register_and_login(a)
    ws = await a.ws_connect("/api/v1/ws", headers=bearer(user["access_token"]))
    assert (await ws.receive_json(timeout=30))["type"] == "hello"
    assert a.app[HUB].count() == 1
    closing = asyncio.create_task(
        a.server.close()
    )  # the replica shuts down: sockets are told to go elsewhere
    msg = await ws.receive(timeout=30)
    await closing
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY


async def test_an_ending_snapshot_wins_even_when_handled_after_a_later_one(
    start_gateway: GatewayFactory, rabbit_bus_factory: RabbitBusFactory
) -> None:
    """Consumers handle snapshots concurrently: a 'succeeded' applied after a higher-seq 'running' still ends it."""
    from gateway import readmodel, store

    a = await start_gateway(bus=await rabbit_bus_factory())
    user = await register_and_login(a)
    owner, job_id = uuid.UUID(user["user"]["id"]), uuid.uuid4()
    pool = a.server.app[POOL]

    def snap(seq: int, status: str, pct: float) -> JobProgress:
        return JobProgress(
            job_id=job_id, owner_id=owner, kind="transcode", status=status, percent=pct, seq=seq
        )

    async with store.transaction(pool) as conn:
        assert await readmodel.apply_snapshot(conn, snap(5, "running", 10))
        assert await readmodel.apply_snapshot(
            conn, snap(4, "succeeded", 100)
        )  # arrives late, still ends the job
        assert not await readmodel.apply_snapshot(conn, snap(6, "running", 20))  # nothing reopens it
        assert not await readmodel.apply_snapshot(conn, snap(7, "failed", 0))  # nor ends it twice
    job = await (await a.get(f"/api/v1/jobs/{job_id}", headers=bearer(user["access_token"]))).json()
    assert (job["status"], job["progress"]) == ("succeeded", 100)


async def test_a_credited_payment_reaches_its_accounts_sockets_only(live: Live) -> None:
    a, publisher = live
    alice, bob = await register_and_login(a), await register_and_login(a)
    alice_ws = await a.ws_connect("/api/v1/ws", headers=bearer(alice["access_token"]))
    bob_ws = await a.ws_connect("/api/v1/ws", headers=bearer(bob["access_token"]))
    for ws in (alice_ws, bob_ws):
        assert (await ws.receive_json(timeout=30))["type"] == "hello"

    await publisher.publish(
        CreditsToppedUp(
            account_id=uuid.UUID(alice["user"]["id"]), amount=500, order_id="order-1", balance_after=600
        )
    )
    # then a job of bob's: his first message after the payment is that job, not alice's payment
    job_id = uuid.uuid4()
    await publisher.publish(snapshot(bob["user"]["id"], job_id, 1, "queued"))
    assert await alice_ws.receive_json(timeout=30) == {
        "type": "credits",
        "credits": {"order_id": "order-1", "amount": 500, "balance_after": 600},
    }
    first = await bob_ws.receive_json(timeout=30)
    assert first["type"] == "job" and first["job"]["id"] == str(job_id), first
    for ws in (alice_ws, bob_ws):
        await ws.close()
