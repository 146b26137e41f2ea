"""The captions app: routes (api role); the job runner and the event router (worker role)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.bus import Router
from common.credits import build_paid_app
from common.jobrunner import JobHandler, LeasedJobRunner, OnFailure
from common.service import POOL, STORE, settings_of

from . import handlers
from .api import API
from .config import CaptionsSettings
from .jobs import CaptionJobs
from .models import JobKind

JOBS: web.AppKey[CaptionJobs] = web.AppKey("captions_jobs", CaptionJobs)


def create_app(settings: CaptionsSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the captions app for ``role`` (``api`` or ``worker``)."""
    return build_paid_app(
        settings, role=role, api=API, kinds=JobKind, jobs=_jobs, router=_router, **overrides
    )


def _jobs(app: web.Application) -> tuple[JobHandler, OnFailure]:
    jobs = app[JOBS] = CaptionJobs(settings=app_settings(app), pool=app[POOL], objects=app[STORE])
    return jobs.run, jobs.on_failure


def _router(app: web.Application, runner: LeasedJobRunner, on_failure: OnFailure) -> Router:
    return handlers.router(app_settings(app), objects=app[STORE], runner=runner, on_failure=on_failure)


def app_settings(app: web.Application) -> CaptionsSettings:
    """The app's settings as captions settings."""
    return settings_of(app, CaptionsSettings)
