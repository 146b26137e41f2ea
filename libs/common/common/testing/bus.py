"""Bus fixtures: an in-memory bus, RabbitMQ buses on private exchanges, and a fault-injecting proxy to RabbitMQ.

The RabbitMQ server is shared with other suites running at the same time, so every exchange and queue name
carries a uuid and everything a test declared is deleted at teardown.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aio_pika
import pytest

from ..bus.memory import MemoryBus
from ..bus.rabbit import RabbitBus
from .netproxy import TcpProxy

__all__ = [
    "RabbitBusFactory",
    "amqp_proxy",
    "amqp_url",
    "delete_queues",
    "memory_bus",
    "proxied_url",
    "rabbit_bus",
    "rabbit_bus_factory",
    "service_queues",
    "unique_name",
]

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

#: fast enough for tests, still exercising every retry tier
TEST_BUS_OPTIONS: dict[str, Any] = {
    "max_retries": 3,
    "retry_delays_ms": ("50", "200"),
    "publish_timeout_s": 5.0,
    "close_timeout_s": 5.0,
    "reconnect_interval_s": 0.2,
}


def unique_name(prefix: str = "t") -> str:
    """A name no concurrent test run will use, e.g. ``t-3f2a9c0e1b7d``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def proxied_url(amqp_url: str, proxy: TcpProxy) -> str:
    """``amqp_url`` pointed at ``proxy`` instead of the broker."""
    return proxy.url_via(amqp_url)


def service_queues(queue: str, retry_delays_ms: Iterable[str | int]) -> list[str]:
    """The queues a durable subscription declares: ``queue``, ``<queue>.dead`` and one ``<queue>.retry.<ms>`` a delay."""
    return [queue, f"{queue}.dead", *(f"{queue}.retry.{ms}" for ms in retry_delays_ms)]


async def delete_queues(amqp_url: str, names: Iterable[str]) -> None:
    """Delete the queues that exist among ``names`` (ones a service process declared, which no factory knows)."""
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in names:
            # a failed delete closes its channel, so each name gets its own
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(name)
                await channel.close()
    finally:
        await connection.close()


class RabbitBusFactory:
    """Makes started ``RabbitBus`` instances that share one private exchange pair; ``cleanup()`` removes it all."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        tag = uuid.uuid4().hex[:12]
        self.exchange = f"test.{tag}.events"
        self.dlx = f"test.{tag}.dlx"
        self.buses: list[RabbitBus] = []

    async def __call__(self, *, url: str | None = None, start: bool = True, **options: Any) -> RabbitBus:
        """A new bus on this factory's exchanges; ``options`` override the test defaults."""
        bus = RabbitBus(
            url=url or self.amqp_url,
            exchange=self.exchange,
            dlx=self.dlx,
            **{"service": unique_name("svc"), **TEST_BUS_OPTIONS, **options},
        )
        self.buses.append(bus)
        if start:
            await bus.start()
        return bus

    async def cleanup(self) -> None:
        """Close every bus, then delete the queues they declared and the two exchanges."""
        if not self.buses:
            return  # nothing was declared on the broker
        for bus in self.buses:
            await bus.close()
        queues = {name for bus in self.buses for name in bus.declared_queues}
        connection = await aio_pika.connect(self.amqp_url)
        try:
            channel = await connection.channel()
            for name in sorted(queues):
                await channel.queue_delete(name)
            for name in (self.exchange, self.dlx):
                await channel.exchange_delete(name)
        finally:
            await connection.close()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The broker tests use (``AMQP_URL`` or the local RabbitMQ)."""
    return os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)


@pytest.fixture
async def memory_bus() -> AsyncIterator[MemoryBus]:
    """A started in-memory bus with fast retries."""
    bus = MemoryBus(
        service=unique_name("svc"), max_retries=TEST_BUS_OPTIONS["max_retries"], retry_delay_s=0.01
    )
    await bus.start()
    yield bus
    await bus.close()


@pytest.fixture
async def rabbit_bus_factory(amqp_url: str) -> AsyncIterator[RabbitBusFactory]:
    """Make several RabbitMQ buses on one private exchange; all are closed and their topology deleted after."""
    factory = RabbitBusFactory(amqp_url)
    yield factory
    await factory.cleanup()


@pytest.fixture
async def rabbit_bus(rabbit_bus_factory: RabbitBusFactory) -> RabbitBus:
    """A started RabbitMQ bus on a private exchange, with fast retries."""
    return await rabbit_bus_factory()


@pytest.fixture
async def amqp_proxy(amqp_url: str) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of the broker; connect with ``proxied_url(amqp_url, amqp_proxy)``."""
    async with TcpProxy.in_front_of(amqp_url, default_port=5672) as proxy:
        yield proxy
