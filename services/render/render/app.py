"""The render app: routes (api role); the job runner, the event router and the scratch sweep (worker role)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.bus import Router
from common.credits import build_paid_app
from common.jobrunner import JobHandler, LeasedJobRunner, OnFailure
from common.runtime import JOB_RUNNER, periodic
from common.service import POOL, STORE, settings_of
from common.settings import SettingsError

from . import handlers
from .api import API
from .config import DEV_DOWNLOAD_SECRET, RenderSettings
from .jobs import RenderJobs, sweep_scratch
from .models import JobKind


def create_app(settings: RenderSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the render app for ``role`` (``api`` or ``worker``)."""
    if settings.environment == "production" and settings.download_secret == DEV_DOWNLOAD_SECRET:
        raise SettingsError("DOWNLOAD_SECRET: set your own secret in production (the default is public)")
    app = build_paid_app(settings, role=role, api=API, kinds=JobKind, jobs=_jobs, router=_router, **overrides)
    if role != "api":
        sweep = periodic("render_scratch_sweep", settings.tmp_sweep_interval_s, _sweep, run_at_start=True)
        app.cleanup_ctx.append(sweep)
    return app


def _jobs(app: web.Application) -> tuple[JobHandler, OnFailure]:
    jobs = RenderJobs(settings=app_settings(app), pool=app[POOL], objects=app[STORE])
    return jobs.run, jobs.on_failure


def _router(app: web.Application, runner: LeasedJobRunner, on_failure: OnFailure) -> Router:
    return handlers.router(runner=runner, on_failure=on_failure, objects=app[STORE])


async def _sweep(app: web.Application) -> int:
    settings = app_settings(app)
    runner = app.get(JOB_RUNNER)
    return await sweep_scratch(
        app[POOL],
        settings.scratch_dir,
        running=(lambda: runner.running) if runner is not None else list,
        max_age_s=settings.tmp_max_age_s,
    )


def app_settings(app: web.Application) -> RenderSettings:
    """The app's settings as render settings."""
    return settings_of(app, RenderSettings)
