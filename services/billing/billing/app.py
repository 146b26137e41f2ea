"""The billing app: resources via cleanup_ctx, routes (api role), subscriptions and the hold sweeper (worker role)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from common import db, outbox
from common.logging import get_logger
from common.metrics import ERRORS
from common.openapi import add_api
from common.service import BUS, POOL, build_app

from . import ledger
from .api import API
from .config import BillingSettings
from .handlers import EVENT_TYPES, idempotent_handler

log = get_logger(__name__)

SWEEPER: web.AppKey[HoldSweeper] = web.AppKey("hold_sweeper")


class HoldSweeper:
    """Releases expired holds every ``interval_s`` (replicas may run side by side: rows are skip-locked)."""

    def __init__(self, pool: asyncpg.Pool, *, interval_s: float, batch: int) -> None:
        self.pool, self.interval_s, self.batch = pool, interval_s, batch
        self._task: asyncio.Task[None] | None = None

    async def sweep(self, now: datetime | None = None) -> int:
        """Release every hold due at ``now`` (default: the current time); return how many."""
        total = 0
        while True:
            async with db.transaction(self.pool) as conn:
                events = await ledger.expire_due(conn, now=now or datetime.now(UTC), limit=self.batch)
                for event in events:
                    await outbox.add(conn, event)
            total += len(events)
            if len(events) < self.batch:
                return total

    async def _run(self) -> None:
        while True:
            try:
                released = await self.sweep()
                if released:
                    log.info("billing.holds_expired", count=released)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ERRORS.labels("billing", "hold_sweeper").inc()
                log.warning("billing.sweeper_error", error=repr(exc))
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Run in the background."""
        self._task = asyncio.create_task(self._run(), name="billing-hold-sweeper")

    async def stop(self) -> None:
        """Stop (a sweep in progress is rolled back, and redone by the next sweep)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def create_app(settings: BillingSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the billing app for ``role`` (``api`` or ``worker``)."""
    overrides.setdefault("use_store", False)
    app = build_app(settings, role=role, **overrides)
    if role == "api":
        add_api(app, API)
        return app

    async def consumers(app: web.Application) -> AsyncIterator[None]:
        await app[BUS].subscribe(settings.queue, EVENT_TYPES, idempotent_handler(app[POOL], settings))
        yield

    async def sweeper(app: web.Application) -> AsyncIterator[None]:
        sweeper = HoldSweeper(
            app[POOL], interval_s=settings.hold_sweep_interval_s, batch=settings.hold_sweep_batch
        )
        app[SWEEPER] = sweeper
        sweeper.start()
        yield
        await sweeper.stop()

    app.cleanup_ctx.append(consumers)
    app.cleanup_ctx.append(sweeper)
    return app
