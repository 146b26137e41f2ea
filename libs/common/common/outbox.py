"""Transactional outbox: events are written with the state change, and a relay publishes them with confirms."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import asyncpg

from .bus.base import Bus
from .db import PoolListener, check_ident
from .events.base import Event, encode
from .logging import get_logger
from .metrics import ERRORS, OUTBOX_LAG, OUTBOX_PENDING

log = get_logger(__name__)


def channel_for(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes the relay of ``schema``."""
    return f"outbox_{check_ident(schema)}"


async def add(conn: asyncpg.Connection, event: Event, *, headers: Mapping[str, Any] | None = None) -> None:
    """Record ``event`` in the outbox of the connection's schema, inside the caller's transaction."""
    schema = await conn.fetchval("SELECT current_schema()")
    await conn.execute(
        "INSERT INTO outbox (event_id, routing_key, body, headers) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (event_id) DO NOTHING",
        event.id,
        event.type,
        encode(event),
        dict(headers or {}),
    )
    await conn.execute("SELECT pg_notify($1, '')", channel_for(schema))


class OutboxRelay:
    """Publishes unpublished outbox rows in order, marks them published after the broker's confirm.

    At-least-once: a crash between confirm and mark re-publishes the row, which consumers dedupe by event id.
    Several replicas may run a relay: rows are claimed with ``FOR UPDATE SKIP LOCKED``.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Bus,
        *,
        schema: str,
        service: str,
        batch_size: int = 200,
        poll_interval_s: float = 1.0,
        retry_delay_s: float = 0.5,
    ) -> None:
        self.pool, self.bus, self.schema, self.service = pool, bus, check_ident(schema), service
        self.batch_size, self.poll_interval_s, self.retry_delay_s = batch_size, poll_interval_s, retry_delay_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listener = PoolListener(pool, channel_for(self.schema), self._notified)

    async def start(self) -> None:
        """Start the relay loop in the background."""
        self._task = asyncio.create_task(self.run(), name=f"outbox-relay-{self.schema}")

    async def stop(self) -> None:
        """Finish the batch in hand, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        await self._unlisten()

    async def _listen(self) -> None:
        await self._listener.ensure()

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _unlisten(self) -> None:
        await self._listener.close()

    async def run(self) -> None:
        """Loop: publish what is pending, then wait for a NOTIFY or the poll interval."""
        while not self._stopping:
            try:
                await self._listen()
                sent = await self.publish_pending()
                if sent:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ERRORS.labels(self.service, "outbox_relay").inc()
                log.warning("outbox.relay_error", error=repr(exc))
                await self._unlisten()
                await asyncio.sleep(self.retry_delay_s)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)

    async def publish_pending(self) -> int:
        """Publish one batch; return how many rows were published."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT seq, event_id, routing_key, body, headers, created_at FROM {self.schema}.outbox"
                " WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                OUTBOX_PENDING.labels(self.service).set(0)
                return 0
            published: list[int] = []
            try:
                # publish concurrently (confirms pipeline); the order across a batch is not a contract
                results = await asyncio.gather(
                    *(
                        self.bus.publish_raw(
                            routing_key=r["routing_key"],
                            body=bytes(r["body"]),
                            message_id=str(r["event_id"]),
                            headers=r["headers"] or {},
                        )
                        for r in rows
                    ),
                    return_exceptions=True,
                )
                now = time.time()
                for r, res in zip(rows, results, strict=True):
                    if isinstance(res, BaseException):
                        continue
                    published.append(r["seq"])  # the bus counts BUS_PUBLISHED itself
                    OUTBOX_LAG.labels(self.service).observe(max(0.0, now - r["created_at"].timestamp()))
                failures = [res for res in results if isinstance(res, BaseException)]
            finally:
                if published:
                    await conn.execute(
                        f"UPDATE {self.schema}.outbox SET published_at = now(), attempts = attempts + 1"
                        " WHERE seq = ANY($1::bigint[])",
                        published,
                    )
            if failures:
                raise failures[0]
            return len(published)

    async def pending(self) -> int:
        """Rows not yet published."""
        async with self.pool.acquire() as conn:
            n: int = await conn.fetchval(
                f"SELECT count(*) FROM {self.schema}.outbox WHERE published_at IS NULL"
            )
        OUTBOX_PENDING.labels(self.service).set(n)
        return n


async def purge_published(pool: asyncpg.Pool, *, schema: str, older_than_s: int = 7 * 86400) -> int:
    """Delete outbox rows published long ago (housekeeping)."""
    check_ident(schema)
    async with pool.acquire() as conn:
        res: str = await conn.execute(
            f"DELETE FROM {schema}.outbox WHERE published_at < now() - make_interval(secs => $1)",
            older_than_s,
        )
    return int(res.split()[-1])
