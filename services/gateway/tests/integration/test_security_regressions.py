"""Security regressions found in review, each against a real gateway over real HTTP (and real Redis/Postgres)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from gateway.config import UPSTREAMS, GatewaySettings

from ..conftest import SEEN, GatewayFactory, bearer, register_and_login

Upstreams = dict[str, TestServer]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _raw(host: str, port: int, request: bytes) -> bytes:
    """Send ``request`` as written (no client library normalizes the target) and read the answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_an_upstream_error_never_logs_the_callers_tokens(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, not_http_upstream: int
) -> None:
    # an upstream that answers something that is not HTTP: aiohttp raises ClientResponseError, whose repr
    # carries the whole request (URL with ?token=, and the Authorization header)
    client = await start_gateway(
        gateway_settings.with_(upstream_streaming=f"http://127.0.0.1:{not_http_upstream}")
    )
    pair = await register_and_login(client)
    playback_token = "pbt.SECRET-PLAYBACK-TOKEN-VALUE"
    with capture_logs() as logs:
        r = await client.get("/api/v1/webhooks", headers=bearer(pair["access_token"]))
        assert r.status == 502 and (await r.json())["code"] == "upstream.bad_gateway"
        r = await client.get(f"/play/v1/master.m3u8?token={playback_token}")
        assert r.status == 502
    failures = [e for e in logs if e["event"] == "proxy.bad_gateway"]
    assert len(failures) == 2  # still logged, with the cause
    assert all("ClientResponseError" in e["error"] for e in failures)
    text = repr(logs)
    signature = pair["access_token"].rsplit(".", 1)[1]
    assert signature not in text and "SECRET-PLAYBACK-TOKEN-VALUE" not in text


async def test_absolute_form_request_targets_are_refused_not_half_proxied(
    start_gateway: GatewayFactory,
    gateway_settings: GatewaySettings,
    fake_upstream: Callable[..., Awaitable[TestServer]],
) -> None:
    # `GET http://host/play/... HTTP/1.1` is routed by its path (/play: no JWT), but the raw target used to be
    # appended to the upstream base URL ("http://streaming:8002http://host/play/..."): an unauthenticated 500
    # with a traceback per request, and a URL whose authority the client writes
    upstreams: Upstreams = {name: await fake_upstream(name) for name in UPSTREAMS}
    urls = {f"upstream_{n}": str(s.make_url("")).rstrip("/") for n, s in upstreams.items()}
    client = await start_gateway(gateway_settings.with_(**urls))
    pair = await register_and_login(client)
    assert client.host is not None and client.port is not None
    targets = [
        ("http://example.com/play/v1/master.m3u8?token=t", ""),
        (
            f"http://x@127.0.0.1:{_free_port()}/api/v1/videos",
            f"Authorization: Bearer {pair['access_token']}\r\n",
        ),
        ("x://h/api/v1/billing/balance", f"Authorization: Bearer {pair['access_token']}\r\n"),
    ]
    with capture_logs() as logs:
        for target, auth in targets:
            answer = await _raw(
                client.host,
                client.port,
                f"GET {target} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n".encode(),
            )
            assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 400 Bad Request", (target, answer[:200])
            assert b'"code":"request.bad_path"' in answer, target
    assert not [e for e in logs if e["event"] == "http.unhandled"]
    assert not any(upstreams[n].app[SEEN] for n in UPSTREAMS)  # nothing went upstream
    # origin-form requests are proxied as before
    r = await client.get("/play/v1/master.m3u8?token=t")
    assert r.status == 200 and (await r.json())["path_qs"] == "/play/v1/master.m3u8?token=t"


async def test_readyz_names_the_failing_dependency_without_its_address_or_credentials(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    # /readyz is reachable through the public ingress; its error strings used to carry the exception text
    # (hosts, ports, users, URLs) of whatever failed
    port = _free_port()  # nothing listens: Redis is "down"
    settings = gateway_settings.with_(
        rate_limiter="redis", redis_url=f"redis://:hunter2pw@127.0.0.1:{port}/0"
    )
    client = await start_gateway(settings)
    with capture_logs() as logs:
        r = await client.get("/readyz")
    body: dict[str, Any] = await r.json()
    assert r.status == 200 and body["degraded"] == ["redis"]  # still serving: the limiter falls back
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("error: ")  # which dependency, and the kind of failure
    text = await r.text()
    assert str(port) not in text and "127.0.0.1" not in text and "hunter2pw" not in text
    # operators still get the detail, in the log (without a password)
    [failed] = [e for e in logs if e["event"] == "dependency.down"]
    assert failed["dependency"] == "redis" and str(port) in failed["error"]
    assert "hunter2pw" not in repr(logs)


async def test_malformed_requests_get_a_4xx_with_a_code_never_a_500(start_gateway: GatewayFactory) -> None:
    """Issue 14: JSON nested 50,000 deep (a RecursionError in the decoder) and a NUL in a query parameter."""
    from yarl import URL

    gw = await start_gateway()
    deep = b'{"email": "a@b.c", "password": "x", "extra": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    with capture_logs() as logs:
        for path in ("/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh"):
            r = await gw.post(path, data=deep, headers={"Content-Type": "application/json"})
            assert (r.status, (await r.json())["code"]) == (400, "request.malformed_json"), path
        pair = await register_and_login(gw)
        r = await gw.get(URL("/api/v1/jobs?kind=a%00b", encoded=True), headers=bearer(pair["access_token"]))
        assert (r.status, (await r.json())["code"]) == (400, "request.invalid_characters")
    assert not [e for e in logs if e["event"] == "http.unhandled"]
