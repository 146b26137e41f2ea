"""The proxy against real HTTP upstreams: routing, header hygiene, streaming, error mapping, public routes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from common.testing.process import free_port
from gateway.config import UPSTREAMS, GatewaySettings

from ..conftest import SEEN, GatewayFactory, bearer, register_and_login

Upstreams = dict[str, TestServer]


@pytest.fixture
async def upstreams(fake_upstream: Callable[..., Awaitable[TestServer]]) -> Upstreams:
    """One fake service per upstream name."""
    return {name: await fake_upstream(name) for name in UPSTREAMS}


def _settings_for(settings: GatewaySettings, servers: Upstreams, **extra: Any) -> GatewaySettings:
    urls = {f"upstream_{n}": str(s.make_url("")).rstrip("/") for n, s in servers.items()}
    return settings.with_(**{**urls, **extra})


async def test_paths_reach_their_owning_service(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, upstreams: Upstreams
) -> None:
    client = await start_gateway(_settings_for(gateway_settings, upstreams))
    pair = await register_and_login(client)
    expected = {
        "/api/v1/videos": "ingest",
        "/api/v1/videos/abc?x=1&y=%20z": "ingest",
        "/api/v1/videos/abc/stream": "streaming",
        "/api/v1/videos/abc/playback": "streaming",
        "/api/v1/videos/abc/captions": "captions",
        "/api/v1/videos/abc/captions/fr.vtt": "captions",
        "/api/v1/imports/1": "ingest",
        "/api/v1/searches": "ingest",
        "/api/v1/webhooks": "streaming",
        "/api/v1/rankings/9/renders": "render",
        "/api/v1/analyses/batches": "analysis",
        "/api/v1/captions/7": "captions",
        "/api/v1/billing/balance": "billing",
    }
    for path, service in expected.items():
        r = await client.get(path, headers=bearer(pair["access_token"]))
        assert r.status == 200, path
        echo = await r.json()
        assert echo["service"] == service, path
        assert echo["path_qs"] == path  # path and query forwarded unchanged
    r = await client.get("/api/v1/nothing-here", headers=bearer(pair["access_token"]))
    assert r.status == 404 and (await r.json())["code"] == "not_found"
    r = await client.get("/api/v1/videosX", headers=bearer(pair["access_token"]))
    assert r.status == 404


async def test_headers_forwarded_and_hop_by_hop_dropped(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, upstreams: Upstreams
) -> None:
    client = await start_gateway(_settings_for(gateway_settings, upstreams))
    pair = await register_and_login(client)
    r = await client.post(
        "/api/v1/videos",
        data=b'{"title": "hi"}',
        headers={
            **bearer(pair["access_token"]),
            "Content-Type": "application/json",
            "X-Request-ID": "req-abc-123",
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "must not pass",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "TE": "trailers",
            "Upgrade": "h2c",
            "X-Forwarded-For": "6.6.6.6",
            "X-Custom": "kept",
        },
    )
    assert r.status == 200
    echo = await r.json()
    seen = {k.lower(): v for k, v in echo["headers"].items()}
    assert seen["authorization"] == f"Bearer {pair['access_token']}"
    assert seen["x-request-id"] == "req-abc-123" and r.headers["X-Request-ID"] == "req-abc-123"
    assert seen["x-custom"] == "kept" and seen["content-type"] == "application/json"
    for hop in ("x-secret-hop", "keep-alive", "proxy-authorization", "te", "upgrade"):
        assert hop not in seen, hop
    assert seen.get("connection", "keep-alive").lower() != "keep-alive, x-secret-hop"
    # no trusted proxy in front: a client-supplied X-Forwarded-For is replaced, not extended
    assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-forwarded-proto"] == "http"
    assert echo["body_len"] == len(b'{"title": "hi"}')
    # upstream hop-by-hop response headers are dropped, end-to-end ones kept
    assert "X-Upstream-Secret" not in r.headers and "Keep-Alive" not in r.headers
    assert r.headers["X-Upstream"] == "ingest"
    # a request id is generated when the caller sent none, and forwarded
    r = await client.get("/api/v1/videos", headers=bearer(pair["access_token"]))
    assert (await r.json())["headers"]["X-Request-ID"] == r.headers["X-Request-ID"]


async def test_protected_routes_need_a_token_public_ones_do_not(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, upstreams: Upstreams
) -> None:
    client = await start_gateway(_settings_for(gateway_settings, upstreams))
    r = await client.get("/api/v1/videos")
    assert r.status == 401 and (await r.json())["code"] == "auth.missing_token"
    assert not upstreams["ingest"].app[SEEN]  # refused before anything reached the service

    r = await client.post(
        "/api/v1/billing/payments/webhook", json={"orderId": "o-1"}, headers={"X-Signature": "hmac"}
    )
    assert r.status == 200 and (await r.json())["service"] == "billing"
    r = await client.get("/api/v1/billing/payments/webhook")  # only the POST is public
    assert r.status == 401

    r = await client.get("/play/vid-1/master.m3u8?token=t")
    assert r.status == 200 and (await r.json())["service"] == "streaming"
    assert r.headers["RateLimit-Limit"] == str(gateway_settings.rate_limit_play)


async def test_play_ranges_are_streamed_through(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, upstreams: Upstreams
) -> None:
    client = await start_gateway(_settings_for(gateway_settings, upstreams))
    r = await client.get("/play/v/seg.ts?token=t", headers={"Range": "bytes=100-199"})
    assert r.status == 206
    assert r.headers["Content-Range"] == "bytes 100-199/4096" and r.headers["Content-Length"] == "100"
    assert await r.read() == (bytes(range(256)) * 16)[100:200]
    r = await client.get("/play/v/seg.ts?token=t")
    assert r.status == 200 and len(await r.read()) == 4096


async def test_bad_paths_are_refused(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, upstreams: Upstreams
) -> None:
    client = await start_gateway(_settings_for(gateway_settings, upstreams))
    pair = await register_and_login(client)
    for raw in (
        "/api/v1/videos/%2e%2e/%2e%2e/admin",
        "/api/v1/videos/a%2Fb",
        "/play/x/%2e%2e/secret",
        "/api/v1/videos/../../admin",
    ):
        # a raw request line, so no client library normalizes the path first
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            f"GET {raw} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {pair['access_token']}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        status_line = await reader.readline()
        writer.close()
        assert status_line.split()[1] in (b"400", b"404"), (raw, status_line)
    assert not any("admin" in s["path_qs"] or "secret" in s["path_qs"] for s in upstreams["ingest"].app[SEEN])


async def test_upload_body_is_streamed_intact(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, upstreams: Upstreams
) -> None:
    client = await start_gateway(_settings_for(gateway_settings, upstreams))
    pair = await register_and_login(client)
    chunk = bytes(range(256)) * 4096  # 1 MiB

    async def body() -> Any:
        for _ in range(8):
            yield chunk

    r = await client.put("/api/v1/videos/v1/original", data=body(), headers=bearer(pair["access_token"]))
    assert r.status == 200
    echo = await r.json()
    assert echo["body_len"] == 8 * len(chunk)
    assert echo["body_sha256"] == hashlib.sha256(chunk * 8).hexdigest()


async def test_upstream_failures_map_to_problems(
    start_gateway: GatewayFactory,
    gateway_settings: GatewaySettings,
    upstreams: Upstreams,
    not_http_upstream: int,
) -> None:
    settings = _settings_for(
        gateway_settings,
        upstreams,
        upstream_read_timeout_s=0.5,
        upstream_analysis=f"http://127.0.0.1:{free_port()}",  # nothing listens
        upstream_render=f"http://127.0.0.1:{not_http_upstream}",
    )
    client = await start_gateway(settings)
    pair = await register_and_login(client)
    h = bearer(pair["access_token"])
    r = await client.get("/api/v1/analyses", headers=h)
    assert r.status == 503 and (await r.json())["code"] == "upstream.unavailable"
    r = await client.get("/api/v1/videos/x/slow?s=3", headers=h)
    assert r.status == 504 and (await r.json())["code"] == "upstream.timeout"
    r = await client.get("/api/v1/rankings", headers=h)
    assert r.status == 502 and (await r.json())["code"] == "upstream.bad_gateway"
    assert r.content_type == "application/problem+json"


async def test_large_answers_stream_and_a_broken_small_answer_is_a_problem(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, upstreams: Upstreams
) -> None:
    big = bytes(range(256)) * 1200  # 300 KiB: more than one chunk, so it is streamed rather than read whole

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0]
        if b"/big" in request_line:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(big))
            for i in range(0, len(big), 50_000):
                writer.write(big[i : i + 50_000])
                await writer.drain()
                await asyncio.sleep(0.01)
        else:  # promises 1000 bytes, sends 500, hangs up
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" + b"x" * 500)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await start_gateway(
        _settings_for(gateway_settings, upstreams, upstream_render=f"http://127.0.0.1:{port}")
    )
    pair = await register_and_login(client)
    h = bearer(pair["access_token"])
    try:
        r = await client.get("/api/v1/rankings/big", headers=h)
        assert r.status == 200 and r.headers["Content-Length"] == str(len(big))
        assert await r.read() == big
        r = await client.get("/api/v1/rankings/cut", headers=h)
        assert r.status == 502 and (await r.json())["code"] == "upstream.bad_gateway"
        assert "X-Request-ID" in r.headers
    finally:
        server.close()
        await server.wait_closed()
