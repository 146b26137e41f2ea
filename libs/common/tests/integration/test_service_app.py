"""A service app built by the kit, over real HTTP: problems, request ids, auth, and readiness of real dependencies."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from common.auth import require_user
from common.http import Problem, json_response, read_json
from common.service import POOL, build_app
from common.settings import ServiceSettings
from common.testing.auth import TokenFactory
from common.testing.bus import proxied_url
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
    amqp_proxy: TcpProxy,
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
        amqp_url=proxied_url(amqp_url, amqp_proxy),
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


def _sample(name: str, dependency: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "demo", "dependency": dependency}) or 0.0


async def test_database_down_is_503_service_unavailable_logged_once_per_outage(
    client: TestClient, db_proxy: TcpProxy, token_factory: TokenFactory
) -> None:
    """Issue 14 item 5: with the database unreachable every request is a 503 with Retry-After, not a 500 with a
    traceback; the outage is logged when it starts and when it ends, and counted; /readyz is 503 meanwhile."""
    headers = token_factory.headers(uuid.uuid4())
    assert (await client.post("/items", json={"name": "a"}, headers=headers)).status == 201
    refused_before = _sample("reelforge_dependency_unavailable_total", "postgres")
    outages_before = _sample("reelforge_dependency_outages_total", "postgres")
    with capture_logs() as logs:
        db_proxy.pause()
        db_proxy.cut()
        for _ in range(5):
            r = await client.post("/items", json={"name": "a"}, headers=headers)
            problem = await r.json()
            assert (r.status, problem["code"]) == (503, "service.unavailable")
            assert r.content_type == "application/problem+json" and r.headers["Retry-After"] == "5"
            assert "Traceback" not in await r.text() and "127.0.0.1" not in await r.text()
        r = await client.get("/readyz?verbose=1")
        body = await r.json()
        assert r.status == 503 and body["status"] == "unavailable"
        assert body["checks"]["postgres"].startswith("error: ") and body["checks"]["rabbitmq"] == "ok"
        assert body["dependencies"]["postgres"]["status"] == "down"
        assert body["dependencies"]["postgres"]["critical"] is True
        assert _sample("reelforge_dependency_up", "postgres") == 0
        db_proxy.resume()

        async def ready() -> bool:
            return (await client.get("/readyz")).status == 200

        await wait_for(ready, timeout=15, interval=0.2)
        assert (await client.post("/items", json={"name": "a"}, headers=headers)).status == 201
    events = [e["event"] for e in logs]
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    assert "http.unhandled" not in events
    [down] = [e for e in logs if e["event"] == "dependency.down"]
    [up] = [e for e in logs if e["event"] == "dependency.up"]
    assert down["dependency"] == up["dependency"] == "postgres" and up["outage_s"] > 0
    assert _sample("reelforge_dependency_unavailable_total", "postgres") - refused_before == 5
    assert _sample("reelforge_dependency_outages_total", "postgres") - outages_before == 1
    assert _sample("reelforge_dependency_up", "postgres") == 1


async def test_broker_down_leaves_the_process_ready_and_serving(
    client: TestClient, amqp_proxy: TcpProxy, token_factory: TokenFactory
) -> None:
    """Issue 14 item 5: /readyz means "can serve"; RabbitMQ away is a degradation (the outbox buffers)."""
    headers = token_factory.headers(uuid.uuid4())
    with capture_logs() as logs:
        amqp_proxy.pause()
        amqp_proxy.cut()
        r = await client.get("/readyz?verbose=1")
        body = await r.json()
        assert r.status == 200, body
        assert body["status"] == "degraded" and body["degraded"] == ["rabbitmq"]
        assert body["checks"]["postgres"] == "ok" and body["checks"]["rabbitmq"].startswith("error: ")
        assert body["dependencies"]["rabbitmq"]["status"] == "down"
        assert body["dependencies"]["rabbitmq"]["critical"] is False
        assert _sample("reelforge_dependency_up", "rabbitmq") == 0
        for _ in range(3):
            assert (await client.post("/items", json={"name": "a"}, headers=headers)).status == 201
            assert (await client.get("/readyz")).status == 200
        amqp_proxy.resume()

        async def healthy() -> bool:
            return (await (await client.get("/readyz")).json())["status"] == "ok"

        await wait_for(healthy, timeout=30, interval=0.5)
    assert len([e for e in logs if e["event"] == "dependency.down"]) == 1
    assert len([e for e in logs if e["event"] == "dependency.up"]) == 1
    assert _sample("reelforge_dependency_up", "rabbitmq") == 1


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
