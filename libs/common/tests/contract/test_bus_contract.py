"""The bus contract: every adapter (in-memory, RabbitMQ) passes the same suite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from common.bus import Bus, Delivery, MemoryBus, PermanentError, Router
from common.events import Event, decode_as, encode
from common.events.ingest import VideoDeleted, VideoIngested
from common.testing.bus import RabbitBusFactory, unique_name
from common.testing.waiting import wait_for

MAX_RETRIES = 2  # so a message is tried 3 times before it is dead


@pytest.fixture(params=["memory", "rabbit"])
async def bus(request: pytest.FixtureRequest, rabbit_bus_factory: RabbitBusFactory) -> AsyncIterator[Bus]:
    """The adapter under test, configured alike: 2 retries, fast back-off."""
    if request.param == "memory":
        memory = MemoryBus(service=unique_name("svc"), max_retries=MAX_RETRIES, retry_delay_s=0.01)
        await memory.start()
        yield memory
        await memory.close()
    else:
        yield await rabbit_bus_factory(max_retries=MAX_RETRIES, retry_delays_ms=("50", "200"))


@pytest.fixture
def queue() -> str:
    return unique_name("q")


def ingested() -> VideoIngested:
    return VideoIngested(
        video_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        storage_key="originals/x/source.mp4",
        duration_s=12.5,
        correlation_id=unique_name("req"),
        producer="ingest",
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def dead_count(bus: Bus, queue: str) -> float:
    return metric("reelforge_bus_dead_lettered_total", service=bus.service, queue=queue)


def retries(bus: Bus, queue: str, event_type: str = "video.ingested.v1") -> float:
    labels = {"service": bus.service, "queue": queue, "type": event_type, "outcome": "retry"}
    return metric("reelforge_bus_handled_total", **labels)


async def drain_dead(bus: Bus, queue: str, into: list[tuple[str, bytes, object]]) -> int:
    """Accumulate dead letters (``dead_letters`` drains) and return how many arrived so far."""
    into.extend(await bus.dead_letters(queue))
    return len(into)


async def test_published_event_round_trips_to_a_subscriber(bus: Bus, queue: str) -> None:
    got: list[tuple[Event, Delivery]] = []

    async def handler(event: Event, delivery: Delivery) -> None:
        got.append((event, delivery))

    await bus.subscribe(queue, [VideoIngested], handler)
    sent = ingested()
    await bus.publish(sent, headers={"x-request-id": "req-42"})

    await wait_for(lambda: got)
    event, delivery = got[0]
    assert event == sent
    assert isinstance(event, VideoIngested)
    assert delivery.routing_key == "video.ingested.v1"
    assert delivery.attempt == 1
    assert delivery.redelivered is False
    assert delivery.headers["x-request-id"] == "req-42"


async def test_only_bound_event_types_are_routed(bus: Bus, queue: str) -> None:
    got: list[Event] = []

    async def handler(event: Event, delivery: Delivery) -> None:
        got.append(event)

    await bus.subscribe(queue, [VideoIngested], handler)
    # published first on the same channel, so it would arrive first if it were routed here
    await bus.publish(VideoDeleted(video_id=uuid.uuid4(), owner_id=uuid.uuid4()))
    wanted = ingested()
    await bus.publish(wanted)

    await wait_for(lambda: got)
    assert [e.id for e in got] == [wanted.id]
    assert await bus.queue_depth(queue) == 0


async def test_failing_handler_is_retried_until_it_succeeds(bus: Bus, queue: str) -> None:
    attempts: list[int] = []
    handled: list[Event] = []

    async def flaky(event: Event, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt < 3:
            raise RuntimeError(f"transient failure #{delivery.attempt}")
        handled.append(event)

    await bus.subscribe(queue, [VideoIngested], flaky)
    sent = ingested()
    await bus.publish(sent)

    await wait_for(lambda: handled, timeout=20)
    assert attempts == [1, 2, 3]
    assert [e.id for e in handled] == [sent.id]
    assert await bus.dead_letters(queue) == []


async def test_always_failing_handler_ends_in_the_dead_letter_queue(bus: Bus, queue: str) -> None:
    attempts: list[int] = []

    async def broken(event: Event, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise RuntimeError("storage unavailable")

    dead_before = metric("reelforge_bus_dead_lettered_total", service=bus.service, queue=queue)
    await bus.subscribe(queue, [VideoIngested], broken)
    sent = ingested()
    await bus.publish(sent)

    dead: list[tuple[str, bytes, object]] = []
    await wait_for(lambda: drain_dead(bus, queue, dead), timeout=20)
    assert attempts == [1, 2, 3]  # the first try and MAX_RETRIES retries
    routing_key, body, _ = dead[0]
    assert routing_key == "video.ingested.v1"
    assert decode_as(body, VideoIngested) == sent
    await wait_for(
        lambda: (
            metric("reelforge_bus_dead_lettered_total", service=bus.service, queue=queue) == dead_before + 1
        )
    )


async def test_permanent_error_is_dead_lettered_without_retries(bus: Bus, queue: str) -> None:
    attempts: list[int] = []

    async def refuses(event: Event, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise PermanentError("video belongs to a deleted account")

    await bus.subscribe(queue, [VideoIngested], refuses)
    sent = ingested()
    await bus.publish(sent)

    dead: list[tuple[str, bytes, object]] = []
    await wait_for(lambda: drain_dead(bus, queue, dead), timeout=20)
    assert attempts == [1]
    assert decode_as(dead[0][1], VideoIngested).id == sent.id


async def test_undecodable_body_is_dead_lettered_not_lost(bus: Bus, queue: str) -> None:
    called: list[Event] = []

    async def handler(event: Event, delivery: Delivery) -> None:
        called.append(event)

    dead_before = dead_count(bus, queue)
    await bus.subscribe(queue, [VideoIngested], handler)
    garbage = b'{"type": "video.ingested.v1", "video_id": "not-a-uuid"'
    await bus.publish_raw(routing_key="video.ingested.v1", body=garbage, message_id=str(uuid.uuid4()))

    dead: list[tuple[str, bytes, object]] = []
    await wait_for(lambda: drain_dead(bus, queue, dead), timeout=20)
    assert dead[0][1] == garbage
    assert called == []
    await wait_for(lambda: dead_count(bus, queue) == dead_before + 1)
    assert retries(bus, queue) == 0  # a body that cannot decode is not worth retrying


async def test_exclusive_subscriptions_each_get_every_event(bus: Bus) -> None:
    replica_a: list[Event] = []
    replica_b: list[Event] = []

    async def to_a(event: Event, delivery: Delivery) -> None:
        replica_a.append(event)

    async def to_b(event: Event, delivery: Delivery) -> None:
        replica_b.append(event)

    await bus.subscribe(unique_name("ws"), [VideoIngested], to_a, exclusive=True)
    await bus.subscribe(unique_name("ws"), [VideoIngested], to_b, exclusive=True)
    sent = ingested()
    await bus.publish(sent)

    await wait_for(lambda: replica_a and replica_b)
    assert [e.id for e in replica_a] == [e.id for e in replica_b] == [sent.id]


async def test_exclusive_subscription_drops_and_counts_failures(bus: Bus) -> None:
    queue = unique_name("ws")
    attempts: list[int] = []

    async def broken(event: Event, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise RuntimeError("socket gone")

    dropped_before = metric("reelforge_bus_dead_lettered_total", service=bus.service, queue=queue)
    await bus.subscribe(queue, [VideoIngested], broken, exclusive=True)
    await bus.publish(ingested())

    await wait_for(
        lambda: (
            metric("reelforge_bus_dead_lettered_total", service=bus.service, queue=queue)
            == dropped_before + 1
        )
    )
    assert attempts == [1]  # no retries for a per-process queue
    assert await bus.dead_letters(queue) == []


async def test_a_routed_event_of_a_type_no_route_handles_is_dead_lettered_and_counted(
    bus: Bus, queue: str
) -> None:
    """One policy for an unknown event: e.g. a binding an older version left behind routes a type nobody handles."""
    ingested_seen: list[Event] = []
    router = Router()

    @router.on(VideoIngested, inbox=False)
    async def on_ingested(event: VideoIngested, delivery: Delivery) -> None:
        ingested_seen.append(event)

    dead_before = dead_count(bus, queue)
    await router.subscribe(bus, queue=queue)
    stray = VideoDeleted(video_id=uuid.uuid4(), owner_id=uuid.uuid4())
    await bus.publish_raw(routing_key="video.ingested.v1", body=encode(stray), message_id=str(stray.id))
    wanted = ingested()
    await bus.publish(wanted)

    dead: list[tuple[str, bytes, object]] = []
    await wait_for(lambda: drain_dead(bus, queue, dead), timeout=20)
    assert decode_as(dead[0][1], VideoDeleted) == stray
    await wait_for(lambda: ingested_seen)
    assert [e.id for e in ingested_seen] == [wanted.id]
    await wait_for(lambda: dead_count(bus, queue) == dead_before + 1)
    assert retries(bus, queue) == 0


async def test_a_router_binds_exactly_its_event_types_and_routes_each_to_its_handler(
    bus: Bus, queue: str
) -> None:
    got: list[tuple[str, uuid.UUID]] = []
    router = Router()

    @router.on(VideoIngested, inbox=False)
    async def on_ingested(event: VideoIngested, delivery: Delivery) -> None:
        got.append(("ingested", event.video_id))

    other = Router()

    @other.on(VideoDeleted, inbox=False)
    async def on_deleted(event: VideoDeleted, delivery: Delivery) -> None:
        got.append(("deleted", event.video_id))

    router.include(other)
    assert router.event_types == (VideoIngested, VideoDeleted)
    await router.subscribe(bus, queue=queue)
    first, second = ingested(), VideoDeleted(video_id=uuid.uuid4(), owner_id=uuid.uuid4())
    await bus.publish(first)
    await bus.publish(second)

    await wait_for(lambda: len(got) == 2)
    assert sorted(got) == sorted([("ingested", first.video_id), ("deleted", second.video_id)])
    assert await bus.dead_letters(queue) == []


async def test_a_subscription_needs_an_event_type(bus: Bus, queue: str) -> None:
    async def handler(event: Event, delivery: Delivery) -> None:
        return None

    with pytest.raises(ValueError, match="at least one event type"):
        await bus.subscribe(queue, [], handler)
