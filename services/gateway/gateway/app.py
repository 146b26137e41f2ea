"""The gateway app: resources via cleanup_ctx, routes, rate limiting, and the bus consumers (in the api process)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from common.auth import Principal
from common.bus import Bus
from common.http import add_readiness_check
from common.logging import get_logger
from common.openapi import add_api
from common.runtime import Periodic, periodic
from common.service import BUS, POOL, CleanupCtx, build_app

from . import api, store
from .accounts import Accounts
from .apikeys import ApiKeys, key_id_of
from .config import GatewaySettings
from .handlers import fanout_router, read_model_router
from .keys import KeyRing, NoSigningKey, generate_key
from .live import SocketHub
from .openapi import OpenAPIAggregator
from .proxy import make_session
from .ratelimit import MemoryLimiter, RateLimiter, RedisLimiter
from .revocation import GatewayVerifier, RevocationCache

log = get_logger(__name__)

VERIFIER_KEY: web.AppKey[GatewayVerifier] = web.AppKey("gateway_verifier", GatewayVerifier)
REVOCATIONS: web.AppKey[RevocationCache] = web.AppKey("revocations", RevocationCache)
HOUSEKEEPING_INTERVAL_S = 3600.0


def make_limiter(settings: GatewaySettings) -> RateLimiter:
    """The configured limiter: Redis when ``REDIS_URL`` is set (``rate_limiter=auto``), else in-process."""
    kind = settings.rate_limiter
    if kind == "auto":
        kind = "redis" if settings.redis_url else "memory"
    if kind == "redis":
        if not settings.redis_url:
            raise ValueError("RATE_LIMITER=redis needs REDIS_URL")
        return RedisLimiter.from_url(settings.redis_url, prefix=settings.rate_limit_key_prefix)
    if kind == "memory":
        return MemoryLimiter()
    raise ValueError(f"RATE_LIMITER must be auto, memory or redis, not {settings.rate_limiter!r}")


def create_app(
    settings: GatewaySettings,
    *,
    role: str = "api",
    bus: Bus | None = None,
    limiter: RateLimiter | None = None,
    **overrides: Any,
) -> web.Application:
    """Build the gateway app (``role`` api; ``worker`` is accepted but the gateway does all its work in api)."""
    keys = KeyRing(settings.gateway_keys_dir)
    verifier = GatewayVerifier(
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        keys=keys,
        # a verified signature is reused no longer than a "not revoked" answer is
        verified_cache_ttl_s=settings.revocation_cache_ttl_s,
    )
    app = build_app(settings, role=role, bus=bus, verifier=verifier, use_store=False, **overrides)
    app[api.KEYS] = keys
    app[VERIFIER_KEY] = verifier
    app[api.WEB_ROOT] = api.web_root(settings)
    app.middlewares.append(api.rate_limit_middleware)
    app.middlewares.append(api.api_key_scope_middleware)
    app.on_response_prepare.append(api.add_response_headers)
    # first: in production a gateway without keys must fail before it opens any connection
    app.cleanup_ctx.insert(0, _keys_ctx(settings, keys, verifier))
    app.cleanup_ctx.extend(
        [
            _accounts_ctx(settings, keys, verifier),
            _limiter_ctx(settings, limiter),
            _proxy_ctx(settings),
            _live_ctx(settings, role),
            periodic("purge_expired", HOUSEKEEPING_INTERVAL_S, _purge_expired),
            periodic("ws_revocations", settings.ws_revocation_check_s, _close_revoked_sockets),
        ]
    )
    app.on_shutdown.append(_close_sockets)
    add_routes(app)
    return app


def _keys_ctx(settings: GatewaySettings, keys: KeyRing, verifier: GatewayVerifier) -> CleanupCtx:
    """Load the signing keys into ``verifier`` (a development key is generated if none), reloaded periodically."""

    async def _reload() -> None:
        verifier.reload_keys()

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        keys.load()
        if not keys.kids:
            if settings.environment == "production":
                raise NoSigningKey(
                    f"no signing key in {keys.directory}: run `python -m gateway keys rotate` or mount the keys Secret"
                )
            kid = generate_key(Path(settings.gateway_keys_dir))
            log.warning("keys.generated_for_development", kid=kid, directory=str(keys.directory))
            keys.load()
        verifier.load(keys.jwks())
        log.info("keys.loaded", active=keys.active.kid, kids=sorted(keys.kids))
        reload = Periodic("keys_reload", settings.keys_reload_interval_s, _reload, service=settings.service)
        reload.start()
        yield
        await reload.stop()

    return ctx


def _accounts_ctx(settings: GatewaySettings, keys: KeyRing, verifier: GatewayVerifier) -> CleanupCtx:
    """The revocation cache (``REVOCATIONS``), ``Accounts`` and ``API_KEYS`` (the latter two wired into ``verifier``)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = app[POOL]

        async def lookup(jti: str, sid: str) -> bool:
            return await store.is_revoked(pool, jti=jti, sid=sid)

        revocations = RevocationCache(lookup, ttl_s=settings.revocation_cache_ttl_s)
        verifier.revocations = revocations
        app[REVOCATIONS] = revocations
        app[api.ACCOUNTS] = Accounts(pool=pool, keys=keys, revocations=revocations, settings=settings)
        api_keys = ApiKeys(pool=pool, keys=keys, settings=settings)
        verifier.api_keys = api_keys
        app[api.API_KEYS] = api_keys
        yield

    return ctx


def _limiter_ctx(settings: GatewaySettings, injected: RateLimiter | None) -> CleanupCtx:
    """The rate limiter and its in-process fallback; an injected limiter is not closed here."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        the_limiter = injected or make_limiter(settings)
        app[api.LIMITER] = the_limiter
        app[api.FALLBACK_LIMITER] = MemoryLimiter()
        if isinstance(the_limiter, RedisLimiter):
            # not critical: while Redis is away each replica limits on its own (api._hit)
            add_readiness_check(app, "redis", the_limiter.ping, critical=False)
        log.info("ratelimit.backend", backend=the_limiter.name)
        yield
        if injected is None:
            await the_limiter.close()

    return ctx


def _proxy_ctx(settings: GatewaySettings) -> CleanupCtx:
    """The upstream HTTP session (``PROXY_CLIENT``) and the merged OpenAPI document (``OPENAPI``)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        session = make_session(
            connect_timeout_s=settings.upstream_connect_timeout_s,
            read_timeout_s=settings.upstream_read_timeout_s,
            max_connections=settings.upstream_max_connections,
        )
        app[api.PROXY_CLIENT] = session
        app[api.OPENAPI] = OpenAPIAggregator(
            base=api.gateway_document,
            upstreams=settings.upstreams,
            timeout_s=settings.openapi_fetch_timeout_s,
            ttl_s=settings.openapi_cache_ttl_s,
        )
        yield
        await session.close()

    return ctx


def _live_ctx(settings: GatewaySettings, role: str) -> CleanupCtx:
    """The WebSocket hub (``HUB``) and, in the api role, the read-model and live-snapshot subscriptions."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        revocations = app[REVOCATIONS]

        api_keys = app[api.API_KEYS]

        async def is_revoked(p: Principal) -> bool:
            if key_id_of(p) is not None:
                return await api_keys.is_revoked(p)
            return await revocations.is_revoked(p.token_id, str(p.claims.get("sid", "")))

        hub = SocketHub(send_timeout_s=settings.ws_send_timeout_s, is_revoked=is_revoked)
        app[api.HUB] = hub
        if role == "api":
            await read_model_router(app[POOL]).subscribe(app[BUS], queue=settings.queue)
            # one exclusive, auto-deleted queue per replica: every replica sees every snapshot for its sockets
            live_queue = f"{settings.queue}.live.{uuid.uuid4().hex[:12]}"
            await fanout_router(hub).subscribe(app[BUS], queue=live_queue, exclusive=True)
        yield

    return ctx


async def _purge_expired(app: web.Application) -> None:
    await store.purge_expired(app[POOL])


async def _close_revoked_sockets(app: web.Application) -> None:
    # a socket whose token was revoked (e.g. a logout on another replica) must not keep listening
    closed = await app[api.HUB].close_revoked()
    if closed:
        log.info("ws.revoked_sockets_closed", count=closed)


async def _close_sockets(app: web.Application) -> None:
    hub = app.get(api.HUB)
    if hub is not None:
        await hub.close_all()


def add_routes(app: web.Application) -> None:
    """The gateway's own endpoints (the route table, proxy catch-alls last) and the page's static files."""
    app.router.add_static("/static/", api.STATIC_DIR, show_index=False)  # the not-built page's icon
    root = app[api.WEB_ROOT]
    if root is not None:  # the built web app: its content-hashed files (bundles, icon) under /assets/
        app.router.add_static("/assets/", root / "assets", show_index=False)
    add_api(app, api.API)
