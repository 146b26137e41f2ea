"""aiohttp building blocks: request ids, problem+json errors, metrics, health/readiness, JSON bodies."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from structlog.contextvars import bind_contextvars, reset_contextvars

from .errors import CodedError, CommonCode, NotFound, public_message
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
#: the body / query types the request's route declares (``common.openapi.Route``): what the document says
DECLARED_BODY: web.RequestKey[Any] = web.RequestKey("declared_body", object)
DECLARED_QUERY: web.RequestKey[Any] = web.RequestKey("declared_query", object)

_json = msgspec.json.Encoder()


class Problem(CodedError):
    """A ``CodedError`` spelled the HTTP way, status first: ``raise Problem(404, "video.not_found", "...")``."""

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
        super().__init__(code, detail, status=status, headers=headers, **extra)
        self.title = title

    @property
    def detail(self) -> str:
        """The human-readable explanation (RFC 9457 ``detail``)."""
        return self.message


def problem_body(error: CodedError, request_id: str = "") -> dict[str, Any]:
    """The RFC 9457 document of ``error`` (internal file paths in the message are masked)."""
    title = getattr(error, "title", None) or _TITLES.get(error.status, "Error")
    doc: dict[str, Any] = {
        "type": f"https://reelforge.dev/problems/{error.code}",
        "title": title,
        "status": error.status,
        "code": error.code,
        "detail": public_message(error.message),
    }
    if request_id:
        doc["request_id"] = request_id
    doc.update(error.extra)
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


def problem_response(error: CodedError, request_id: str = "") -> web.Response:
    """Render a coded error as ``application/problem+json``."""
    resp = web.Response(
        status=error.status, body=_json.encode(problem_body(error, request_id)), headers=error.headers
    )
    resp.content_type = PROBLEM_JSON
    return resp


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response encoded with msgspec (handles UUIDs, datetimes, Structs)."""
    resp = web.Response(status=status, body=_json.encode(data), headers=headers)
    resp.content_type = "application/json"
    return resp


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def reject_nul(value: str, *, where: str) -> str:
    """``value``, or a 400 ``request.invalid_characters``: a NUL byte can be stored nowhere (Postgres text)."""
    if "\x00" in value:
        raise Problem(400, CommonCode.INVALID_CHARACTERS, f"{where} contains a NUL character")
    return value


def decode_json(raw: bytes, type_: type[T]) -> T:
    """Decode and validate JSON into ``type_``: 400 ``request.malformed_json`` (also for absurd nesting),
    422 ``validation.invalid``, 400 ``request.invalid_characters`` for a NUL inside a string."""
    try:
        value = msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as e:
        raise Problem(422, CommonCode.VALIDATION, str(e)) from e
    except msgspec.DecodeError as e:
        raise Problem(400, CommonCode.MALFORMED_JSON, f"malformed JSON: {e}") from e
    except RecursionError as e:  # 50,000 nested arrays: the decoder's recursion guard, not our bug
        raise Problem(400, CommonCode.MALFORMED_JSON, "malformed JSON: nested too deeply") from e
    # "\u0000" is the only way a NUL gets into a JSON string; look closer only then
    if b"\\u0000" in raw and _has_nul(msgspec.to_builtins(value)):
        raise Problem(400, CommonCode.INVALID_CHARACTERS, "a string in the body contains a NUL character")
    return value


async def read_json(request: web.Request, type_: type[T]) -> T:
    """Decode and validate a JSON body into ``type_`` (a msgspec Struct); 400/415/422 problems otherwise."""
    if request.content_type not in ("application/json", "") and not request.content_type.endswith("+json"):
        raise Problem(415, CommonCode.UNSUPPORTED_MEDIA_TYPE, "send application/json")
    _check_declared(request, DECLARED_BODY, type_)
    raw = await request.read()
    return decode_json(raw or b"{}", type_)


def _check_declared(request: web.Request, key: web.RequestKey[Any], type_: Any) -> None:
    declared = request.get(key)
    if declared is not None and declared is not type_:
        # the route table documents another type than the handler reads: a bug, never a client's fault
        raise TypeError(f"{request.path}: the route declares {declared!r}, the handler reads {type_!r}")


def read_query(request: web.Request, type_: type[T]) -> T:
    """The query string as ``type_`` (a Struct of optional fields; strings converted); 422 ``validation.invalid``."""
    _check_declared(request, DECLARED_QUERY, type_)
    try:
        return msgspec.convert(dict(request.query), type=type_, strict=False)
    except msgspec.ValidationError as e:
        raise Problem(422, CommonCode.VALIDATION, f"query: {e}") from e


@contextlib.contextmanager
def _multipart_errors() -> Iterator[None]:
    try:
        yield
    except (ValueError, HttpProcessingError) as e:
        # no boundary, a boundary the body does not use, control characters in a part's headers, a cut body
        raise Problem(
            400, CommonCode.MALFORMED_MULTIPART, f"malformed multipart body: {str(e).splitlines()[0][:200]}"
        ) from e


async def form_parts(request: web.Request) -> AsyncIterator[BodyPartReader]:
    """The parts of a ``multipart/form-data`` body; a malformed envelope is 400 ``request.malformed_multipart``."""
    with _multipart_errors():
        reader = await request.multipart()
    while True:
        with _multipart_errors():
            part = await reader.next()
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise Problem(422, CommonCode.VALIDATION, "nested multipart bodies are not accepted")
        if part.name is not None:
            reject_nul(part.name, where="a form field name")
        yield part


async def part_chunks(part: BodyPartReader, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    """A part's bytes, ``size`` at a time (a body cut short is 400 ``request.malformed_multipart``)."""
    while True:
        with _multipart_errors():
            chunk = await part.read_chunk(size)
        if not chunk:
            return
        yield chunk


async def form_field(part: BodyPartReader, *, limit: int = 4096) -> str:
    """A small text field, stripped; 422 when longer than ``limit`` bytes, 400 when it holds a NUL."""
    data = bytearray()
    async for chunk in part_chunks(part, limit):
        data += chunk
        if len(data) > limit:
            raise Problem(422, CommonCode.VALIDATION, f"form field {part.name!r} is too long")
    return reject_nul(data.decode("utf-8", errors="replace"), where=f"form field {part.name!r}").strip()


def parse_uuid(value: str, *, what: str = "id") -> uuid.UUID:
    """A UUID from a path segment; 404 ``<what>.not_found`` when it is not one (ids are not probeable by shape)."""
    try:
        return uuid.UUID(value)
    except ValueError as e:
        raise NotFound(what) from e


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
            _reject_nul_in_url(request)
            resp = await handler(request)
        except CodedError as e:
            resp = problem_response(e, request_id)
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
            resp = problem_response(
                Problem(500, CommonCode.INTERNAL, "an internal error occurred"), request_id
            )
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


def _reject_nul_in_url(request: web.Request) -> None:
    if "\x00" in request.path:
        reject_nul(request.path, where="the path")
    if "%00" in request.query_string or "\x00" in request.query_string:
        for name, value in request.query.items():
            reject_nul(name + value, where=f"query parameter {name!r}")


def _problem_from_http(exc: web.HTTPException) -> Problem:
    codes = {
        404: CommonCode.NOT_FOUND,
        405: CommonCode.METHOD_NOT_ALLOWED,
        413: CommonCode.TOO_LARGE,
        400: CommonCode.BAD_REQUEST,
        415: CommonCode.UNSUPPORTED_MEDIA_TYPE,
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
