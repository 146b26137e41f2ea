"""A typed event router: one handler per event class, the queue's bindings derived from the registrations.

```python
router = Router(consumer="streaming")


@router.on(VideoIngested)  # runs in the inbox transaction (common.inbox): a redelivery has no second effect
async def on_ingested(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None: ...


@router.on(VideoDeleted, inbox=False)  # no transaction: the handler is idempotent by itself
async def on_deleted(event: VideoDeleted, delivery: Delivery) -> None: ...


router.add(CreditsHoldGranted, on_granted)  # the same, without a decorator
router.include(other_router)  # compose: every route of ``other`` (its own consumer names kept)
await router.subscribe(bus, queue=settings.queue, pool=pool)  # bound to exactly the registered types
```

mypy checks each handler against its event class: registering ``async def f(conn, event: CaptionsCompleted,
delivery)`` for ``VideoIngested`` is a type error. An event no route handles is a ``PermanentError``: the bus
dead-letters it to ``<queue>.dead`` and counts it, as it does a body that cannot be decoded (one policy, both buses).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias, TypeVar, overload

import asyncpg

from .. import inbox as _inbox  # a module reference: common.inbox imports common.bus.base
from ..events.base import Event
from .base import Bus, Delivery, Handler, PermanentError

__all__ = ["After", "PlainHandler", "Router", "TxHandler"]

E = TypeVar("E", bound=Event)

#: ``(conn, event, delivery)``, run inside the inbox transaction; outbox writes on ``conn`` commit with it
TxHandler: TypeAlias = Callable[[asyncpg.Connection, E, Delivery], Awaitable[None]]
#: ``(event, delivery)``, no transaction: for handlers that are idempotent by themselves or keep no state
PlainHandler: TypeAlias = Callable[[E, Delivery], Awaitable[None]]
#: called with the event once its handler succeeded (after the commit), e.g. to wake a local runner
After: TypeAlias = Callable[[E], None]


@dataclass(frozen=True)
class _Route:
    event_type: type[Event]
    fn: Callable[..., Awaitable[None]]
    inbox: bool
    consumer: str | None
    after: Callable[[Any], None] | None


class Router:
    """Handlers by event class, for one queue.

    ``consumer`` names the inbox rows of inbox routes registered without their own ``consumer``.
    ``permanent``: exception types no retry can fix; a handler raising one is dead-lettered at once.
    """

    def __init__(self, *, consumer: str = "", permanent: Sequence[type[Exception]] = ()) -> None:
        self.consumer = consumer
        self.permanent = tuple(permanent)
        self._routes: dict[type[Event], _Route] = {}

    @overload
    def on(
        self,
        event_type: type[E],
        *,
        inbox: Literal[True] = True,
        consumer: str | None = None,
        after: After[E] | None = None,
    ) -> Callable[[TxHandler[E]], TxHandler[E]]: ...

    @overload
    def on(
        self, event_type: type[E], *, inbox: Literal[False], after: After[E] | None = None
    ) -> Callable[[PlainHandler[E]], PlainHandler[E]]: ...

    def on(
        self,
        event_type: type[E],
        *,
        inbox: bool = True,
        consumer: str | None = None,
        after: After[E] | None = None,
    ) -> Callable[[Any], Any]:
        """Decorator: register the function as the handler of ``event_type`` (see ``add``)."""

        def register(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
            self._put(_Route(event_type, fn, inbox, consumer, after))
            return fn

        return register

    @overload
    def add(
        self,
        event_type: type[E],
        fn: TxHandler[E],
        *,
        inbox: Literal[True] = True,
        consumer: str | None = None,
        after: After[E] | None = None,
    ) -> None: ...

    @overload
    def add(
        self,
        event_type: type[E],
        fn: PlainHandler[E],
        *,
        inbox: Literal[False],
        after: After[E] | None = None,
    ) -> None: ...

    def add(
        self,
        event_type: type[E],
        fn: Callable[..., Awaitable[None]],
        *,
        inbox: bool = True,
        consumer: str | None = None,
        after: After[E] | None = None,
    ) -> None:
        """Register ``fn`` for ``event_type``: by default ``(conn, event, delivery)`` in the inbox transaction
        (``consumer`` overrides the router's inbox name); ``inbox=False`` for a plain ``(event, delivery)``."""
        self._put(_Route(event_type, fn, inbox, consumer, after))

    def include(self, other: Router) -> None:
        """Add every route of ``other``; its inbox routes without a consumer take this router's."""
        for route in other._routes.values():
            if route.inbox and route.consumer is None and other.consumer:
                route = replace(route, consumer=other.consumer)
            if other.permanent:
                route = replace(route, fn=_permanent_on(route.fn, other.permanent))
            self._put(route)

    @property
    def event_types(self) -> tuple[type[Event], ...]:
        """The registered event classes: the queue's bindings."""
        return tuple(self._routes)

    def handler(self, *, pool: asyncpg.Pool | None, service: str = "") -> Handler:
        """One bus handler that dispatches by event class (tests may drive it directly)."""
        table: dict[type[Event], Handler] = {}
        for cls, route in self._routes.items():
            table[cls] = self._bind(route, pool, service)

        async def dispatch(event: Event, delivery: Delivery) -> None:
            bound = table.get(type(event))
            if bound is None:
                raise PermanentError(f"no handler for {event.type}")
            await bound(event, delivery)

        return dispatch

    async def subscribe(
        self,
        bus: Bus,
        *,
        queue: str,
        pool: asyncpg.Pool | None = None,
        exclusive: bool = False,
        prefetch: int | None = None,
    ) -> None:
        """Bind ``queue`` to the registered event types and consume it with this router."""
        if not self._routes:
            raise ValueError(f"router for {queue!r} has no routes")
        handler = self.handler(pool=pool, service=bus.service)
        await bus.subscribe(queue, self.event_types, handler, exclusive=exclusive, prefetch=prefetch)

    # -- internals -------------------------------------------------------------------------------------------

    def _put(self, route: _Route) -> None:
        tag = route.event_type.__struct_config__.tag
        if not isinstance(tag, str) or tag == route.event_type.__name__:
            raise TypeError(f"{route.event_type.__name__} is not a concrete event class")
        if route.event_type in self._routes:
            raise ValueError(f"{route.event_type.event_type()} already has a handler in this router")
        self._routes[route.event_type] = route

    def _bind(self, route: _Route, pool: asyncpg.Pool | None, service: str) -> Handler:
        fn = _permanent_on(route.fn, self.permanent) if self.permanent else route.fn
        if route.inbox:
            consumer = route.consumer or self.consumer
            if not consumer:
                raise ValueError(f"the inbox route for {route.event_type.event_type()} needs a consumer name")
            if pool is None:
                raise ValueError(f"the inbox route for {route.event_type.event_type()} needs a pool")
            bound: Handler = _inbox.idempotent(pool, consumer, fn, service=service)
        else:
            bound = fn
        after = route.after
        if after is None:
            return bound

        async def then(event: Event, delivery: Delivery) -> None:
            await bound(event, delivery)
            after(event)

        return then


def _permanent_on(
    fn: Callable[..., Awaitable[None]], errors: tuple[type[Exception], ...]
) -> Callable[..., Awaitable[None]]:
    """``fn`` with ``errors`` turned into ``PermanentError`` (dead-lettered without retries)."""

    async def call(*args: Any) -> None:
        try:
            await fn(*args)
        except errors as exc:
            raise PermanentError(f"{type(exc).__name__}: {exc}") from exc

    return call
