"""The ingest app: resources via cleanup_ctx, routes, and (in the worker role) the job runner and subscriptions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from common.openapi import add_api
from common.service import BUS, POOL, STORE, build_app
from common.storage import ObjectStore

from . import api
from .config import IngestSettings
from .handlers import EVENT_TYPES, Handlers
from .runner import JobRunner, SearchFn
from .tmpfiles import sweep

RUNNER: web.AppKey[JobRunner] = web.AppKey("ingest_runner", JobRunner)
#: the multipart envelope around a maximal upload (the size itself is enforced while streaming)
_BODY_SLACK = 1024 * 1024


def create_app(
    settings: IngestSettings,
    *,
    role: str = "api",
    search_fn: SearchFn | None = None,
    store_factory: Callable[[str], ObjectStore] | None = None,
    **overrides: Any,
) -> web.Application:
    """Build the ingest app for ``role`` (``api`` or ``worker``); ``search_fn``/``store_factory`` are test seams."""
    overrides.setdefault("max_body_bytes", settings.max_upload_bytes + _BODY_SLACK)
    app = build_app(settings, role=role, **overrides)
    app.cleanup_ctx.append(_sweeper(settings))
    if role == "api":
        add_api(app, api.API)
    else:
        app.cleanup_ctx.append(_worker(settings, search_fn, store_factory))
    return app


def _sweeper(settings: IngestSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        root = settings.ingest_tmp
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)

        async def loop() -> None:
            while True:
                # at start: whatever a killed process left; then periodically
                await asyncio.to_thread(sweep, root, max_age_s=settings.tmp_max_age_s)
                await asyncio.sleep(settings.tmp_sweep_interval_s)

        task = asyncio.create_task(loop(), name="ingest-tmp-sweeper")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def _worker(
    settings: IngestSettings, search_fn: SearchFn | None, store_factory: Callable[[str], ObjectStore] | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        runner = JobRunner(
            pool=app[POOL], bus=app[BUS], store=app[STORE], settings=settings, search_fn=search_fn
        )
        app[RUNNER] = runner
        handlers = Handlers(
            pool=app[POOL], store=app[STORE], settings=settings, runner=runner, store_factory=store_factory
        )
        await app[BUS].subscribe(settings.queue, list(EVENT_TYPES), handlers)
        await runner.start()
        yield
        await runner.stop(timeout_s=max(1.0, settings.shutdown_timeout_s - 5))

    return ctx
