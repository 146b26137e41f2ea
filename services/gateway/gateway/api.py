"""HTTP handlers: parse, authenticate, call the domain, answer. Plus the proxy, WebSocket and rate-limit glue."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from common.auth import PRINCIPAL, VERIFIER, Principal, TokenInvalid, bearer_token, require_user
from common.http import DEPENDENCIES, REQUEST_ID, Problem, json_response, parse_uuid, read_json, read_query
from common.logging import get_logger
from common.openapi import Api, Route
from common.pagination import Page, page_request
from common.service import HTTP_CLIENT, POOL, settings_of
from common.views import view_of

from . import readmodel
from .accounts import Accounts
from .apikeys import (
    ApiKeys,
    KeyScope,
    key_id_of,
    looks_like_api_key,
    only_reads,
    refuse_read_only,
    require_session,
)
from .config import GatewaySettings
from .keys import KeyRing
from .live import CLOSE_TOKEN_EXPIRED, SocketHub
from .metrics import RATE_LIMITED, WS_OPEN, count_proxied
from .models import (
    ApiKeyCreate,
    ApiKeyCreatedView,
    ApiKeyList,
    ApiKeyView,
    Credentials,
    GatewayCode,
    JobsQuery,
    JobView,
    JwksView,
    RefreshBody,
    SocketQuery,
    TokenPairView,
    UserView,
)
from .openapi import OpenAPIAggregator
from .proxy import Route as ProxyRoute
from .proxy import client_ip, forward, route_for
from .ratelimit import Decision, RateLimiter

log = get_logger(__name__)

ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts", Accounts)
API_KEYS: web.AppKey[ApiKeys] = web.AppKey("api_keys", ApiKeys)
KEYS: web.AppKey[KeyRing] = web.AppKey("keys", KeyRing)
HUB: web.AppKey[SocketHub] = web.AppKey("socket_hub", SocketHub)
LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter", RateLimiter)
FALLBACK_LIMITER: web.AppKey[RateLimiter] = web.AppKey("fallback_rate_limiter", RateLimiter)
OPENAPI: web.AppKey[OpenAPIAggregator] = web.AppKey("openapi", OpenAPIAggregator)
PROXY_CLIENT: web.AppKey[aiohttp.ClientSession] = web.AppKey("proxy_client", aiohttp.ClientSession)
RATE_DECISION: web.RequestKey[tuple[Decision, int]] = web.RequestKey("rate_decision", tuple)
ROUTE: web.RequestKey[ProxyRoute] = web.RequestKey("proxy_route", ProxyRoute)

STATIC_DIR = Path(__file__).parent / "static"
#: what ``/`` answers (503) when the web app is not built: what is missing and how to build it
NOT_BUILT_PAGE = STATIC_DIR / "not-built.html"
#: where ``npm run build`` writes the web app in a checkout (services/gateway/gateway/api.py -> <repo>/web/dist)
CHECKOUT_WEB_DIR = Path(__file__).resolve().parents[3] / "web" / "dist"
#: the built web app's directory, None when it is not built (``web_root``)
WEB_ROOT: web.AppKey[Path | None] = web.AppKey("web_root")
AUTH_PATHS = frozenset({"/api/v1/auth/register", "/api/v1/auth/login"})
# its own class: a refresh token cannot be guessed, and many users behind one NAT refresh every hour
REFRESH_PATH = "/api/v1/auth/refresh"


def _settings(request: web.Request) -> GatewaySettings:
    return settings_of(request, GatewaySettings)


# --- accounts ---------------------------------------------------------------------------------------------------


async def register(request: web.Request) -> web.Response:
    """Create an account."""
    body = await read_json(request, Credentials)
    user = await request.app[ACCOUNTS].register(
        email=body.email, password=body.password, correlation_id=request[REQUEST_ID]
    )
    return json_response(user.public(), status=201, headers={"Location": "/api/v1/me"})


async def login(request: web.Request) -> web.Response:
    """Log in: a new session (a token pair)."""
    body = await read_json(request, Credentials)
    async with _sign_in_attempt(request, body.email):
        pair = await request.app[ACCOUNTS].login(email=body.email, password=body.password)
    return json_response(pair.public(), headers={"Cache-Control": "no-store"})


@contextlib.asynccontextmanager
async def _sign_in_attempt(request: web.Request, email: str) -> AsyncIterator[None]:
    """Count the attempt as a failure of its account and of its address unless it succeeds; 429 when either
    has failed too often (``LOGIN_FAILURES_PER_*`` in ``LOGIN_FAILURE_WINDOW_S``).

    The slots are taken *before* the password is checked and given back on success, so concurrent guesses
    cannot all pass one check, and a right guess past the limit is refused like a wrong one.
    """
    settings = _settings(request)
    window = settings.login_failure_window_s
    # hashed: Redis keys carry no email address; unnormalisable input still has an account key of its own
    account = hashlib.sha256(email.strip().lower().encode(errors="surrogatepass")).hexdigest()[:32]
    address = client_ip(request, trusted_hops=settings.trusted_proxy_hops)
    taken: list[tuple[RateLimiter, str]] = []
    try:
        for key, limit in (
            (f"login-failed:account:{account}", settings.login_failures_per_account),
            (f"login-failed:ip:{address}", settings.login_failures_per_address),
        ):
            limiter, decision = await _hit(request, key, limit=limit, window_s=window)
            if not decision.allowed:
                raise _refused(
                    decision, window, "login_failures", "auth.too_many_failures", "failed sign-ins"
                )
            taken.append((limiter, key))
        yield
    except Problem as p:
        if p.code == "auth.invalid_credentials":
            taken.clear()  # a failure: it stays counted
        raise
    except asyncio.CancelledError:
        taken.clear()  # the outcome is unknown: a guess must not become free by hanging up
        raise
    finally:
        for limiter, key in taken:
            try:
                await limiter.release(key)
            except Exception as exc:  # Redis went away meanwhile: the slot expires with its window
                log.warning("ratelimit.release_failed", error=repr(exc))


async def refresh(request: web.Request) -> web.Response:
    """Rotate a refresh token: a new token pair; the presented refresh token is spent."""
    body = await read_json(request, RefreshBody)
    if not body.refresh_token:
        raise Problem(
            422, GatewayCode.REFRESH_TOKEN_REQUIRED, "refresh_token is required", field="refresh_token"
        )
    pair = await request.app[ACCOUNTS].refresh(refresh_token=body.refresh_token)
    return json_response(pair.public(), headers={"Cache-Control": "no-store"})


async def logout(request: web.Request) -> web.Response:
    """Revoke the calling token and its session (an API key is revoked through /auth/keys instead)."""
    principal = await require_user(request)
    require_session(principal)
    # the body is optional: none at all (whatever Content-Type, if any, was sent) is no refresh token
    body = await read_json(request, RefreshBody) if await request.read() else RefreshBody()
    await request.app[ACCOUNTS].logout(
        user_id=principal.user_id,
        jti=principal.token_id,
        sid=str(principal.claims.get("sid", "")),
        exp=principal.expires_at,
        refresh_token=body.refresh_token or None,
    )
    return web.Response(status=204)


async def me(request: web.Request) -> web.Response:
    """The caller's account."""
    principal = await require_user(request)
    user = await request.app[ACCOUNTS].me(user_id=principal.user_id)
    return json_response(user.public())


# --- API keys ---------------------------------------------------------------------------------------------------


async def create_api_key(request: web.Request) -> web.Response:
    """Create an API key; the answer holds the key itself, shown this once."""
    principal = await require_user(request)
    require_session(principal)
    body = await read_json(request, ApiKeyCreate)
    key, secret = await request.app[API_KEYS].create(
        user_id=principal.user_id, name=body.name, scope=KeyScope(body.scope)
    )
    view = view_of(ApiKeyCreatedView, key, key=secret)
    return json_response(view, status=201, headers={"Cache-Control": "no-store"})


async def list_api_keys(request: web.Request) -> web.Response:
    """The caller's active API keys (prefix, name, scope, created, last used)."""
    principal = await require_user(request)
    keys = await request.app[API_KEYS].list(user_id=principal.user_id)
    return json_response(ApiKeyList(items=[view_of(ApiKeyView, k) for k in keys]))


async def revoke_api_key(request: web.Request) -> web.Response:
    """Revoke an API key: refused everywhere from the next request on."""
    principal = await require_user(request)
    key_id = parse_uuid(request.match_info["id"], what="api_key")
    await request.app[API_KEYS].revoke(user_id=principal.user_id, key_id=key_id)
    return web.Response(status=204)


async def jwks(request: web.Request) -> web.Response:
    """Public keys that verify access tokens (old ones verify until their tokens expire)."""
    return json_response(request.app[KEYS].jwks(), headers={"Cache-Control": "public, max-age=60"})


# --- jobs -------------------------------------------------------------------------------------------------------


async def list_jobs(request: web.Request) -> web.Response:
    """The caller's jobs, newest first."""
    principal = await require_user(request)
    filters = read_query(request, JobsQuery)
    page = await readmodel.list_jobs(
        request.app[POOL],
        owner_id=principal.user_id,
        statuses=request.query.getall("status", []) if filters.status else [],
        kinds=request.query.getall("kind", []) if filters.kind else [],
        page=page_request(request, readmodel.JOBS_PAGING, readmodel.JobKey),
    )
    return json_response(page)


async def get_job(request: web.Request) -> web.Response:
    """One of the caller's jobs."""
    principal = await require_user(request)
    job = await readmodel.get_job(
        request.app[POOL], owner_id=principal.user_id, job_id=parse_uuid(request.match_info["id"], what="job")
    )
    return json_response(JobView.of(job))


async def cancel_job(request: web.Request) -> web.Response:
    """Ask the owning service to cancel a job."""
    principal = await require_user(request)
    job = await readmodel.request_cancel(
        request.app[POOL],
        owner_id=principal.user_id,
        job_id=parse_uuid(request.match_info["id"], what="job"),
        producer=_settings(request).service,
        correlation_id=request[REQUEST_ID],
    )
    return json_response(JobView.of(job), status=202)


# --- live updates -----------------------------------------------------------------------------------------------


async def _socket_principal(request: web.Request) -> Principal:
    token = bearer_token(request) or request.query.get("access_token", "").strip()
    if not token:
        raise Problem(401, "auth.missing_token", "send the access token as a Bearer header or ?access_token=")
    return await request.app[VERIFIER].verify(token)  # TokenInvalid is a 401 problem itself


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """WebSocket of live updates: ``{type: 'job', job: Job}`` for every change of the caller's jobs, and
    ``{type: 'credits', credits: {order_id, amount, balance_after}}`` when a payment is credited to the account."""
    principal = await _socket_principal(request)
    settings = _settings(request)
    ws = web.WebSocketResponse(heartbeat=settings.ws_heartbeat_s, max_msg_size=64 * 1024)
    await ws.prepare(request)
    hub = request.app[HUB]
    hub.add(ws, principal)
    WS_OPEN.inc()
    # the socket lives no longer than its token: the client reconnects with a refreshed one (an API key does not
    # expire; its revocation closes the socket like a logout does)
    lifetime = 10 * 365 * 86400.0 if key_id_of(principal) else principal.expires_at - time.time()
    expiry = asyncio.get_running_loop().call_later(
        max(0.0, lifetime),
        lambda: asyncio.ensure_future(ws.close(code=CLOSE_TOKEN_EXPIRED, message=b"token expired")),
    )
    try:
        await ws.send_json({"type": "hello", "user_id": str(principal.user_id)})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_json({"type": "pong"})
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        expiry.cancel()
        hub.discard(ws)
        WS_OPEN.dec()
    return ws


# --- proxy and OpenAPI ------------------------------------------------------------------------------------------


async def proxy(request: web.Request) -> web.StreamResponse:
    """Everything the gateway does not answer itself: authenticate (unless public), then stream to the owner."""
    route = route_for(request.method, request.path)
    if route is None:
        raise Problem(404, "not_found", "no such endpoint")
    request[ROUTE] = route
    authorization = await _upstream_authorization(request, route)
    settings = _settings(request)
    resp = await forward(
        request,
        session=request.app[PROXY_CLIENT],
        base_url=settings.upstream_url(route.upstream),
        upstream=route.upstream,
        trusted_hops=settings.trusted_proxy_hops,
        authorization=authorization,
    )
    count_proxied(route.upstream, resp.status)
    return resp


async def _upstream_authorization(request: web.Request, route: ProxyRoute) -> str | None:
    """The ``Authorization`` an upstream gets: the caller's own (None), or, for an API key, an access token
    minted for its owner (services verify gateway JWTs only); "" drops it (a key never leaves the gateway)."""
    token = bearer_token(request)
    if route.auth:
        principal = await require_user(request)
        return f"Bearer {principal.token}" if key_id_of(principal) else None
    return "" if token and looks_like_api_key(token) else None


async def aggregated_openapi(request: web.Request) -> web.Response:
    """This document, merged from every service (the whole public API)."""
    return json_response(await request.app[OPENAPI].document(request.app[HTTP_CLIENT]))


def web_root(settings: GatewaySettings) -> Path | None:
    """The built web app's directory (``WEB_DIR``, default web/dist), or None when it has no index.html: then
    ``/`` answers ``NOT_BUILT_PAGE`` (503), and the log says so once, at start."""
    built = Path(settings.web_dir) if settings.web_dir else CHECKOUT_WEB_DIR
    if (built / "index.html").is_file():
        return built
    log.warning(
        "web.app_missing",
        web_dir=str(built),
        serving="a 503 page saying how to build the app",
        build="make up, or: cd web && npm ci && npm run build",
    )
    return None


async def embed(request: web.Request) -> web.FileResponse:
    """The embeddable player (web/embed.html) for ``/embed/<video id>?token=…``; the token gates the stream, the
    page itself is public and may be framed by any site (headers: ``_EMBED_HEADERS``)."""
    root = request.app[WEB_ROOT]
    if root is None or not (root / "embed.html").is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(root / "embed.html", headers={"Content-Type": "text/html; charset=utf-8"})


async def index(request: web.Request) -> web.StreamResponse:
    """The web app (headers: ``_PAGE_HEADERS``), or a 503 page saying it is not built and how to build it."""
    root = request.app[WEB_ROOT]
    if root is None:
        return web.Response(
            status=503, body=NOT_BUILT_PAGE.read_bytes(), content_type="text/html", charset="utf-8"
        )
    return web.FileResponse(root / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})


# --- rate limiting ----------------------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def rate_class(request: web.Request) -> str | None:
    """Which limit applies to a request (None: unlimited, e.g. health checks and static files)."""
    path = request.path
    if path in AUTH_PATHS:
        return "auth"
    if path == REFRESH_PATH:
        return "refresh"
    if path == "/play" or path.startswith("/play/"):
        return "play"
    if path.startswith("/api/"):
        return "default"
    return None


async def _identity(request: web.Request, klass: str, trusted_hops: int) -> str:
    if klass == "default":
        token = bearer_token(request) or (
            request.query.get("access_token") if request.path == "/api/v1/ws" else None
        )
        if token:
            try:
                principal = await request.app[VERIFIER].verify(token)
                request[PRINCIPAL] = principal
                key_id = key_id_of(principal)
                return f"key:{key_id}" if key_id else f"user:{principal.user_id}"
            except TokenInvalid:
                pass  # counted against the address; the handler answers the 401
    return f"ip:{client_ip(request, trusted_hops=trusted_hops)}"


async def _hit(request: web.Request, key: str, *, limit: int, window_s: int) -> tuple[RateLimiter, Decision]:
    """One hit on the shared limiter, or on this replica's own when the shared one fails (never fail open).

    A failure starts a ``redis`` outage (logged once, ``reelforge_dependency_up``); until the dependency probe
    sees Redis answer again, hits go straight to this replica's limiter."""
    limiter, deps = request.app[LIMITER], request.app[DEPENDENCIES]
    if not deps.is_down("redis"):
        try:
            return limiter, await limiter.hit(key, limit=limit, window_s=window_s)
        except Exception as exc:  # Redis down: keep limiting, per replica
            deps.mark_down("redis", exc)
    limiter = request.app[FALLBACK_LIMITER]
    return limiter, await limiter.hit(key, limit=limit, window_s=window_s)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse with 429 ``rate_limited`` past the route class's limit; add ``RateLimit-*`` headers to answers."""
    klass = rate_class(request)
    if klass is None:
        return await handler(request)
    settings = _settings(request)
    limit = {
        "auth": settings.rate_limit_auth,
        "refresh": settings.rate_limit_refresh,
        "play": settings.rate_limit_play,
    }.get(klass, settings.rate_limit_default)
    identity = await _identity(request, klass, settings.trusted_proxy_hops)
    if identity.startswith("key:"):
        limit = settings.rate_limit_api_key
    key = f"{klass}:{identity}"
    window = settings.rate_limit_window_s
    _, decision = await _hit(request, key, limit=limit, window_s=window)
    request[RATE_DECISION] = (decision, window)
    if not decision.allowed:
        raise _refused(decision, window, klass, "rate_limited", "requests")
    return await handler(request)


@web.middleware
async def api_key_scope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """403 ``auth.insufficient_scope`` for a read-only API key on a request that does not only read (anything but
    GET/HEAD and ``apikeys.READ_ONLY_ROUTES``), before any handler."""
    token = bearer_token(request) or (
        request.query.get("access_token") if request.path == "/api/v1/ws" else None
    )
    if token and looks_like_api_key(token) and not only_reads(request.method, request.path):
        principal = request.get(PRINCIPAL)
        if principal is None:
            try:
                principal = await request.app[VERIFIER].verify(token)
            except TokenInvalid:
                return await handler(request)  # a route that needs a caller answers the 401 itself
            request[PRINCIPAL] = principal
        refuse_read_only(principal, request.method, request.path)
    return await handler(request)


def _refused(decision: Decision, window_s: int, counted_as: str, code: str, what: str) -> Problem:
    """The 429 problem of a refused ``decision`` (counted under route class ``counted_as``)."""
    RATE_LIMITED.labels(counted_as).inc()
    return Problem(
        429,
        code,
        f"too many {what}; retry in {decision.retry_after_s} s",
        headers=decision.headers(window_s),
        limit=decision.limit,
        window_s=window_s,
    )


# The page and its assets: same-origin files only, no inline script or style, no plugins, not framable.
# connect-src names ws:/wss: because not every browser lets 'self' cover the page's own WebSocket; media-src
# names blob: for the MediaSource object URL hls.js plays through (no script or style may come from blob:).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "Cache-Control": "no-cache",  # unversioned asset names: revalidate (ETag) so an upgrade never mixes old and new
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


# the embed page: the same policy, but framable anywhere (a snippet's <iframe>), and no referrer
_EMBED_HEADERS = {
    "Content-Security-Policy": PAGE_CSP.replace("frame-ancestors 'none'", "frame-ancestors *"),
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
}


async def add_response_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: RateLimit-* on every limited answer (streamed ones too); page hardening."""
    got = request.get(RATE_DECISION) if isinstance(request, web.Request) else None
    if got is not None:
        decision, window = got
        for name, value in decision.headers(window).items():
            response.headers.setdefault(name, value)
    if request.path == "/" or request.path.startswith(("/static/", "/assets/")):
        response.headers.update(_PAGE_HEADERS)
        if request.path.startswith("/assets/"):  # the build names these by content hash
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    elif request.path.startswith("/embed/"):
        response.headers.update(_EMBED_HEADERS)
    proxied = (request.get(ROUTE) if isinstance(request, web.Request) else None) or route_for(
        "*", request.path
    )
    if proxied is None:  # proxied answers keep the owning service's headers
        response.headers.setdefault("X-Content-Type-Options", "nosniff")


_JOB = "/api/v1/jobs/{id}"
_NO_JOB = {404: [GatewayCode.JOB_NOT_FOUND]}
_TAGS = ("gateway",)
_CREDENTIALS = [GatewayCode.INVALID_EMAIL, GatewayCode.PASSWORD_TOO_SHORT, GatewayCode.PASSWORD_TOO_LONG]
_REFRESH_REFUSED = [
    GatewayCode.INVALID_REFRESH_TOKEN,
    GatewayCode.REFRESH_EXPIRED,
    GatewayCode.REFRESH_REUSED,
]
_RATE = {429: [GatewayCode.RATE_LIMITED]}
_KEYS = "/api/v1/auth/keys"

ROUTES = (
    Route("GET", "/", index, documented=False),
    Route("GET", "/embed/{video_id}", embed, documented=False),
    Route(
        "GET", "/.well-known/jwks.json", jwks, response=JwksView, public=True, operation_id="jwks", tags=_TAGS
    ),
    Route(
        "GET",
        "/api/v1/openapi.json",
        aggregated_openapi,
        public=True,
        raw={200: "an OpenAPI 3.1 document"},
        operation_id="openapi",
        tags=_TAGS,
    ),
    Route(
        "POST",
        "/api/v1/auth/register",
        register,
        body=Credentials,
        response=UserView,
        status=201,
        public=True,
        tags=_TAGS,
        errors={409: [GatewayCode.EMAIL_TAKEN], 422: _CREDENTIALS, **_RATE},
    ),
    Route(
        "POST",
        "/api/v1/auth/login",
        login,
        body=Credentials,
        response=TokenPairView,
        public=True,
        tags=_TAGS,
        errors={401: [GatewayCode.INVALID_CREDENTIALS], 422: [GatewayCode.INVALID_EMAIL], **_RATE},
    ),
    Route(
        "POST",
        "/api/v1/auth/refresh",
        refresh,
        body=RefreshBody,
        response=TokenPairView,
        public=True,
        tags=_TAGS,
        errors={401: _REFRESH_REFUSED, 422: [GatewayCode.REFRESH_TOKEN_REQUIRED], **_RATE},
    ),
    Route(
        "POST",
        "/api/v1/auth/logout",
        logout,
        body=RefreshBody,
        body_required=False,
        status=204,
        tags=_TAGS,
        errors={401: [GatewayCode.TOKEN_REVOKED], 403: [GatewayCode.SESSION_REQUIRED]},
    ),
    Route(
        "POST",
        _KEYS,
        create_api_key,
        body=ApiKeyCreate,
        response=ApiKeyCreatedView,
        status=201,
        operation_id="createApiKey",
        tags=_TAGS,
        errors={
            403: [GatewayCode.SESSION_REQUIRED, GatewayCode.INSUFFICIENT_SCOPE],
            409: [GatewayCode.API_KEY_LIMIT],
        },
    ),
    Route("GET", _KEYS, list_api_keys, response=ApiKeyList, operation_id="listApiKeys", tags=_TAGS),
    Route(
        "DELETE",
        _KEYS + "/{id}",
        revoke_api_key,
        status=204,
        operation_id="revokeApiKey",
        tags=_TAGS,
        errors={403: [GatewayCode.INSUFFICIENT_SCOPE], 404: [GatewayCode.API_KEY_NOT_FOUND]},
    ),
    Route("GET", "/api/v1/me", me, response=UserView, tags=_TAGS, errors={404: [GatewayCode.USER_NOT_FOUND]}),
    Route(
        "GET",
        "/api/v1/jobs",
        list_jobs,
        query=JobsQuery,
        paging=readmodel.JOBS_PAGING,
        response=Page[JobView],
        operation_id="listJobs",
        tags=_TAGS,
        errors={422: [GatewayCode.INVALID_STATUS]},
    ),
    Route("GET", _JOB, get_job, response=JobView, operation_id="getJob", tags=_TAGS, errors=_NO_JOB),
    Route(
        "POST",
        f"{_JOB}/cancel",
        cancel_job,
        response=JobView,
        status=202,
        operation_id="cancelJob",
        tags=_TAGS,
        errors={**_NO_JOB, 409: [GatewayCode.JOB_NOT_CANCELABLE]},
    ),
    Route(
        "GET",
        "/api/v1/ws",
        websocket,
        query=SocketQuery,
        raw={101: "switching protocols"},
        operation_id="jobsSocket",
        tags=_TAGS,
    ),
    # everything else under /api/v1 and /play is another service's: its own document describes it
    Route("*", "/api/v1/{tail:.*}", proxy, documented=False),
    Route("*", "/play/{tail:.*}", proxy, documented=False),
)

API = Api(
    title="Reelforge gateway",
    description="Accounts, tokens, jobs and live progress. Errors are application/problem+json.",
    routes=ROUTES,
    tags=[{"name": "gateway", "description": "accounts, tokens, jobs"}],
)


def gateway_document(*, server_url: str = "/") -> dict[str, Any]:
    """The gateway's own document (the base the aggregate merges every service's into)."""
    doc = API.document() | {"servers": [{"url": server_url}]}
    doc["components"]["securitySchemes"]["bearerAuth"]["description"] = (
        "an access token from /api/v1/auth/login (a JWT), or a personal API key (rf_live_…) from "
        "/api/v1/auth/keys; a read-scoped key may only GET and HEAD"
    )
    return doc
