"""aiohttp building blocks: request ids, problem+json errors, metrics, health/readiness, JSON bodies."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

import msgspec
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from structlog.contextvars import bind_contextvars, reset_contextvars

from .db import unreachable
from .errors import CodedError, CommonCode, NotFound, public_message
from .health import Check, Dependencies
from .logging import get_logger
from .metrics import ERRORS, HTTP_LATENCY, HTTP_REQUESTS, metrics_handler

log = get_logger(__name__)
T = TypeVar("T")

REQUEST_ID_HEADER = "X-Request-ID"
#: the status counted for a request whose client hung up before its answer was written (nginx's 499)
CLIENT_CLOSED = 499
PROBLEM_JSON = "application/problem+json"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
#: what a 503 ``service.unavailable`` asks a client to wait before it retries
UNAVAILABLE_RETRY_AFTER_S = 5

ReadinessCheck = Check
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
DEPENDENCIES: web.AppKey[Dependencies] = web.AppKey("dependencies", Dependencies)
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


_HASH_IN_THREAD = 64 * 1024


class BodyDigest:
    """The SHA-256 of a request as a retry would repeat it (``common.idempotency``): method, route, path
    parameters, then the body. A multipart body is hashed part by part (name, file name, content), as the handler
    streams it through ``form_parts``/``part_chunks``, so a retry with another boundary hashes the same and a 2 GB
    upload is never held to be hashed."""

    def __init__(self, request: web.Request) -> None:
        self._outer = hashlib.sha256()
        params = "&".join(f"{k}={v}" for k, v in sorted(request.match_info.items()))
        if request.query:  # options given in the query (a text/csv upload's) are part of what is repeated
            params += "?" + "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
        self._outer.update(f"{request.method} {_route_label(request)} {params}\n".encode())
        self._part: Any = None
        self._head = b""
        #: the multipart reader and its current part, while the handler reads them
        self.reader: MultipartReader | None = None
        self.current: BodyPartReader | None = None

    def start_part(self, part: BodyPartReader) -> None:
        """A new part begins."""
        self._close_part()
        self._head = _json.encode([part.name, part.filename])
        self._part, self.current = hashlib.sha256(), part

    def update(self, data: bytes) -> None:
        """Bytes of the current part (or of a whole non-multipart body)."""
        (self._part or self._outer).update(data)

    async def feed(self, data: bytes) -> None:
        """``update`` off the event loop for a large chunk (~1 ms per 256 KiB on a busy core; hashlib releases
        the GIL), so hashing a 2 GB upload does not stall the other requests."""
        if len(data) >= _HASH_IN_THREAD:
            await asyncio.to_thread(self.update, data)
        else:
            self.update(data)

    def _close_part(self) -> None:
        if self._part is not None:
            self._outer.update(self._head + b"\0" + self._part.digest())
            self._part = None

    def hexdigest(self) -> str:
        """The hash of everything fed so far."""
        self._close_part()
        return self._outer.hexdigest()


#: the digest of the request being handled, when its route is idempotent (set by ``common.idempotency``)
BODY_DIGEST: ContextVar[BodyDigest | None] = ContextVar("body_digest", default=None)


async def form_parts(request: web.Request) -> AsyncIterator[BodyPartReader]:
    """The parts of a ``multipart/form-data`` body; a malformed envelope is 400 ``request.malformed_multipart``."""
    with _multipart_errors():
        reader = await request.multipart()
    digest = BODY_DIGEST.get()
    if digest is not None:
        digest.reader = reader
    async for part in _next_parts(reader):
        yield part


async def _next_parts(reader: MultipartReader) -> AsyncIterator[BodyPartReader]:
    digest = BODY_DIGEST.get()
    while True:
        with _multipart_errors():
            part = await reader.next()
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise Problem(422, CommonCode.VALIDATION, "nested multipart bodies are not accepted")
        if part.name is not None:
            reject_nul(part.name, where="a form field name")
        if digest is not None:
            digest.start_part(part)
        yield part


async def drain_form(request: web.Request) -> None:
    """Read what the handler left of a multipart body (all of it if it read none), feeding ``BODY_DIGEST``."""
    digest = BODY_DIGEST.get()
    if digest is None or digest.reader is None:
        parts = form_parts(request)
    else:
        if digest.current is not None and not digest.current.at_eof():
            async for _ in part_chunks(digest.current):
                pass
        parts = _next_parts(digest.reader)
    async for part in parts:
        async for _ in part_chunks(part):
            pass


async def part_chunks(part: BodyPartReader, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    """A part's bytes, ``size`` at a time (a body cut short is 400 ``request.malformed_multipart``)."""
    digest = BODY_DIGEST.get()
    while True:
        with _multipart_errors():
            chunk = await part.read_chunk(size)
        if not chunk:
            return
        if digest is not None:
            await digest.feed(chunk)
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
            problem = _unavailable(request, exc) or _internal_error(request, service)
            resp = problem_response(problem, request_id)
        status = resp.status
        resp.headers[REQUEST_ID_HEADER] = request_id
        return resp
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        route = _route_label(request)
        elapsed = time.perf_counter() - started
        _labelled(HTTP_REQUESTS, service, request.method, route, str(status)).inc()
        _labelled(HTTP_LATENCY, service, request.method, route).observe(elapsed)
        _access_log(request, status, elapsed, request_id)
        reset_contextvars(**tokens)


def _internal_error(request: web.Request, service: str) -> Problem:
    ERRORS.labels(service, "http_handler").inc()
    log.exception("http.unhandled", path=request.path, method=request.method)
    return Problem(500, CommonCode.INTERNAL, "an internal error occurred")


def _unavailable(request: web.Request, exc: Exception) -> Problem | None:
    """503 ``service.unavailable`` when ``exc`` is the database being out of reach: logged once per outage
    (``dependency.down``, by ``Dependencies``), counted per refused request, never a traceback per request."""
    if not unreachable(exc):
        return None
    deps = request.app.get(DEPENDENCIES)
    if deps is not None:
        deps.mark_down("postgres", exc)
        deps.count_refusal("postgres")
    return Problem(
        503,
        CommonCode.UNAVAILABLE,
        "the service cannot reach its database; retry later",
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
    )


#: probes and scrapes hit every process every few seconds: their access lines are debug, not info
_PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _access_log(request: web.Request, status: int, elapsed_s: float, request_id: str) -> None:
    """One line per request: method, path (never the query: /play's carries a token), status, duration, id."""
    (log.debug if request.path in _PROBE_PATHS else log.info)(
        "http.request",
        method=request.method,
        path=request.path,
        status=status,
        duration_ms=round(elapsed_s * 1000, 1),
        request_id=request_id,
    )


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
    """Readiness means "can serve": 200 unless a critical dependency (the database) fails its check now.

    A degraded dependency (RabbitMQ: the outbox buffers; Redis: the limiter counts in-process) is listed under
    ``degraded`` with ``status: degraded`` and a 200. ``?verbose=1`` adds each dependency's state (``critical``,
    ``down_since``, ``outages``).
    """
    deps = request.app[DEPENDENCIES]
    await deps.check_all()
    ready = deps.ready()
    summary = deps.summary()
    degraded = sorted(name for name, state in summary.items() if state != "ok")
    body: dict[str, Any] = {
        "status": "unavailable" if not ready else "degraded" if degraded else "ok",
        "checks": summary,
        "degraded": degraded,
    }
    if request.query.get("verbose", "") not in ("", "0", "false"):
        body["dependencies"] = deps.detail()
    return json_response(body, status=200 if ready else 503)


def create_base_app(*, service: str, max_body_bytes: int = 1024 * 1024) -> web.Application:
    """An aiohttp app with the standard middleware and /healthz, /readyz, /metrics."""
    app = web.Application(middlewares=[request_context_middleware], client_max_size=max_body_bytes)
    app[SERVICE_NAME] = service
    app[DEPENDENCIES] = Dependencies(service)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    return app


def add_readiness_check(
    app: web.Application, name: str, check: ReadinessCheck, *, critical: bool = True
) -> None:
    """Register a dependency check for /readyz; not ``critical``: the process still serves while it fails."""
    app[DEPENDENCIES].add(name, check, critical=critical)
