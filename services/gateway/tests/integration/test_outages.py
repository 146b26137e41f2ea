"""Issue 14 item 5 at the gateway: its database out of reach is a 503 with Retry-After, not a 500 with a traceback."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from common.testing.netproxy import TcpProxy
from common.testing.waiting import wait_for
from gateway.config import GatewaySettings

from ..conftest import GatewayFactory, bearer, register_and_login


async def test_the_gateway_answers_503_while_its_database_is_away(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, db_proxy: TcpProxy, database_url: str
) -> None:
    client = await start_gateway(gateway_settings.with_(database_url=db_proxy.url_via(database_url)))
    pair = await register_and_login(client)
    login = {"email": pair["user"]["email"], "password": pair["password"]}
    with capture_logs() as logs:
        db_proxy.pause()
        db_proxy.cut()
        answers: list[Any] = []
        for path, body in (("/api/v1/auth/login", login), ("/api/v1/auth/register", login)):
            r = await client.post(path, json=body)
            answers.append((r.status, (await r.json())["code"], r.headers.get("Retry-After")))
        r = await client.get("/api/v1/jobs", headers=bearer(pair["access_token"]))
        answers.append((r.status, (await r.json())["code"], r.headers.get("Retry-After")))
        assert answers == [(503, "service.unavailable", "5")] * 3
        assert (await client.get("/readyz")).status == 503
        db_proxy.resume()

        async def ready() -> bool:
            return (await client.get("/readyz")).status == 200

        await wait_for(ready, timeout=15, interval=0.2)
        assert (await client.post("/api/v1/auth/login", json=login)).status == 200
    assert [e["event"] for e in logs if e["event"].startswith("dependency.")] == [
        "dependency.down",
        "dependency.up",
    ]
    assert not [e for e in logs if e["event"] == "http.unhandled"]
