"""aiohttp building blocks: request ids, problem+json errors, metrics, health/readiness, JSON bodies."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from structlog.contextvars import bind_contextvars, reset_contextvars

from .logging import get_logger
from .metrics import ERRORS, HTTP_LATENCY, HTTP_REQUESTS, metrics_handler

log = get_logger(__name__)
T = TypeVar("T")

REQUEST_ID_HEADER = "X-Request-ID"
#: the status counted for a request whose client hung up before its answer was written (nginx's 499)
CLIENT_CLOSED = 499
PROBLEM_JSON = "application/problem+json"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
#: ``scheme://user:password@`` in a URL (a DSN inside an error message): the password is never logged
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]*@")

ReadinessCheck = Callable[[], Awaitable[None]]
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
READINESS_CHECKS: web.AppKey[dict[str, ReadinessCheck]] = web.AppKey("readiness_checks", dict)
SERVICE_NAME: web.AppKey[str] = web.AppKey("service_name", str)

_json = msgspec.json.Encoder()


class Problem(Exception):
    """An RFC 9457 problem with a stable machine-readable ``code``; raise it anywhere in a handler."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self, request_id: str = "") -> dict[str, Any]:
        """The problem document."""
        doc: dict[str, Any] = {
            "type": f"https://reelforge.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if request_id:
            doc["request_id"] = request_id
        doc.update(self.extra)
        return doc


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem_response(problem: Problem, request_id: str = "") -> web.Response:
    """Render a problem as ``application/problem+json``."""
    resp = web.Response(
        status=problem.status, body=_json.encode(problem.body(request_id)), headers=problem.headers
    )
    resp.content_type = PROBLEM_JSON
    return resp


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response encoded with msgspec (handles UUIDs, datetimes, Structs)."""
    resp = web.Response(status=status, body=_json.encode(data), headers=headers)
    resp.content_type = "application/json"
    return resp


async def read_json(request: web.Request, type_: type[T]) -> T:
    """Decode and validate a JSON body into ``type_`` (a msgspec Struct); 400/415/422 problems otherwise."""
    if request.content_type not in ("application/json", "") and not request.content_type.endswith("+json"):
        raise Problem(415, "request.unsupported_media_type", "send application/json")
    raw = await request.read()
    if not raw:
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as e:
        raise Problem(422, "validation.invalid", str(e)) from e
    except msgspec.DecodeError as e:
        raise Problem(400, "request.malformed_json", f"malformed JSON: {e}") from e


def parse_uuid(value: str, *, what: str = "id") -> uuid.UUID:
    """A UUID from a path segment; 404 when it is not one (so ids are not enumerable by shape)."""
    try:
        return uuid.UUID(value)
    except ValueError as e:
        raise Problem(404, "not_found", f"no such {what}") from e


#: labelled metric children by (metric, label values): prometheus_client's ``.labels()`` validates, takes a lock
#: and hashes on every call. Bounded, because the method label comes from clients.
_CHILDREN_MAX = 2048
_children: dict[tuple[Any, ...], Any] = {}


def _labelled(metric: Any, *values: str) -> Any:
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = metric.labels(*values)
        if len(_children) < _CHILDREN_MAX:
            _children[key] = child
    return child


def _route_label(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def request_context_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Request id in/out, structured log context, problem rendering, metrics."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    tokens = bind_contextvars(request_id=request_id)
    service = request.app.get(SERVICE_NAME, "")
    started = time.perf_counter()
    status = 500
    try:
        try:
            resp = await handler(request)
        except Problem as p:
            resp = problem_response(p, request_id)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = problem_response(_problem_from_http(exc), request_id)
        except asyncio.CancelledError:
            status = 499
            raise
        except Exception as exc:
            if client_went_away(request, exc):
                log.info("http.client_closed", path=request.path, method=request.method)
                resp = web.Response(status=CLIENT_CLOSED)  # for the metrics: nobody is left to read it
                status = resp.status
                return resp
            ERRORS.labels(service, "http_handler").inc()
            log.exception("http.unhandled", path=request.path, method=request.method)
            resp = problem_response(Problem(500, "internal.error", "an internal error occurred"), request_id)
        status = resp.status
        resp.headers[REQUEST_ID_HEADER] = request_id
        return resp
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        route = _route_label(request)
        _labelled(HTTP_REQUESTS, service, request.method, route, str(status)).inc()
        _labelled(HTTP_LATENCY, service, request.method, route).observe(time.perf_counter() - started)
        reset_contextvars(**tokens)


def client_went_away(request: web.BaseRequest, exc: BaseException) -> bool:
    """``exc`` is the client hanging up while its answer was written (a player seeking or closing), not a fault."""
    transport = request.transport
    return isinstance(exc, ConnectionError) and (transport is None or transport.is_closing())


def _problem_from_http(exc: web.HTTPException) -> Problem:
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        413: "request.too_large",
        400: "request.bad",
        415: "request.unsupported_media_type",
    }
    detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
    return Problem(exc.status, codes.get(exc.status, f"http.{exc.status}"), detail or "")


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok", "service": request.app.get(SERVICE_NAME, "")})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: every dependency check passes within 3 s."""
    checks = request.app.get(READINESS_CHECKS, {})
    results: dict[str, str] = {}
    ok = True

    async def run(name: str, check: ReadinessCheck) -> None:
        nonlocal ok
        try:
            await asyncio.wait_for(check(), timeout=3)
            results[name] = "ok"
        except Exception as exc:
            ok = False
            # the message names hosts, ports, users, sometimes a whole URL: the log gets it, the (public)
            # answer only says which dependency failed and how
            detail = _URL_PASSWORD.sub(r"\1***@", f"{type(exc).__name__}: {exc}")[:500]
            log.warning("readyz.check_failed", check=name, error=detail)
            results[name] = f"error: {type(exc).__name__}"

    await asyncio.gather(*(run(n, c) for n, c in checks.items()))
    return json_response(
        {"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503
    )


def create_base_app(*, service: str, max_body_bytes: int = 1024 * 1024) -> web.Application:
    """An aiohttp app with the standard middleware and /healthz, /readyz, /metrics."""
    app = web.Application(middlewares=[request_context_middleware], client_max_size=max_body_bytes)
    app[SERVICE_NAME] = service
    app[READINESS_CHECKS] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    """Register a dependency check for /readyz."""
    app[READINESS_CHECKS][name] = check
