"""The message bus port: publish events with confirms, subscribe a service queue with retries and dead-letters."""

from __future__ import annotations

import abc
import fnmatch
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..events.base import Event, decode
from ..logging import get_logger
from ..metrics import BUS_DEAD_LETTERED, BUS_HANDLED

log = get_logger(__name__)


@dataclass(frozen=True)
class Delivery:
    """Facts about one delivery of an event to a handler."""

    routing_key: str
    attempt: int = 1  # 1 on first delivery, +1 per retry
    redelivered: bool = False
    headers: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[Event, Delivery], Awaitable[None]]
EventTypes = tuple[type[Event], ...]


@dataclass(eq=False)
class Subscription:
    """A queue bound to event types and consumed by a handler; each bus keeps its own state beside these."""

    queue: str
    types: EventTypes
    handler: Handler
    exclusive: bool


class PermanentError(Exception):
    """A handler error that retrying cannot fix: the message goes straight to the dead-letter queue."""


class Undecodable(PermanentError):
    """A body that is not one of the queue's event types; ``reason``: ``undecodable`` or ``unknown_type``."""

    def __init__(self, reason: str, error: Exception) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason


class Bus(abc.ABC):
    """One topic exchange; routing key = event type. Implementations: RabbitMQ and in-memory."""

    service: str

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and declare the exchange topology."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop consumers (in-flight handlers finish or are requeued) and disconnect."""

    @abc.abstractmethod
    async def publish_raw(
        self, *, routing_key: str, body: bytes, message_id: str, headers: Mapping[str, Any] | None = None
    ) -> None:
        """Publish bytes and return only once the broker confirmed them."""

    async def publish(self, event: Event, *, headers: Mapping[str, Any] | None = None) -> None:
        """Publish an event with confirms (prefer the outbox for state changes)."""
        from ..events.base import encode

        await self.publish_raw(
            routing_key=event.type, body=encode(event), message_id=str(event.id), headers=headers
        )

    async def subscribe(
        self,
        queue: str,
        event_types: Sequence[type[Event]],
        handler: Handler,
        *,
        exclusive: bool = False,
        prefetch: int | None = None,
    ) -> None:
        """Bind ``queue`` to the types' routing keys and consume it.

        Durable queues (the default) retry a failing handler with back-off, then dead-letter the message to
        ``<queue>.dead``. ``exclusive`` queues belong to one process (e.g. a gateway replica's fan-out) and go
        away with it; their failed messages are dropped and counted.
        """
        types = tuple(event_types)
        if not types:
            raise ValueError("subscribe needs at least one event type")
        await self._open_subscription(queue, types, handler, exclusive=exclusive, prefetch=prefetch)

    @abc.abstractmethod
    async def _open_subscription(
        self, queue: str, types: EventTypes, handler: Handler, *, exclusive: bool, prefetch: int | None
    ) -> None:
        """Declare, bind and consume one subscription (``types`` is never empty)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise unless the broker is reachable."""

    @abc.abstractmethod
    async def dead_letters(self, queue: str) -> list[tuple[str, bytes, Mapping[str, Any]]]:
        """Drain and return ``(routing_key, body, headers)`` of the messages in ``<queue>.dead`` (ops, tests)."""

    @abc.abstractmethod
    async def queue_depth(self, queue: str) -> int:
        """Messages ready in a queue (for lag metrics and autoscaling)."""


class _Tagged(msgspec.Struct):
    type: str = ""


_tag_decoder = msgspec.json.Decoder(_Tagged)


def undecodable_reason(body: bytes, types: Sequence[type[Event]]) -> str:
    """Why a body did not decode as one of ``types``: ``unknown_type`` (a well-formed event of a type the queue
    does not handle, e.g. through a binding left by an older version) or ``undecodable``."""
    try:
        tag = _tag_decoder.decode(body).type
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "undecodable"
    return "unknown_type" if tag and tag not in {t.event_type() for t in types} else "undecodable"


def read_event(body: bytes, types: EventTypes) -> Event:
    """``body`` as one of ``types``; ``Undecodable`` when it is not (retrying cannot fix a body we cannot read)."""
    try:
        return decode(body, types)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Undecodable(undecodable_reason(body, types), exc) from exc


def give_up_reason(sub: Subscription, error: Exception, *, attempt: int, max_retries: int) -> str | None:
    """Why a message whose handling raised ``error`` is given up, or None: retry it (both buses' one policy).

    ``undecodable``/``unknown_type`` (``Undecodable``) and ``permanent`` (any other ``PermanentError``) at once;
    ``retries_exhausted`` after ``max_retries`` retries, or at the first failure on an exclusive queue (no retries).
    """
    if isinstance(error, Undecodable):
        return error.reason
    if isinstance(error, PermanentError):
        return "permanent"
    if sub.exclusive or attempt > max_retries:
        return "retries_exhausted"
    return None


def record_give_up(
    sub: Subscription, *, service: str, routing_key: str, exc: BaseException, reason: str, attempt: int
) -> None:
    """The one account of a message given up (both buses): counted, and logged with why.

    A durable queue's message is in ``<queue>.dead`` (``bus.dead_lettered``); an exclusive queue has no dead-letter
    queue, so its message is dropped (``bus.dropped``). ``reason``: ``undecodable``, ``unknown_type``,
    ``permanent`` or ``retries_exhausted``.
    """
    BUS_HANDLED.labels(service, sub.queue, routing_key, "dead").inc()
    BUS_DEAD_LETTERED.labels(service, sub.queue).inc()
    log.error(
        "bus.dropped" if sub.exclusive else "bus.dead_lettered",
        queue=sub.queue,
        routing_key=routing_key,
        reason=reason,
        error=repr(exc),
        attempt=attempt,
        exc_info=exc,
    )


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic match: ``*`` one word, ``#`` zero or more words."""
    if "#" not in pattern:
        p, k = pattern.split("."), routing_key.split(".")
        return len(p) == len(k) and all(a == "*" or a == b for a, b in zip(p, k, strict=True))
    return fnmatch.fnmatchcase(routing_key, pattern.replace("#", "*"))
