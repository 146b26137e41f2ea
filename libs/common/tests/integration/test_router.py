"""The event router against the real Postgres and both buses: inbox routes, plain routes, errors, composition."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from common import outbox
from common.bus import Bus, Delivery, MemoryBus, PermanentError, Router
from common.events.base import Event, decode
from common.events.ingest import VideoDeleted, VideoIngested
from common.events.jobs import JobProgress
from common.testing.bus import RabbitBusFactory, unique_name
from common.testing.waiting import wait_for


@pytest.fixture(params=["memory", "rabbit"])
async def bus(request: pytest.FixtureRequest, rabbit_bus_factory: RabbitBusFactory) -> AsyncIterator[Bus]:
    if request.param == "memory":
        memory = MemoryBus(service=unique_name("svc"), max_retries=2, retry_delay_s=0.01)
        await memory.start()
        yield memory
        await memory.close()
    else:
        yield await rabbit_bus_factory(max_retries=2, retry_delays_ms=("50", "200"))


@pytest.fixture
async def effects(pg_pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pg_pool.acquire() as conn:
        # no unique key: a duplicate effect must show, not be absorbed
        await conn.execute("CREATE TABLE effects (event_id uuid NOT NULL, what text NOT NULL)")
    return pg_pool


def ingested() -> VideoIngested:
    return VideoIngested(
        video_id=uuid.uuid4(), owner_id=uuid.uuid4(), storage_key="originals/x/source.mp4", duration_s=1.0
    )


async def rows(pool: asyncpg.Pool) -> list[tuple[uuid.UUID, str]]:
    async with pool.acquire() as conn:
        return [(r["event_id"], r["what"]) for r in await conn.fetch("SELECT * FROM effects ORDER BY what")]


async def test_an_inbox_route_has_one_effect_per_event_and_its_outbox_writes_commit_with_it(
    bus: Bus, effects: asyncpg.Pool
) -> None:
    woken: list[uuid.UUID] = []
    router = Router(consumer="test")

    @router.on(VideoIngested, after=lambda e: woken.append(e.id))
    async def on_ingested(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None:
        await conn.execute("INSERT INTO effects VALUES ($1, 'ingested')", event.id)
        await outbox.add(conn, VideoDeleted(video_id=event.video_id, owner_id=event.owner_id))

    queue = unique_name("q")
    await router.subscribe(bus, queue=queue, pool=effects)
    event = ingested()
    await bus.publish(event)
    await bus.publish(event)  # delivered twice (at-least-once)

    await wait_for(lambda: len(woken) == 2)
    assert await rows(effects) == [(event.id, "ingested")]
    async with effects.acquire() as conn:
        written = [decode(bytes(r["body"])) for r in await conn.fetch("SELECT body FROM outbox")]
    assert [(type(e), getattr(e, "video_id", None)) for e in written] == [(VideoDeleted, event.video_id)]


async def test_a_handler_error_rolls_back_the_inbox_claim_so_the_retry_runs_it_again(
    bus: Bus, effects: asyncpg.Pool
) -> None:
    attempts: list[int] = []
    router = Router(consumer="test")

    @router.on(VideoIngested)
    async def flaky(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await conn.execute("INSERT INTO effects VALUES ($1, 'ingested')", event.id)
        if delivery.attempt == 1:
            raise RuntimeError("transient")

    queue = unique_name("q")
    await router.subscribe(bus, queue=queue, pool=effects)
    event = ingested()
    await bus.publish(event)

    await wait_for(lambda: attempts == [1, 2], timeout=20)
    await wait_for(lambda: rows(effects), timeout=5)
    assert await rows(effects) == [(event.id, "ingested")]


async def test_permanent_error_types_are_dead_lettered_without_retries(
    bus: Bus, effects: asyncpg.Pool
) -> None:
    class Refused(Exception):
        pass

    attempts: list[int] = []
    router = Router(consumer="test", permanent=[Refused])

    @router.on(VideoIngested)
    async def refuses(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        await conn.execute("INSERT INTO effects VALUES ($1, 'ingested')", event.id)
        raise Refused("a request retrying cannot fix")

    queue = unique_name("q")
    await router.subscribe(bus, queue=queue, pool=effects)
    event = ingested()
    await bus.publish(event)

    dead: list[tuple[str, bytes, object]] = []

    async def arrived() -> bool:
        dead.extend(await bus.dead_letters(queue))
        return bool(dead)

    await wait_for(arrived, timeout=20)
    assert attempts == [1]
    assert decode(dead[0][1]).id == event.id
    assert await rows(effects) == []  # rolled back with the inbox claim


async def test_included_routes_keep_their_consumer_and_take_the_including_routers_otherwise(
    effects: asyncpg.Pool,
) -> None:
    service = Router(consumer="svc")
    credits = Router()  # e.g. a library's handlers: no inbox name of its own
    billing_like = Router(consumer="lib")

    @credits.on(VideoIngested)
    async def on_ingested(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None:
        await conn.execute("INSERT INTO effects VALUES ($1, 'ingested')", event.id)

    async def on_deleted(conn: asyncpg.Connection, event: VideoDeleted, delivery: Delivery) -> None:
        await conn.execute("INSERT INTO effects VALUES ($1, 'deleted')", event.id)

    billing_like.add(VideoDeleted, on_deleted)
    service.include(credits)
    service.include(billing_like)
    handler = service.handler(pool=effects)
    a, b = ingested(), VideoDeleted(video_id=uuid.uuid4(), owner_id=uuid.uuid4())
    await handler(a, Delivery(routing_key=a.type))
    await handler(b, Delivery(routing_key=b.type))

    async with effects.acquire() as conn:
        claimed = {(r["event_id"], r["consumer"]) for r in await conn.fetch("SELECT * FROM inbox")}
    assert claimed == {(a.id, "svc"), (b.id, "lib")}
    with pytest.raises(PermanentError):  # no route: dead-lettered by the bus
        stray = JobProgress(job_id=uuid.uuid4(), owner_id=uuid.uuid4(), kind="x", status="queued")
        await handler(stray, Delivery(routing_key=stray.type))


def test_registration_mistakes_are_refused_at_once() -> None:
    router = Router()

    async def plain(event: Event, delivery: Delivery) -> None:
        return None

    router.add(VideoIngested, plain, inbox=False)
    with pytest.raises(ValueError, match="already has a handler"):
        router.add(VideoIngested, plain, inbox=False)
    other = Router()
    other.add(VideoIngested, plain, inbox=False)
    with pytest.raises(ValueError, match="already has a handler"):
        router.include(other)
    with pytest.raises(TypeError, match="not a concrete event class"):
        router.add(Event, plain, inbox=False)

    async def tx(conn: asyncpg.Connection, event: VideoDeleted, delivery: Delivery) -> None:
        return None

    router.add(VideoDeleted, tx)
    with pytest.raises(ValueError, match="needs a consumer name"):
        router.handler(pool=None)
