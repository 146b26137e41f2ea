"""An in-memory bus with the RabbitMQ bus's semantics (retries, dead letters), for unit tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..metrics import BUS_HANDLED, BUS_PUBLISHED
from .base import Bus, Delivery, EventTypes, Handler, Subscription, give_up_reason, read_event, record_give_up


@dataclass
class _Sub(Subscription):
    inbox: asyncio.Queue[tuple[str, bytes, dict[str, Any]]]
    task: asyncio.Task[None] | None = None


class MemoryBus(Bus):
    """Delivers in-process; retries with (scaled-down) back-off, then dead-letters to ``<queue>.dead``."""

    def __init__(self, *, service: str = "test", max_retries: int = 3, retry_delay_s: float = 0.01) -> None:
        self.service = service
        self.max_retries = max_retries
        self.retry_delay_s = retry_delay_s
        self._subs: dict[str, _Sub] = {}
        self._dead: dict[str, list[tuple[str, bytes, Mapping[str, Any]]]] = defaultdict(list)
        self.published: list[tuple[str, bytes]] = []
        self._closed = False

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for sub in self._subs.values():
            if sub.task:
                sub.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sub.task
        self._subs.clear()

    async def publish_raw(
        self, *, routing_key: str, body: bytes, message_id: str, headers: Mapping[str, Any] | None = None
    ) -> None:
        if self._closed:
            raise ConnectionError("bus is closed")
        self.published.append((routing_key, body))
        BUS_PUBLISHED.labels(self.service, routing_key).inc()
        for sub in self._subs.values():
            if any(t.event_type() == routing_key for t in sub.types):
                sub.inbox.put_nowait((routing_key, body, dict(headers or {}, **{"x-attempt": 1})))

    async def _open_subscription(
        self, queue: str, types: EventTypes, handler: Handler, *, exclusive: bool, prefetch: int | None
    ) -> None:
        sub = _Sub(queue, types, handler, exclusive, asyncio.Queue())
        self._subs[queue] = sub
        sub.task = asyncio.create_task(self._consume(sub))

    async def _consume(self, sub: _Sub) -> None:
        while True:
            rk, body, headers = await sub.inbox.get()
            attempt = int(headers.get("x-attempt", 1))
            try:
                event = read_event(body, sub.types)
                await sub.handler(event, Delivery(routing_key=rk, attempt=attempt, headers=headers))
                BUS_HANDLED.labels(self.service, sub.queue, rk, "ok").inc()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = give_up_reason(sub, exc, attempt=attempt, max_retries=self.max_retries)
                if reason is not None:
                    self._give_up(sub, rk, body, headers, exc, reason=reason)
                else:
                    BUS_HANDLED.labels(self.service, sub.queue, rk, "retry").inc()
                    loop = asyncio.get_running_loop()
                    loop.call_later(
                        self.retry_delay_s * attempt,
                        sub.inbox.put_nowait,
                        (rk, body, {**headers, "x-attempt": attempt + 1}),
                    )

    def _give_up(
        self, sub: _Sub, rk: str, body: bytes, headers: dict[str, Any], exc: Exception, *, reason: str
    ) -> None:
        if not sub.exclusive:
            self._dead[sub.queue].append((rk, body, headers))
        attempt = int(headers.get("x-attempt", 1))
        record_give_up(sub, service=self.service, routing_key=rk, exc=exc, reason=reason, attempt=attempt)

    async def ping(self) -> None:
        if self._closed:
            raise ConnectionError("bus is closed")

    async def dead_letters(self, queue: str) -> list[tuple[str, bytes, Mapping[str, Any]]]:
        out, self._dead[queue] = self._dead[queue], []
        return out

    async def queue_depth(self, queue: str) -> int:
        sub = self._subs.get(queue)
        return sub.inbox.qsize() if sub else 0

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queue is empty (tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(not s.inbox.empty() for s in self._subs.values()):
            if loop.time() > deadline:
                raise TimeoutError("memory bus did not drain")
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
