"""Inbox: an event's id is recorded in the handler's own transaction, so a redelivery has no second effect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from .bus.base import Delivery, Handler
from .db import inserted
from .events.base import Event
from .metrics import BUS_HANDLED

E = TypeVar("E", bound=Event)


async def claim(conn: asyncpg.Connection, event: Event, *, consumer: str) -> bool:
    """Record the event as handled by ``consumer``; False when it already was (skip the effects)."""
    return await inserted(
        conn,
        "INSERT INTO inbox (event_id, consumer, event_type) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        event.id,
        consumer,
        event.type,
    )


TxHandler = Callable[[asyncpg.Connection, Event, Delivery], Awaitable[None]]


def idempotent(pool: asyncpg.Pool, consumer: str, fn: TxHandler, *, service: str = "") -> Handler:
    """Wrap a handler: one transaction per delivery, inbox claim first, effects (and outbox writes) after.

    If ``fn`` raises, the transaction (including the inbox claim) rolls back and the bus retries.
    """

    async def handler(event: Event, delivery: Delivery) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if not await claim(conn, event, consumer=consumer):
                BUS_HANDLED.labels(service or consumer, consumer, event.type, "duplicate").inc()
                return
            await fn(conn, event, delivery)

    return handler
