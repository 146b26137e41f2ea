"""The reverse proxy: which service owns a path, and streaming a request to it and its answer back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from common import registry
from common.http import REQUEST_ID, REQUEST_ID_HEADER, Problem, client_went_away
from common.logging import get_logger

log = get_logger(__name__)

#: RFC 9110 §7.6.1 connection-specific headers, never forwarded in either direction
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# set by the proxy itself rather than copied
_REQUEST_SKIP = HOP_BY_HOP | {
    "host",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-request-id",
}
_RESPONSE_SKIP = HOP_BY_HOP | {"content-length"}
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Route:
    """Where a path goes and how it is guarded."""

    upstream: str
    auth: bool = True  # a valid, unrevoked access token is required at the gateway
    rate_class: str = "default"


PAYMENT_WEBHOOK = "/api/v1/billing/payments/webhook"
#: the price list is public, like any pricing page (billing serves it without a token)
PRICES = "/api/v1/billing/prices"
#: a rendered short's download link is signed and short-lived: render checks it, no token is needed
RENDER_DOWNLOAD = re.compile(r"^/api/v1/renders/[^/]+/download$")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def route_for(method: str, path: str) -> Route | None:
    """The owning service of ``path`` (kept unchanged upstream, from ``common.registry``), or None."""
    if _under(path, "/play"):
        return Route("streaming", auth=False, rate_class="play")
    if path == PAYMENT_WEBHOOK and method in ("POST", "*"):
        return Route("billing", auth=False)  # authenticated by its HMAC signature at billing
    if path == PRICES and method in ("GET", "HEAD", "*"):
        return Route("billing", auth=False)
    if RENDER_DOWNLOAD.match(path) and method in ("GET", "HEAD", "*"):
        return Route("render", auth=False)
    owner = registry.owner_of(path)
    if owner is None or owner not in registry.UPSTREAMS:
        return None
    return Route(owner)


def check_path(raw_path: str) -> None:
    """Refuse paths an upstream could resolve differently from the gateway (dot segments, encoded slashes).

    Only origin-form targets (``/path?query``) are proxied: an absolute-form target (``GET http://h/api/...``)
    is routed by its path but its raw text is what would be appended to the upstream's base URL.
    """
    if not raw_path.startswith("/"):
        raise Problem(400, "request.bad_path", "the request target must be a path (origin-form)")
    lowered = raw_path.split("?", 1)[0].lower()
    if "%2f" in lowered or "%5c" in lowered or "\\" in lowered:
        raise Problem(400, "request.bad_path", "encoded slashes are not allowed in paths")
    segments = unquote(lowered).split("/")
    if any(s in (".", "..") for s in segments):
        raise Problem(400, "request.bad_path", "dot segments are not allowed in paths")


def describe_error(exc: BaseException) -> str:
    """An upstream client error for the logs, without the request it was about.

    ``repr`` of aiohttp's ``ClientResponseError`` carries the request's URL (a ``/play`` URL holds the playback
    token) and its headers (the caller's ``Authorization``): neither may reach a log line.
    """
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{type(exc).__name__}(status={exc.status}, message={exc.message!r})"
    if isinstance(exc, aiohttp.InvalidURL):
        return type(exc).__name__
    return repr(exc)


def connection_tokens(headers: CIMultiDict[str] | web.BaseRequest | aiohttp.ClientResponse) -> set[str]:
    """Header names listed in ``Connection`` (hop-by-hop for this connection only)."""
    hdrs = headers.headers if not isinstance(headers, CIMultiDict) else headers
    out: set[str] = set()
    for value in hdrs.getall("Connection", []):
        out.update(t.strip().lower() for t in value.split(",") if t.strip())
    return out


def client_ip(request: web.BaseRequest, *, trusted_hops: int) -> str:
    """The caller's address: the peer, or the X-Forwarded-For entry added by the outermost trusted proxy."""
    peer = request.remote or "unknown"
    if trusted_hops <= 0:
        return peer
    chain = [
        p.strip() for v in request.headers.getall("X-Forwarded-For", []) for p in v.split(",") if p.strip()
    ]
    if len(chain) >= trusted_hops:
        return chain[-trusted_hops]
    return chain[0] if chain else peer


def forward_headers(
    request: web.Request, *, trusted_hops: int, authorization: str | None = None
) -> CIMultiDict[str]:
    """The request headers an upstream sees: end-to-end ones, plus request id and X-Forwarded-*.

    ``authorization`` replaces the caller's ``Authorization`` ("" drops it; None keeps it as sent).
    """
    drop = _REQUEST_SKIP | connection_tokens(request)
    if authorization is not None:
        drop = drop | {"authorization"}
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        if name.lower() not in drop:
            out.add(name, value)
    if authorization:
        out["Authorization"] = authorization
    if request.content_length is not None:
        out["Content-Length"] = str(request.content_length)
    out[REQUEST_ID_HEADER] = request[REQUEST_ID]
    peer = request.remote or "unknown"
    # every X-Forwarded-For header, as client_ip reads them: upstreams see the chain the limiter judged
    prior = ", ".join(request.headers.getall("X-Forwarded-For", [])) if trusted_hops > 0 else ""
    out["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    proto = request.headers.get("X-Forwarded-Proto", "") if trusted_hops > 0 else ""
    out["X-Forwarded-Proto"] = proto or request.scheme
    out["X-Forwarded-Host"] = request.headers.get("X-Forwarded-Host", "") if trusted_hops > 0 else ""
    if not out["X-Forwarded-Host"]:
        out["X-Forwarded-Host"] = request.host
    return out


def make_session(
    *, connect_timeout_s: float, read_timeout_s: float, max_connections: int
) -> aiohttp.ClientSession:
    """The proxy's client: bodies untouched (no decompression), no cookie jar, no total timeout (long uploads)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, enable_cleanup_closed=True),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def forward(
    request: web.Request,
    *,
    session: aiohttp.ClientSession,
    base_url: str,
    upstream: str,
    trusted_hops: int,
    authorization: str | None = None,
) -> web.StreamResponse:
    """Stream ``request`` to ``base_url`` + the same path and query, and the answer back, chunk by chunk."""
    check_path(request.raw_path)
    url = URL(base_url + request.raw_path, encoded=True)
    headers = forward_headers(request, trusted_hops=trusted_hops, authorization=authorization)
    has_body = request.body_exists
    try:
        upstream_resp = await session.request(
            request.method,
            url,
            headers=headers,
            data=request.content if has_body else None,
            allow_redirects=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            compress=None,
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        if request.transport is None or request.transport.is_closing():
            # the uploader hung up: reading its body failed, which aiohttp reports as a write to the upstream
            raise ConnectionResetError("the client closed the connection") from exc
        raise upstream_problem(exc, upstream) from exc

    async with upstream_resp:
        resp_headers: CIMultiDict[str] = CIMultiDict()
        drop = _RESPONSE_SKIP | connection_tokens(upstream_resp)
        for name, value in upstream_resp.headers.items():
            if name.lower() not in drop:
                resp_headers.add(name, value)
        resp_headers[REQUEST_ID_HEADER] = request[REQUEST_ID]
        length = upstream_resp.content_length
        no_body = (
            request.method == "HEAD"
            or upstream_resp.status in (204, 304)
            or 100 <= upstream_resp.status < 200
        )
        if not no_body and length is not None and length <= _CHUNK:
            # a small answer of known size (most API answers): read it whole, as the streaming loop would read
            # its one chunk, so that status line, headers and body leave in one write instead of two
            return await _buffered(upstream_resp, resp_headers, upstream=upstream)
        return await _streamed(request, upstream_resp, resp_headers, upstream=upstream, no_body=no_body)


async def _streamed(
    request: web.Request,
    upstream_resp: aiohttp.ClientResponse,
    resp_headers: CIMultiDict[str],
    *,
    upstream: str,
    no_body: bool,
) -> web.StreamResponse:
    """Relay the upstream's answer chunk by chunk (a 2 GB download never sits in memory)."""
    length = upstream_resp.content_length
    resp = web.StreamResponse(status=upstream_resp.status, reason=upstream_resp.reason, headers=resp_headers)
    if length is not None and not no_body:
        resp.content_length = length
    elif no_body and length is not None:
        resp.headers["Content-Length"] = str(length)
    await resp.prepare(request)
    if not no_body:
        try:
            async for chunk in upstream_resp.content.iter_chunked(_CHUNK):
                await resp.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if client_went_away(request, exc):
                raise  # the viewer hung up (aiohttp's ClientConnectionResetError): not the upstream's fault
            # the status line is gone already: all a proxy can do is cut the client off mid-body
            log.warning("proxy.body_aborted", upstream=upstream, error=describe_error(exc))
            if request.transport is not None:
                request.transport.close()
            return resp
    await resp.write_eof()
    return resp


def upstream_problem(exc: BaseException, upstream: str) -> Problem:
    """Log a transport failure talking to ``upstream`` and name it: 503 unreachable, 504 too slow, 502 otherwise."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        log.warning("proxy.unavailable", upstream=upstream, error=describe_error(exc))
        return Problem(
            503, "upstream.unavailable", f"the {upstream} service is unavailable", upstream=upstream
        )
    if isinstance(exc, TimeoutError):  # aiohttp.ServerTimeoutError is one too
        log.warning("proxy.timeout", upstream=upstream)
        return Problem(
            504, "upstream.timeout", f"the {upstream} service did not answer in time", upstream=upstream
        )
    log.warning("proxy.bad_gateway", upstream=upstream, error=describe_error(exc))
    return Problem(502, "upstream.bad_gateway", f"the {upstream} service failed to answer", upstream=upstream)


async def _buffered(
    upstream_resp: aiohttp.ClientResponse, headers: CIMultiDict[str], *, upstream: str
) -> web.Response:
    try:
        body = await upstream_resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        # nothing has been sent yet, so a broken answer can still be reported as a problem
        raise upstream_problem(exc, upstream) from exc
    return web.Response(status=upstream_resp.status, reason=upstream_resp.reason, body=body, headers=headers)
