"""RabbitMQ-only bus behaviour: crash redelivery, confirms under load, quorum queues, outages, shutdown."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import aio_pika
import aiormq
import pytest
from prometheus_client import REGISTRY

from common.bus import Delivery
from common.bus.rabbit import PublishFailed, RabbitBus
from common.events import Event
from common.events.ingest import VideoDeleted, VideoIngested
from common.testing.bus import RabbitBusFactory, proxied_url, unique_name
from common.testing.netproxy import TcpProxy
from common.testing.waiting import PeakSampler, wait_for


def ingested() -> VideoIngested:
    return VideoIngested(
        video_id=uuid.uuid4(), owner_id=uuid.uuid4(), storage_key="originals/x/source.mp4", duration_s=3.0
    )


async def test_message_in_hand_when_consumer_dies_is_redelivered_to_the_next_one(
    amqp_proxy: TcpProxy, rabbit_bus_factory: RabbitBusFactory, amqp_url: str
) -> None:
    queue = unique_name("q")
    started = asyncio.Event()

    async def hangs(event: Event, delivery: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()

    doomed = await rabbit_bus_factory(url=proxied_url(amqp_url, amqp_proxy))
    await doomed.subscribe(queue, [VideoIngested], hangs)
    publisher = await rabbit_bus_factory()
    sent = ingested()
    await publisher.publish(sent)
    await asyncio.wait_for(started.wait(), timeout=15)

    # the process "dies" mid-handler: its connection drops without an ack and never comes back
    amqp_proxy.pause()
    assert amqp_proxy.cut() == 1

    got: list[tuple[Event, Delivery]] = []

    async def handler(event: Event, delivery: Delivery) -> None:
        got.append((event, delivery))

    successor = await rabbit_bus_factory()
    await successor.subscribe(queue, [VideoIngested], handler)
    await wait_for(lambda: got, timeout=20)
    event, delivery = got[0]
    assert event.id == sent.id
    assert delivery.redelivered is True
    assert delivery.attempt == 1  # a crash is not a handler failure: no retry was consumed
    # closing a bus whose broker is unreachable must not hang
    await asyncio.wait_for(doomed.close(), timeout=20)


async def test_concurrent_publishes_are_pipelined_confirmed_and_arrive_exactly_once(
    rabbit_bus_factory: RabbitBusFactory,
) -> None:
    # the deadline is generous: this is about confirms and duplicates, not speed on a loaded machine
    bus = await rabbit_bus_factory(prefetch=200, publish_timeout_s=60)
    queue = unique_name("q")
    seen: Counter[uuid.UUID] = Counter()
    sentinel: list[Event] = []

    async def handler(event: Event, delivery: Delivery) -> None:
        if isinstance(event, VideoDeleted):
            sentinel.append(event)
        else:
            seen[event.id] += 1

    await bus.subscribe(queue, [VideoIngested, VideoDeleted], handler)
    events = [ingested() for _ in range(1000)]
    published_before = (
        REGISTRY.get_sample_value(
            "reelforge_bus_published_total", {"service": bus.service, "type": "video.ingested.v1"}
        )
        or 0.0
    )

    # how many publishes wait for their confirm at once: > 1 means they are pipelined, not serialized
    assert bus._publish_channel is not None
    underlay: Any = await bus._publish_channel.get_underlay_channel()
    async with PeakSampler(lambda: len(underlay.confirmations)) as waiting:
        await asyncio.gather(*(bus.publish(e) for e in events))
    assert waiting.peak > 1
    assert (
        REGISTRY.get_sample_value(
            "reelforge_bus_published_total", {"service": bus.service, "type": "video.ingested.v1"}
        )
        == published_before + 1000
    )
    await wait_for(lambda: len(seen) == 1000, timeout=60)
    # anything duplicated would be queued before this later publish
    await bus.publish(VideoDeleted(video_id=uuid.uuid4(), owner_id=uuid.uuid4()))
    await wait_for(lambda: sentinel)
    assert set(seen) == {e.id for e in events}
    assert set(seen.values()) == {1}


async def test_work_queue_is_quorum_with_a_delivery_limit(
    rabbit_bus_factory: RabbitBusFactory, amqp_url: str
) -> None:
    queue = unique_name("q")
    consumer = await rabbit_bus_factory(delivery_limit=2)

    async def never(event: Event, delivery: Delivery) -> None:
        raise AssertionError("not consumed in this test")

    await consumer.subscribe(queue, [VideoIngested], never)
    await consumer.close()  # keeps the queue, stops consuming it

    expected: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-delivery-limit": 2,
        "x-dead-letter-exchange": consumer.dlx_name,
        "x-dead-letter-routing-key": queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    connection = await aio_pika.connect(amqp_url)
    try:
        # the broker refuses a re-declaration whose arguments differ from the queue's
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True, arguments=expected)
        for differing in ({"x-queue-type": "classic"}, {"x-delivery-limit": 3}):
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
                await channel.declare_queue(queue, durable=True, arguments={**expected, **differing})

        # a message that keeps coming back (a consumer crash loop) is dead-lettered after the limit
        publisher = await rabbit_bus_factory()
        sent = ingested()
        await publisher.publish(sent)
        channel = await connection.channel()
        work = await channel.declare_queue(queue, passive=True)
        deliveries = 0
        dead: list[tuple[str, bytes, Any]] = []

        async def bounce_until_dead() -> bool:
            nonlocal deliveries
            message = await work.get(fail=False)
            if message is not None:
                deliveries += 1
                await message.nack(requeue=True)
            dead.extend(await publisher.dead_letters(queue))
            return bool(dead)

        await wait_for(bounce_until_dead, timeout=20)
        assert deliveries == 3  # "more than 2 unsuccessful deliveries"
        assert dead[0][0] == "video.ingested.v1"
    finally:
        await connection.close()


async def test_publish_during_an_outage_fails_within_its_deadline_and_recovers(
    amqp_proxy: TcpProxy, rabbit_bus_factory: RabbitBusFactory, amqp_url: str
) -> None:
    queue = unique_name("q")
    got: list[uuid.UUID] = []

    async def handler(event: Event, delivery: Delivery) -> None:
        got.append(event.id)

    consumer = await rabbit_bus_factory()
    await consumer.subscribe(queue, [VideoIngested], handler)
    bus = await rabbit_bus_factory(url=proxied_url(amqp_url, amqp_proxy), publish_timeout_s=0.5)
    before = ingested()
    await bus.publish(before)

    amqp_proxy.pause()
    amqp_proxy.cut()
    lost = ingested()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(PublishFailed):
        await bus.publish(lost)
    assert loop.time() - t0 < 3.0
    with pytest.raises(ConnectionError):
        await bus.ping()

    amqp_proxy.resume()
    after = ingested()

    async def published() -> bool:
        try:
            await bus.publish(after)
        except PublishFailed:
            return False
        return True

    await wait_for(published, timeout=20)
    await bus.ping()
    await wait_for(lambda: after.id in got, timeout=15)
    # the failed publish was reported to the caller, and only the confirmed ones arrived
    assert got == [before.id, after.id]


async def test_close_waits_for_handlers_and_abandons_stuck_ones_to_redelivery(
    rabbit_bus_factory: RabbitBusFactory,
) -> None:
    queue = unique_name("q")
    finished: list[uuid.UUID] = []
    stuck_started = asyncio.Event()
    quick, stuck = ingested(), ingested()

    async def handler(event: Event, delivery: Delivery) -> None:
        if event.id == stuck.id:
            stuck_started.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0.3)
        finished.append(event.id)

    bus = await rabbit_bus_factory(close_timeout_s=1.0)
    await bus.subscribe(queue, [VideoIngested], handler)
    await bus.publish(quick)
    await bus.publish(stuck)
    await asyncio.wait_for(stuck_started.wait(), timeout=15)

    await asyncio.wait_for(bus.close(), timeout=15)
    assert finished == [quick.id]  # close waited for the handler in progress

    again: list[tuple[uuid.UUID, bool]] = []
    sentinel: list[Event] = []

    async def successor(event: Event, delivery: Delivery) -> None:
        if isinstance(event, VideoDeleted):
            sentinel.append(event)
        else:
            again.append((event.id, delivery.redelivered))

    next_bus: RabbitBus = await rabbit_bus_factory()
    await next_bus.subscribe(queue, [VideoIngested, VideoDeleted], successor)
    # the old connection is closed, so whatever it returned is queued ahead of this
    await next_bus.publish(VideoDeleted(video_id=uuid.uuid4(), owner_id=uuid.uuid4()))
    await wait_for(lambda: sentinel, timeout=15)
    assert again == [(stuck.id, True)]  # the finished one was acked, the abandoned one comes back


async def test_failed_handler_is_not_lost_when_its_retry_copy_cannot_be_stored(
    rabbit_bus_factory: RabbitBusFactory, amqp_url: str
) -> None:
    queue = unique_name("q")
    calls: list[tuple[int, bool]] = []

    async def fails_once(event: Event, delivery: Delivery) -> None:
        calls.append((delivery.attempt, delivery.redelivered))
        if len(calls) == 1:
            raise RuntimeError("transient")

    bus = await rabbit_bus_factory()
    await bus.subscribe(queue, [VideoIngested], fails_once)
    # an operator deleted the first retry tier: the retry copy is unroutable
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.queue_delete(f"{queue}.retry.{bus.retry_delays_ms[0]}")
    finally:
        await connection.close()

    await bus.publish(ingested())
    await wait_for(lambda: len(calls) == 2, timeout=15)
    # the original was requeued rather than acked: same attempt, flagged as redelivered
    assert calls == [(1, False), (1, True)]
