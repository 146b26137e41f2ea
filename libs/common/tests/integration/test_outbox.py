"""Outbox → RabbitMQ → inbox against the real Postgres and RabbitMQ: at-least-once delivery, exactly-once effects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from common import db, outbox
from common.bus import Bus, Delivery
from common.events import Event
from common.events.ingest import VideoIngested
from common.inbox import idempotent
from common.outbox import OutboxRelay
from common.testing.bus import RabbitBusFactory, proxied_url, unique_name
from common.testing.netproxy import TcpProxy
from common.testing.waiting import wait_for

SchemaFactory = Callable[..., Awaitable[str]]
CONSUMER = "test-consumer"


def ingested() -> VideoIngested:
    return VideoIngested(
        video_id=uuid.uuid4(), owner_id=uuid.uuid4(), storage_key="originals/x/source.mp4", duration_s=1.0
    )


class Effects:
    """A consumer whose effect is a row per handled event, deduplicated only by the inbox."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.deliveries = 0  # handler invocations that reached the database, duplicates included

    async def create_table(self) -> None:
        async with self.pool.acquire() as conn:
            # deliberately no unique key: a duplicate effect must be visible, not absorbed
            await conn.execute("CREATE TABLE effects (event_id uuid NOT NULL, video_id uuid NOT NULL)")

    async def apply(self, conn: asyncpg.Connection, event: Event, delivery: Delivery) -> None:
        assert isinstance(event, VideoIngested)
        await conn.execute(
            "INSERT INTO effects (event_id, video_id) VALUES ($1, $2)", event.id, event.video_id
        )

    def handler(self) -> Any:
        inner = idempotent(self.pool, CONSUMER, self.apply)

        async def counting(event: Event, delivery: Delivery) -> None:
            self.deliveries += 1
            await inner(event, delivery)

        return counting

    async def count(self) -> int:
        return await _count(self.pool, "SELECT count(*) FROM effects")

    async def count_is(self, n: int) -> bool:
        return await self.count() == n

    async def count_at_least(self, n: int) -> bool:
        return await self.count() >= n

    async def per_event(self) -> dict[uuid.UUID, int]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT event_id, count(*) AS n FROM effects GROUP BY event_id")
        return {r["event_id"]: r["n"] for r in rows}


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    """The number ``sql`` (a ``SELECT count(*)``) answers."""
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql))


@dataclass
class Producer:
    """A service schema with the outbox (the producer's side)."""

    pool: asyncpg.Pool
    schema: str
    service: str = field(default_factory=lambda: unique_name("producer"))

    def relay(self, bus: Bus, **options: Any) -> OutboxRelay:
        return OutboxRelay(
            self.pool,
            bus,
            schema=self.schema,
            service=self.service,
            poll_interval_s=0.1,
            retry_delay_s=0.05,
            **options,
        )

    def relay_errors(self) -> float:
        return (
            REGISTRY.get_sample_value(
                "reelforge_errors_total", {"service": self.service, "where": "outbox_relay"}
            )
            or 0.0
        )

    async def write(self, events: list[VideoIngested]) -> None:
        """One business transaction that emits ``events`` through the outbox."""
        async with self.pool.acquire() as conn, conn.transaction():
            for event in events:
                await outbox.add(conn, event)

    async def unpublished(self) -> int:
        return await _count(self.pool, "SELECT count(*) FROM outbox WHERE published_at IS NULL")

    async def unpublished_is(self, n: int) -> bool:
        return await self.unpublished() == n

    async def rows(self) -> int:
        return await _count(self.pool, "SELECT count(*) FROM outbox")


@pytest.fixture
async def producer(make_schema: SchemaFactory, database_url: str) -> AsyncIterator[Producer]:
    schema = await make_schema("ob")
    pool = await db.create_pool(database_url, schema=schema, min_size=1, max_size=4)
    yield Producer(pool, schema)
    await pool.close()


@pytest.fixture
async def effects(make_schema: SchemaFactory, database_url: str) -> AsyncIterator[Effects]:
    """Another service schema with the inbox and an effects table (the consumer's side)."""
    pool = await db.create_pool(database_url, schema=await make_schema("ib"), min_size=1, max_size=8)
    consumer = Effects(pool)
    await consumer.create_table()
    yield consumer
    await pool.close()


async def test_committed_events_are_published_and_take_effect_once(
    producer: Producer, effects: Effects, rabbit_bus_factory: RabbitBusFactory
) -> None:
    bus = await rabbit_bus_factory()
    await bus.subscribe(unique_name("q"), [VideoIngested], effects.handler())
    events = [ingested() for _ in range(3)]
    await producer.write(events)

    relay = producer.relay(bus)
    await relay.start()
    try:
        await wait_for(lambda: effects.count_is(3), timeout=20)
        await wait_for(lambda: producer.unpublished_is(0))
    finally:
        await relay.stop()
    assert await relay.publish_pending() == 0  # every row is marked published

    # a relay that crashed between the confirm and the mark publishes again: the inbox absorbs it
    await bus.publish(events[0])
    await wait_for(lambda: effects.deliveries == 4)
    assert await effects.per_event() == {e.id: 1 for e in events}


async def test_rolled_back_transaction_publishes_nothing(
    producer: Producer, effects: Effects, rabbit_bus_factory: RabbitBusFactory
) -> None:
    bus = await rabbit_bus_factory()
    await bus.subscribe(unique_name("q"), [VideoIngested], effects.handler())
    doomed = ingested()
    with pytest.raises(RuntimeError, match="business rule"):
        async with producer.pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, doomed)
            raise RuntimeError("business rule violated after the event was written")
    kept = ingested()
    await producer.write([kept])

    relay = producer.relay(bus)
    await relay.start()
    try:
        await wait_for(lambda: effects.deliveries >= 1, timeout=20)
        await wait_for(lambda: producer.unpublished_is(0))
    finally:
        await relay.stop()
    assert await producer.rows() == 1
    assert await effects.per_event() == {kept.id: 1}
    assert effects.deliveries == 1


async def test_outbox_to_inbox_is_exactly_once_in_effect_across_connection_cuts(
    amqp_proxy: TcpProxy,
    rabbit_bus_factory: RabbitBusFactory,
    amqp_url: str,
    producer: Producer,
    effects: Effects,
) -> None:
    """500 events through the outbox while both buses lose the broker: once briefly, once for a while."""
    url = proxied_url(amqp_url, amqp_proxy)
    consumer_bus = await rabbit_bus_factory(url=url, prefetch=32)
    await consumer_bus.subscribe(unique_name("q"), [VideoIngested], effects.handler())
    # a publish deadline the outage will outlast, so the relay itself has to retry; not shorter, because a
    # deadline below the broker's confirm latency (under load) makes the relay re-publish forever
    relay_bus = await rabbit_bus_factory(url=url, publish_timeout_s=2.0)
    relay = producer.relay(relay_bus, batch_size=50)
    events = [ingested() for _ in range(500)]
    streamed, during_outage = events[:400], events[400:]

    async def business() -> None:
        for i in range(0, len(streamed), 10):
            await producer.write(streamed[i : i + 10])
            await asyncio.sleep(0.005)  # pacing: keep committing while the connections are cut

    await relay.start()
    writer = asyncio.create_task(business())
    cut_connections: list[int] = []
    try:
        # a blip: every connection drops mid-stream and reconnects at once
        await wait_for(lambda: effects.count_at_least(120), timeout=60)
        cut_connections.append(amqp_proxy.cut())

        # an outage: connections drop and cannot come back, while the business keeps committing
        await wait_for(lambda: effects.count_at_least(300), timeout=60)
        amqp_proxy.pause()
        cut_connections.append(amqp_proxy.cut())
        errors_before = producer.relay_errors()
        await producer.write(during_outage)
        await wait_for(lambda: producer.relay_errors() > errors_before, timeout=20)
        assert await producer.unpublished() > 0  # the relay kept the rows it could not publish
        amqp_proxy.resume()

        await writer
        await wait_for(lambda: effects.count_at_least(500), timeout=60)
        await wait_for(lambda: producer.unpublished_is(0), timeout=30)
    finally:
        amqp_proxy.resume()
        writer.cancel()
        await relay.stop()

    assert cut_connections == [2, 2]  # the relay's and the consumer's connections, each time
    assert amqp_proxy.accepted >= 6  # both reconnected after each cut
    per_event = await effects.per_event()
    assert set(per_event) == {e.id for e in events}
    assert set(per_event.values()) == {1}  # redeliveries happened (at-least-once); effects did not repeat
