"""The RabbitMQ bus: confirmed publishes, quorum queues, delayed retries through TTL queues, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustExchange,
    AbstractRobustQueue,
    DeliveryMode,
    ExchangeType,
)
from aio_pika.channel import Channel

from ..logging import bound_contextvars, get_logger
from ..metrics import BUS_HANDLED, BUS_HANDLER_LATENCY, BUS_PUBLISHED, BUS_QUEUE_LAG
from .base import (
    Bus,
    Delivery,
    EventTypes,
    Handler,
    Subscription,
    Undecodable,
    give_up_reason,
    read_event,
    record_give_up,
)

if TYPE_CHECKING:
    from ..settings import ServiceSettings

__all__ = ["PublishFailed", "RabbitBus"]

log = get_logger(__name__)

#: set by the broker; a retried copy is a new message and must not inherit them
_BROKER_HEADERS = frozenset(
    {
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
_MAX_ERROR_HEADER = 500
#: a publish that hit a dropped channel is retried (until the deadline) once the robust channel is back
_TRANSIENT = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.AMQPChannelError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
)


class PublishFailed(ConnectionError):
    """The broker did not confirm a publish in time (connection down, nack, or unroutable)."""


@dataclass(eq=False)
class _Subscription(Subscription):
    channel: AbstractRobustChannel
    amqp_queue: AbstractRobustQueue | None = None
    consumer_tag: str | None = None


class RabbitBus(Bus):
    """One robust connection: a confirming publish channel, and one channel per subscription.

    Durable subscriptions consume a quorum queue. A failed handler's message is copied (``x-attempt`` + 1)
    to ``<queue>.retry.<ms>``, whose TTL dead-letters it back to ``<queue>``; after ``max_retries`` retries,
    on ``PermanentError`` or an undecodable body it is rejected into ``<queue>.dead`` through the DLX.
    The quorum queue's delivery limit catches messages that crash their consumer before any ack.
    """

    def __init__(
        self,
        *,
        url: str = "amqp://guest:guest@127.0.0.1:5672/",
        service: str = "reelforge",
        exchange: str = "reelforge.events",
        dlx: str = "reelforge.dlx",
        prefetch: int = 16,
        max_retries: int = 5,
        retry_delays_ms: Sequence[int | str] = (1000, 5000, 30000),
        delivery_limit: int = 20,
        publish_timeout_s: float = 10.0,
        close_timeout_s: float = 30.0,
        reconnect_interval_s: float = 2.0,
    ) -> None:
        delays = tuple(int(ms) for ms in retry_delays_ms)
        if not delays or min(delays) <= 0:
            raise ValueError(f"retry_delays_ms must be positive milliseconds, got {retry_delays_ms!r}")
        if max_retries < 0 or delivery_limit < 1 or prefetch < 1:
            raise ValueError("max_retries >= 0, delivery_limit >= 1 and prefetch >= 1 are required")
        self.url, self.service = url, service
        self.exchange_name, self.dlx_name = exchange, dlx
        self.prefetch, self.max_retries, self.retry_delays_ms = prefetch, max_retries, delays
        self.delivery_limit = delivery_limit
        self.publish_timeout_s, self.close_timeout_s = publish_timeout_s, close_timeout_s
        self.reconnect_interval_s = reconnect_interval_s
        self._connection: aio_pika.RobustConnection | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._subs: list[_Subscription] = []
        self._declared: dict[str, None] = {}  # insertion-ordered set; outlives close() for test teardown
        self._inflight: set[asyncio.Task[Any]] = set()
        self._closing = False

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> RabbitBus:
        """A bus configured from a service's settings."""
        return cls(
            url=settings.amqp_url,
            service=settings.service,
            exchange=settings.bus_exchange,
            dlx=settings.bus_dlx,
            prefetch=settings.bus_prefetch,
            max_retries=settings.bus_max_retries,
            retry_delays_ms=settings.bus_retry_delays_ms,
            delivery_limit=settings.bus_delivery_limit,
            close_timeout_s=settings.shutdown_timeout_s,
        )

    @property
    def declared_queues(self) -> list[str]:
        """Durable queues this bus has declared (work, retry and dead queues), for ops tooling and tests."""
        return list(self._declared)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and declare the events exchange (topic) and the dead-letter exchange (direct)."""
        if self._connection is not None:
            return
        self._closing = False
        connection = await aio_pika.connect_robust(
            self.url,
            reconnect_interval=self.reconnect_interval_s,
            client_properties={"connection_name": f"reelforge-{self.service}"},
        )
        try:
            # publisher confirms are on by default: publish() returns after the broker's ack
            channel = await connection.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange(
                self.exchange_name, ExchangeType.TOPIC, durable=True
            )
            await channel.declare_exchange(self.dlx_name, ExchangeType.DIRECT, durable=True)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._publish_channel = connection, channel
        log.info("bus.connected", exchange=self.exchange_name)

    async def close(self) -> None:
        """Cancel consumers, let in-flight handlers finish (bounded), then close; unfinished ones are redelivered."""
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        # offline, the cancel cannot reach the broker, but it still stops the consumer from being restored
        cancel_timeout = 5.0 if connection.connected.is_set() else 0.1
        for sub in self._subs:
            if sub.amqp_queue is not None and sub.consumer_tag is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sub.amqp_queue.cancel(sub.consumer_tag), timeout=cancel_timeout)
        pending = set(self._inflight)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.close_timeout_s)
        if pending:
            # closing the channels cancels them; without an ack the broker hands the messages out again
            log.warning("bus.close_abandoned_handlers", count=len(pending))
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sub.channel.close(), timeout=5)
        if self._publish_channel is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._publish_channel.close(), timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), timeout=5)
        self._connection, self._publish_channel, self._exchange = None, None, None
        self._subs.clear()

    async def ping(self) -> None:
        """Raise unless the broker answers: opens and closes a channel."""
        connection = self._require_connection()
        if not connection.connected.is_set():
            raise ConnectionError("bus is reconnecting to the broker")
        async with asyncio.timeout(5), self._temp_channel():
            pass

    # -- publishing --------------------------------------------------------------------------------------

    async def publish_raw(
        self, *, routing_key: str, body: bytes, message_id: str, headers: Mapping[str, Any] | None = None
    ) -> None:
        """Publish persistent bytes to the events exchange; return after the broker's confirm, else raise."""
        self._require_connection()
        assert self._exchange is not None
        message = aio_pika.Message(
            body,
            headers=dict(headers or {}),
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message_id,
            # the AMQP type survives retries and dead-lettering, which rewrite the routing key
            type=routing_key,
            app_id=self.service,
            timestamp=datetime.now(UTC),
        )
        # not mandatory: an event nobody subscribes to yet is not an error
        await self._publish(self._exchange, message, routing_key, mandatory=False)
        BUS_PUBLISHED.labels(self.service, routing_key).inc()

    async def _publish(
        self, exchange: AbstractExchange, message: aio_pika.Message, routing_key: str, *, mandatory: bool
    ) -> None:
        channel = self._publish_channel
        assert channel is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout_s
        last: BaseException | None = None
        while (remaining := deadline - loop.time()) > 0:
            try:
                if channel.is_closed:
                    # the robust connection is restoring the channel: wait for it, within the deadline
                    await asyncio.wait_for(channel.ready(), timeout=remaining)
                result = await exchange.publish(
                    message, routing_key=routing_key, mandatory=mandatory, timeout=deadline - loop.time()
                )
            except TimeoutError as exc:
                last = exc
                break
            except aiormq.exceptions.DeliveryError as exc:
                raise PublishFailed(f"broker refused {message.message_id} ({routing_key})") from exc
            except _TRANSIENT as exc:
                # a lost confirm may mean the broker has it: re-publishing is at-least-once, consumers dedupe
                last = exc
                await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))
                continue
            if mandatory and not isinstance(result, aiormq.spec.Basic.Ack):
                raise PublishFailed(f"{message.message_id} was unroutable to {routing_key!r}")
            return
        raise PublishFailed(
            f"publish of {message.message_id} ({routing_key}) not confirmed within {self.publish_timeout_s}s"
        ) from last

    # -- consuming ---------------------------------------------------------------------------------------

    async def _open_subscription(
        self, queue: str, types: EventTypes, handler: Handler, *, exclusive: bool, prefetch: int | None
    ) -> None:
        """Declare ``queue`` (with its retry and dead queues unless exclusive), bind the types, consume."""
        connection = self._require_connection()
        if queue and any(s.queue == queue for s in self._subs):
            # two consumers with different types on one queue would dead-letter each other's events
            raise ValueError(f"queue {queue!r} is already subscribed on this bus")
        channel = await connection.channel(publisher_confirms=False)
        sub = _Subscription(queue, types, handler, exclusive, channel)
        try:
            await channel.set_qos(prefetch_count=prefetch or self.prefetch)
            amqp_queue = await (self._declare_exclusive(sub) if exclusive else self._declare_durable(sub))
            for cls in types:
                await amqp_queue.bind(self.exchange_name, routing_key=cls.event_type())
            sub.amqp_queue, sub.queue = amqp_queue, amqp_queue.name
            sub.consumer_tag = await amqp_queue.consume(partial(self._on_message, sub))
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._subs.append(sub)
        log.info(
            "bus.subscribed", queue=sub.queue, types=[c.event_type() for c in types], exclusive=exclusive
        )

    async def _declare_durable(self, sub: _Subscription) -> AbstractRobustQueue:
        name = sub.queue
        if not name:
            raise ValueError("a durable subscription needs a queue name")
        dead = await sub.channel.declare_queue(
            f"{name}.dead", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead.bind(self.dlx_name, routing_key=name)
        self._declared[dead.name] = None
        for ms in self.retry_delays_ms:
            retry = await sub.channel.declare_queue(
                f"{name}.retry.{ms}",
                durable=True,
                # expiry sends the copy through the default exchange straight back to the work queue
                arguments={
                    "x-message-ttl": ms,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": name,
                },
            )
            self._declared[retry.name] = None
        queue = await sub.channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": self.dlx_name,
                "x-dead-letter-routing-key": name,
                # the queue keeps a rejected message until <queue>.dead confirms it (needs reject-publish)
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        self._declared[queue.name] = None
        return queue

    async def _declare_exclusive(self, sub: _Subscription) -> AbstractRobustQueue:
        # no name: aio-pika names it client-side, so the robust channel can re-declare it after a reconnect
        return await sub.channel.declare_queue(sub.queue or None, exclusive=True, auto_delete=True)

    async def _on_message(self, sub: _Subscription, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._handle(sub, message)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _handle(self, sub: _Subscription, message: AbstractIncomingMessage) -> None:
        headers = dict(message.headers or {})
        attempt = _as_int(headers.get("x-attempt"), default=1)
        routing_key = message.type or message.routing_key or ""
        with bound_contextvars(event_id=message.message_id, event_type=routing_key, queue=sub.queue):
            try:
                event = read_event(message.body, sub.types)
            except Undecodable as exc:
                # keep it for a human, never lose it
                await self._give_up(sub, message, routing_key, exc, reason=exc.reason)
                return
            correlation_id = event.correlation_id or message.correlation_id or ""
            delivery = Delivery(
                routing_key=routing_key,
                attempt=attempt,
                redelivered=bool(message.redelivered),
                headers={**headers, "x-attempt": attempt},
            )
            with bound_contextvars(correlation_id=correlation_id, event_id=str(event.id)):
                loop = asyncio.get_running_loop()
                started = loop.time()
                error: Exception | None = None
                try:
                    await sub.handler(event, delivery)
                except asyncio.CancelledError:
                    # shutdown or a dropped connection: no ack, so the broker redelivers it
                    raise
                except Exception as exc:
                    error = exc
                finally:
                    BUS_HANDLER_LATENCY.labels(self.service, sub.queue, routing_key).observe(
                        loop.time() - started
                    )
                if error is None:
                    if await _settle(message.ack()):
                        BUS_HANDLED.labels(self.service, sub.queue, routing_key, "ok").inc()
                elif reason := give_up_reason(sub, error, attempt=attempt, max_retries=self.max_retries):
                    await self._give_up(sub, message, routing_key, error, reason=reason)
                else:
                    await self._retry(sub, message, routing_key, attempt, error)

    async def _retry(
        self,
        sub: _Subscription,
        message: AbstractIncomingMessage,
        routing_key: str,
        attempt: int,
        exc: Exception,
    ) -> None:
        delay = self.retry_delays_ms[min(attempt, len(self.retry_delays_ms)) - 1]
        headers = {k: v for k, v in (message.headers or {}).items() if k not in _BROKER_HEADERS}
        headers["x-attempt"] = attempt + 1
        headers["x-last-error"] = repr(exc)[:_MAX_ERROR_HEADER]
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type or "application/json",
            content_encoding=message.content_encoding,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=routing_key,
            app_id=message.app_id,
            timestamp=message.timestamp,
        )
        retry_queue = f"{sub.queue}.retry.{delay}"
        assert self._publish_channel is not None
        try:
            # mandatory: a missing retry queue must not swallow the copy
            await self._publish(self._publish_channel.default_exchange, copy, retry_queue, mandatory=True)
        except Exception as publish_exc:
            # the copy is not safe, so keep the original: requeued now, bounded by the delivery limit
            log.warning("bus.retry_publish_failed", error=repr(publish_exc), handler_error=repr(exc))
            await _settle(message.reject(requeue=True))
            return
        if await _settle(message.ack()):
            BUS_HANDLED.labels(self.service, sub.queue, routing_key, "retry").inc()
            log.warning("bus.retry_scheduled", attempt=attempt, delay_ms=delay, error=repr(exc))

    async def _give_up(
        self,
        sub: _Subscription,
        message: AbstractIncomingMessage,
        routing_key: str,
        exc: Exception,
        *,
        reason: str,
    ) -> None:
        # durable queues dead-letter a rejected message to <queue>.dead; exclusive ones have no DLX and drop it
        if not await _settle(message.reject(requeue=False)):
            return
        attempt = _as_int((message.headers or {}).get("x-attempt"), default=1)
        record_give_up(
            sub, service=self.service, routing_key=routing_key, exc=exc, reason=reason, attempt=attempt
        )

    # -- operations ----------------------------------------------------------------------------------------

    async def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (0 when it does not exist); also exported as a gauge."""
        async with self._temp_channel() as channel:
            try:
                declared = await channel.declare_queue(queue, passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                return 0
            count = int(declared.declaration_result.message_count or 0)
        BUS_QUEUE_LAG.labels(self.service, queue).set(count)
        return count

    async def dead_letters(self, queue: str) -> list[tuple[str, bytes, Mapping[str, Any]]]:
        """Drain ``<queue>.dead``: ``(event type, body, headers)`` of each message, in order."""
        out: list[tuple[str, bytes, Mapping[str, Any]]] = []
        async with self._temp_channel() as channel:
            try:
                dead: AbstractQueue = await channel.declare_queue(f"{queue}.dead", passive=True)
            except aiormq.exceptions.ChannelNotFoundEntity:
                return out
            while (message := await dead.get(no_ack=False, fail=False)) is not None:
                headers = dict(message.headers or {})
                out.append((_original_routing_key(message, headers), message.body, headers))
                await message.ack()
        return out

    # -- helpers ---------------------------------------------------------------------------------------------

    def _require_connection(self) -> aio_pika.RobustConnection:
        if self._connection is None:
            raise ConnectionError(
                "bus is closed" if self._closing else "bus not started: await bus.start() first"
            )
        return self._connection

    @contextlib.asynccontextmanager
    async def _temp_channel(self) -> AsyncIterator[Channel]:
        # a plain (not robust) channel: a failed passive declare closes it, and it must not be restored
        channel = Channel(self._require_connection(), publisher_confirms=False)
        await channel.initialize()
        try:
            yield channel
        finally:
            if not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()


async def _settle(action: Awaitable[None]) -> bool:
    """Ack/reject; False when the channel is gone (the broker will redeliver, so only log it)."""
    try:
        await action
    except Exception as exc:
        log.warning("bus.settle_failed", error=repr(exc))
        return False
    return True


def _as_int(value: Any, *, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _original_routing_key(message: AbstractIncomingMessage, headers: Mapping[str, Any]) -> str:
    if message.type:
        return message.type
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], Mapping):
        keys = deaths[-1].get("routing-keys")
        if isinstance(keys, list) and keys:
            return str(keys[0])
    return message.routing_key or ""
