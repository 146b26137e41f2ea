"""Gateway test fixtures: a migrated schema, a key directory, settings, running gateways and fake upstreams."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common.testing.bus import unique_name
from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.keys import generate_key

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

SEEN: web.AppKey[list[dict[str, Any]]] = web.AppKey("seen", list)

GatewayFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


#: the paths the gateway serves itself to the web page (accounts, sessions, the job read model and its socket)
GATEWAY_PATHS = (
    "/api/v1/auth/register",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
    "/api/v1/me",
    "/api/v1/jobs",
    "/api/v1/ws",
)


@pytest.fixture
async def gateway_schema(make_schema: Callable[..., Awaitable[str]]) -> str:
    """A fresh, migrated gateway schema."""
    return await make_schema("gateway", MIGRATIONS)


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """A key directory with one Ed25519 key."""
    d = tmp_path / "keys"
    generate_key(d)
    return d


@pytest.fixture
def gateway_settings(gateway_schema: str, keys_dir: Path, database_url: str) -> GatewaySettings:
    """Settings for an in-process gateway on the test schema (cheap Argon2 so the suite stays quick)."""
    return GatewaySettings(
        database_url=database_url,
        db_schema=gateway_schema,
        db_pool_max=4,
        gateway_keys_dir=str(keys_dir),
        amqp_url="memory://",
        bus_queue=unique_name("gateway"),
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        rate_limiter="memory",
        rate_limit_key_prefix=unique_name("rl"),
        environment="test",
        log_level="WARNING",
        upstream_connect_timeout_s=1.0,
        upstream_read_timeout_s=5.0,
    )


@pytest.fixture
def start_gateway(gateway_settings: GatewaySettings, aiohttp_client: Any) -> GatewayFactory:
    """Start a gateway over real HTTP: ``await start_gateway(settings=..., bus=..., limiter=...)``.

    The settings (so the schema) come first: the servers stop before the schema is dropped.
    """

    async def start(
        settings: GatewaySettings | None = None, **kw: Any
    ) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = await aiohttp_client(
            create_app(settings or gateway_settings, **kw)
        )
        return client

    return start


async def register_and_login(
    client: TestClient[web.Request, web.Application],
    email: str | None = None,
    password: str = "correct horse battery",
) -> dict[str, Any]:
    """Register a fresh account and log in; the token pair plus ``user``."""
    email = email or f"{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status == 201, await r.text()
    user = await r.json()
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status == 200, await r.text()
    pair: dict[str, Any] = await r.json()
    pair["user"] = user
    pair["password"] = password
    return pair


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def fake_upstream_app(name: str, *, paths: tuple[str, ...] = ()) -> web.Application:
    """A real HTTP upstream: echoes what it received (body counted and hashed, never kept), serves an OpenAPI doc."""
    app = web.Application()
    seen: list[dict[str, Any]] = []
    app[SEEN] = seen

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "openapi": "3.1.0",
                "info": {"title": name, "version": "1"},
                "paths": {
                    p: {
                        "parameters": [
                            {"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
                            for seg in p.split("/")
                            if seg.startswith("{")
                        ],
                        "get": {
                            "operationId": f"{name}_{i}",
                            "responses": {
                                "200": {
                                    "description": "ok",
                                    "content": {
                                        "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                                    },
                                }
                            },
                        },
                    }
                    for i, p in enumerate(paths)
                }
                | {"/healthz": {"get": {"responses": {"200": {"description": "ok"}}}}},
                "components": {"schemas": {"Thing": {"type": "object", "title": f"{name} thing"}}},
            }
        )

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "3")))
        return web.json_response({"service": name})

    async def ranged(request: web.Request) -> web.StreamResponse:
        data = bytes(range(256)) * 16  # 4096 bytes
        rng = request.headers.get("Range", "")
        if rng.startswith("bytes="):
            start_s, _, end_s = rng[6:].partition("-")
            start, end = int(start_s), int(end_s or len(data) - 1)
            part = data[start : end + 1]
            return web.Response(
                status=206,
                body=part,
                headers={
                    "Content-Range": f"bytes {start}-{end}/{len(data)}",
                    "Accept-Ranges": "bytes",
                    "Content-Type": "video/mp2t",
                },
            )
        return web.Response(body=data, headers={"Accept-Ranges": "bytes", "Content-Type": "video/mp2t"})

    async def echo(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
        info = {
            "service": name,
            "method": request.method,
            "path_qs": request.raw_path,
            "headers": {k: v for k, v in request.headers.items()},
            "body_len": size,
            "body_sha256": digest.hexdigest(),
        }
        seen.append(info)
        return web.json_response(
            info,
            headers={
                "Connection": "keep-alive, X-Upstream-Secret",
                "X-Upstream-Secret": "hop",
                "Keep-Alive": "timeout=5",
                "X-Upstream": name,
            },
        )

    async def big(request: web.Request) -> web.StreamResponse:
        # 32 MiB, produced only as fast as it is read (a long segment or an original being downloaded)
        chunk = b"\x47" * (256 * 1024)
        resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        resp.content_length = 128 * len(chunk)
        await resp.prepare(request)
        for _ in range(128):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/play/{video}/big.ts", big)
    app.router.add_get("/play/{video}/slow", slow)
    app.router.add_get("/api/v1/videos/{id}/slow", slow)
    app.router.add_get("/play/{video}/seg.ts", ranged)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
def fake_upstream(aiohttp_server: Any) -> Callable[..., Awaitable[TestServer]]:
    """Start a fake upstream service: ``server = await fake_upstream("ingest", paths=(...))``."""

    async def start(name: str, *, paths: tuple[str, ...] = ()) -> TestServer:
        server: TestServer = await aiohttp_server(fake_upstream_app(name, paths=paths))
        return server

    return start


@pytest.fixture
async def not_http_upstream() -> AsyncIterator[int]:
    """The port of an upstream that reads a request and answers something that is not HTTP."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"this is not http\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
