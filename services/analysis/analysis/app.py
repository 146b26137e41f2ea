"""The analysis app: routes (api role); the job runner, the engine and the event router (worker role)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from common.credits import PriceList
from common.jobrunner import LeasedJobRunner
from common.openapi import add_api
from common.service import BUS, HTTP_CLIENT, POOL, STORE, build_app, settings_of

from . import handlers
from .api import API, PRICES
from .config import AnalysisSettings
from .engines import Analyzer, ExtractiveEngine
from .gemini import GeminiEngine, make_client
from .handlers import KINDS
from .jobs import AnalysisJobs
from .quota import HostBackoff, QuotaGovernor, QuotaLimits, RetryPolicy
from .sources import PRODUCER

RUNNER: web.AppKey[LeasedJobRunner] = web.AppKey("analysis_runner", LeasedJobRunner)
JOBS: web.AppKey[AnalysisJobs] = web.AppKey("analysis_jobs", AnalysisJobs)


def create_app(settings: AnalysisSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the analysis app for ``role`` (``api`` or ``worker``); ``analyzer=`` overrides the engine."""
    analyzer: Analyzer | None = overrides.pop("analyzer", None)
    app = build_app(settings, role=role, **overrides)
    if role == "api":
        add_api(app, API)
        app.cleanup_ctx.append(_prices)
    else:
        app.cleanup_ctx.append(_worker(analyzer))
    return app


async def _prices(app: web.Application) -> AsyncIterator[None]:
    settings = app_settings(app)
    app[PRICES] = PriceList(app[HTTP_CLIENT], settings.billing_url, ttl_s=settings.price_cache_s)
    yield


def governor_of(settings: AnalysisSettings, redis: Redis[Any]) -> QuotaGovernor:
    """The quota governor of the configured (API key, model)."""
    return QuotaGovernor(
        redis=redis,
        api_key=settings.gemini_api_key,
        model=settings.gemini_model,
        limits=QuotaLimits(
            requests_per_minute=settings.gemini_requests_per_minute,
            tokens_per_minute=settings.gemini_tokens_per_minute,
            requests_per_day=settings.gemini_requests_per_day,
            window_s=settings.gemini_quota_window_s,
        ),
        policy=RetryPolicy(
            attempts=settings.gemini_retry_attempts,
            base_delay_s=settings.gemini_retry_base_s,
            max_delay_s=settings.gemini_retry_max_s,
        ),
        prefix=settings.gemini_quota_prefix,
    )


def _worker(analyzer: Analyzer | None) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app_settings(app)
        redis: Redis[Any] | None = None
        governor: QuotaGovernor | None = None
        engine = analyzer
        gemini = engine is None and bool(settings.gemini_api_key)
        if settings.redis_url or gemini:  # the model's quota and the platforms' back-offs, shared
            # hundreds of items may ask the governor at once: beyond the pool's connections they wait for one
            # (a plain pool raises MaxConnectionsError, which failed whole chunks in the benchmark)
            redis = Redis(
                connection_pool=BlockingConnectionPool.from_url(
                    settings.redis_url or "redis://127.0.0.1:6379/0",
                    max_connections=settings.redis_max_connections,
                    timeout=settings.redis_pool_timeout_s,
                )
            )
        if gemini and redis is not None:
            governor = governor_of(settings, redis)
            client = make_client(
                api_key=settings.gemini_api_key,
                base_url=settings.gemini_base_url or None,
                timeout_s=settings.gemini_timeout_s,
            )
            engine = GeminiEngine(
                client=client,
                governor=governor,
                model=settings.gemini_model,
                prompt_version=settings.gemini_prompt_version,
            )
        jobs = AnalysisJobs(
            settings=settings,
            pool=app[POOL],
            objects=app[STORE],
            analyzer=engine or ExtractiveEngine(),
            bus=app[BUS],
            hosts=HostBackoff(redis) if redis is not None else None,
        )
        if governor is not None:
            jobs.on_unpark = governor.clear_day
        runner = LeasedJobRunner.from_settings(
            settings,
            pool=app[POOL],
            bus=app[BUS],
            kinds=list(KINDS),
            handler=jobs.run,
            producer=PRODUCER,
            on_failure=jobs.on_failure,
            name="analysis",
        )
        app[JOBS], app[RUNNER] = jobs, runner
        r = handlers.router(runner=runner, on_failure=jobs.on_failure)
        await r.subscribe(app[BUS], queue=settings.queue, pool=app[POOL])
        await runner.start()
        try:
            yield
        finally:
            await runner.stop(timeout_s=max(1.0, settings.shutdown_timeout_s - 5))
            jobs.finder.close()
            if redis is not None:
                await redis.aclose()  # type: ignore[attr-defined]

    return ctx


def app_settings(app: web.Application) -> AnalysisSettings:
    """The app's settings as analysis settings."""
    return settings_of(app, AnalysisSettings)
