"""A service app built by the kit, over real HTTP: problems, request ids, auth, and readiness of real dependencies."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from common.auth import require_user
from common.http import Problem, json_response, read_json
from common.service import POOL, build_app
from common.settings import ServiceSettings
from common.testing.auth import TokenFactory
from common.testing.netproxy import TcpProxy
from common.testing.waiting import wait_for


class Item(msgspec.Struct):
    name: str
    count: int = 1


async def create_item(request: web.Request) -> web.Response:
    user = await require_user(request)
    item = await read_json(request, Item)
    if item.count < 1:
        raise Problem(422, "validation.count", "count must be positive")
    async with request.app[POOL].acquire() as conn:
        schema = await conn.fetchval("SELECT current_schema()")
    return json_response({"owner": user.user_id, "name": item.name, "schema": schema}, status=201)


@pytest.fixture
async def client(
    database_url: str,
    amqp_url: str,
    fresh_schema: str,
    db_proxy: TcpProxy,
    token_factory: TokenFactory,
    tmp_path: Path,
    aiohttp_client,  # last: the app stops before its schema and proxy go away
) -> TestClient:
    dsn = db_proxy.url_via(database_url)
    tag = uuid.uuid4().hex[:10]
    settings = ServiceSettings(
        service="demo",
        database_url=dsn,
        db_schema=fresh_schema,
        amqp_url=amqp_url,
        bus_exchange=f"test.{tag}.events",
        bus_dlx=f"test.{tag}.dlx",
        storage_url=f"file://{tmp_path}",
    )
    app = build_app(settings, verifier=token_factory.verifier())
    app.router.add_post("/items", create_item)
    return await aiohttp_client(app)


async def test_health_and_ready_with_real_dependencies(client: TestClient) -> None:
    r = await client.get("/healthz")
    assert r.status == 200 and (await r.json())["status"] == "ok"
    r = await client.get("/readyz")
    body = await r.json()
    assert r.status == 200, body
    assert body["checks"] == {"postgres": "ok", "rabbitmq": "ok", "storage": "ok"}


async def test_readyz_is_503_while_the_database_is_unreachable(
    client: TestClient, db_proxy: TcpProxy
) -> None:
    db_proxy.pause()
    db_proxy.cut()
    r = await client.get("/readyz")
    body = await r.json()
    assert r.status == 503 and body["checks"]["postgres"].startswith("error")
    assert body["checks"]["rabbitmq"] == "ok"
    db_proxy.resume()

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await wait_for(ready, timeout=15, interval=0.2)


async def test_authenticated_json_request(client: TestClient, token_factory: TokenFactory) -> None:
    user = uuid.uuid4()
    r = await client.post("/items", json={"name": "a"}, headers=token_factory.headers(user))
    assert r.status == 201
    body = await r.json()
    assert body["owner"] == str(user) and body["schema"].startswith("t_")
    assert r.headers["X-Request-ID"]


async def test_request_id_is_propagated(client: TestClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "req-abc.123"})
    assert r.headers["X-Request-ID"] == "req-abc.123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["X-Request-ID"] != "bad id with spaces" and len(r.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "request.malformed_json"),
        (b'{"name": 5}', 422, "validation.invalid"),
        (b'{"name": "x", "count": 0}', 422, "validation.count"),
    ],
)
async def test_bad_input_gets_problem_json(
    client: TestClient, token_factory: TokenFactory, body: bytes, status: int, code: str
) -> None:
    headers = {
        **token_factory.headers(uuid.uuid4()),
        "Content-Type": "application/json",
        "X-Request-ID": "r1",
    }
    r = await client.post("/items", data=body, headers=headers)
    assert r.status == status
    assert r.content_type == "application/problem+json"
    doc = await r.json()
    assert doc["code"] == code and doc["status"] == status and doc["request_id"] == "r1"


async def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    r = await client.get("/nope")
    assert r.status == 404 and (await r.json())["code"] == "not_found"
    r = await client.delete("/items")
    assert r.status == 405 and r.content_type == "application/problem+json"


async def test_oversized_body_is_413(client: TestClient, token_factory: TokenFactory) -> None:
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = await client.post(
        "/items",
        data=big,
        headers={**token_factory.headers(uuid.uuid4()), "Content-Type": "application/json"},
    )
    assert r.status == 413 and (await r.json())["code"] == "request.too_large"


async def test_metrics_count_requests(client: TestClient) -> None:
    await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    assert 'reelforge_http_requests_total{method="GET",route="/healthz",service="demo",status="200"}' in text
