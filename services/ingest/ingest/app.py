"""The ingest app: resources via cleanup_ctx, routes, and (in the worker role) the job runner and subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from common.openapi import add_api
from common.runtime import Periodic, periodic
from common.service import BUS, POOL, STORE, build_app
from common.storage import ObjectStore

from . import api
from .config import IngestSettings
from .handlers import Handlers
from .originals import Originals
from .runner import JobRunner, SearchFn
from .tmpfiles import sweep

RUNNER: web.AppKey[JobRunner] = web.AppKey("ingest_runner", JobRunner)
SWEEPER: web.AppKey[Periodic] = web.AppKey("ingest_tmp_sweeper", Periodic)
ORIGINALS_SWEEPER: web.AppKey[Periodic] = web.AppKey("ingest_originals_sweeper", Periodic)
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
    app.cleanup_ctx.append(tmp_sweeper(settings))
    if role == "api":
        add_api(app, api.API)
    else:
        app.cleanup_ctx.append(_worker(settings, search_fn, store_factory))
        app.cleanup_ctx.append(originals_sweeper(settings))
    return app


def tmp_sweeper(settings: IngestSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Remove what killed processes left in the temp directory: at start, then every ``tmp_sweep_interval_s``."""
    root = settings.scratch_dir

    async def sweep_once(app: web.Application) -> None:
        await asyncio.to_thread(sweep, root, max_age_s=settings.tmp_max_age_s)

    return periodic("tmp_sweeper", settings.tmp_sweep_interval_s, sweep_once, run_at_start=True, key=SWEEPER)


def originals_sweeper(settings: IngestSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Delete originals a crash left between storing and registering them (``ingest.originals``), every
    ``originals_sweep_interval_s``."""

    async def sweep_once(app: web.Application) -> None:
        originals = Originals.of(settings, pool=app[POOL], objects=app[STORE])
        await originals.sweep(older_than_s=settings.originals_orphan_age_s)

    return periodic(
        "originals_sweeper",
        settings.originals_sweep_interval_s,
        sweep_once,
        run_at_start=True,
        key=ORIGINALS_SWEEPER,
    )


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
        await handlers.router().subscribe(app[BUS], queue=settings.queue, pool=app[POOL])
        await runner.start()
        yield
        await runner.stop(timeout_s=max(1.0, settings.shutdown_timeout_s - 5))

    return ctx
