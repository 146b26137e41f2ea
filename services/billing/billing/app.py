"""The billing app: resources via cleanup_ctx, routes (api role), subscriptions and the hold sweeper (worker role)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from common.logging import get_logger
from common.openapi import add_api
from common.runtime import periodic
from common.service import BUS, POOL, build_app

from . import handlers
from .api import API
from .config import BillingSettings

log = get_logger(__name__)


def create_app(settings: BillingSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the billing app for ``role`` (``api`` or ``worker``)."""
    overrides.setdefault("use_store", False)
    app = build_app(settings, role=role, **overrides)
    if role == "api":
        add_api(app, API)
        return app

    async def consumers(app: web.Application) -> AsyncIterator[None]:
        await handlers.router(settings).subscribe(app[BUS], queue=settings.queue, pool=app[POOL])
        yield

    async def sweep(app: web.Application) -> None:
        released = await handlers.sweep_holds(app[POOL], batch=settings.hold_sweep_batch)
        if released:
            log.info("billing.holds_expired", count=released)

    app.cleanup_ctx.append(consumers)
    app.cleanup_ctx.append(periodic("hold_sweeper", settings.hold_sweep_interval_s, sweep, run_at_start=True))
    return app
