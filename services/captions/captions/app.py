"""The captions app: routes (api role); the job runner and the event router (worker role)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from common.credits import PriceList
from common.jobrunner import LeasedJobRunner
from common.openapi import add_api
from common.service import BUS, HTTP_CLIENT, POOL, STORE, build_app, settings_of

from . import handlers
from .api import API, PRICES
from .config import CaptionsSettings
from .jobs import PRODUCER, CaptionJobs
from .models import JobKind

RUNNER: web.AppKey[LeasedJobRunner] = web.AppKey("captions_runner", LeasedJobRunner)
JOBS: web.AppKey[CaptionJobs] = web.AppKey("captions_jobs", CaptionJobs)


def create_app(settings: CaptionsSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the captions app for ``role`` (``api`` or ``worker``)."""
    app = build_app(settings, role=role, **overrides)
    if role == "api":
        add_api(app, API)
        app.cleanup_ctx.append(_prices)
    else:
        app.cleanup_ctx.append(_worker)
    return app


async def _prices(app: web.Application) -> AsyncIterator[None]:
    settings = app_settings(app)
    app[PRICES] = PriceList(app[HTTP_CLIENT], settings.billing_url, ttl_s=settings.price_cache_s)
    yield


async def _worker(app: web.Application) -> AsyncIterator[None]:
    settings = app_settings(app)
    jobs = CaptionJobs(settings=settings, pool=app[POOL], objects=app[STORE])
    runner = LeasedJobRunner.from_settings(
        settings,
        pool=app[POOL],
        bus=app[BUS],
        kinds=[k.value for k in JobKind],
        handler=jobs.run,
        producer=PRODUCER,
        on_failure=jobs.on_failure,
        name="captions",
    )
    app[JOBS], app[RUNNER] = jobs, runner
    r = handlers.router(settings, objects=app[STORE], runner=runner, on_failure=jobs.on_failure)
    await r.subscribe(app[BUS], queue=settings.queue, pool=app[POOL])
    await runner.start()
    yield
    await runner.stop(timeout_s=max(1.0, settings.shutdown_timeout_s - 5))


def app_settings(app: web.Application) -> CaptionsSettings:
    """The app's settings as captions settings."""
    return settings_of(app, CaptionsSettings)
