"""Issue 14 item 5 through a real service: ingest's API with its database, then its broker, out of reach."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
from structlog.testing import capture_logs

from common.events.ingest import VideoIngested
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.bus import RabbitBusFactory, proxied_url
from common.testing.netproxy import TcpProxy
from common.testing.waiting import wait_for
from ingest.config import IngestSettings

from ..conftest import AppFactory


def _upload(mp4: Path) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", mp4.read_bytes(), filename="clip.mp4", content_type="video/mp4")
    return form


async def test_database_down_is_503_and_broker_down_still_serves(
    start_app: AppFactory,
    settings: IngestSettings,
    database_url: str,
    amqp_url: str,
    db_proxy: TcpProxy,
    amqp_proxy: TcpProxy,
    rabbit_bus_factory: RabbitBusFactory,
    fs_store: ObjectStore,
    token_factory: TokenFactory,
    mp4: Path,
) -> None:
    bus = await rabbit_bus_factory(url=proxied_url(amqp_url, amqp_proxy))
    listener = await rabbit_bus_factory()
    seen: list[Any] = []

    async def collect(event: Any, delivery: Any) -> None:
        seen.append(event)

    await listener.subscribe(f"listen-{uuid.uuid4().hex[:8]}", [VideoIngested], collect)
    api = await start_app(
        settings.with_(database_url=db_proxy.url_via(database_url)), bus=bus, store=fs_store
    )
    headers = token_factory.headers(uuid.uuid4())
    assert (await api.get("/api/v1/videos", headers=headers)).status == 200

    # the database away: every request is a 503 with Retry-After, the outage logged once, nothing unhandled
    with capture_logs() as logs:
        db_proxy.pause()
        db_proxy.cut()
        for _ in range(3):
            r = await api.get("/api/v1/videos", headers=headers)
            assert (r.status, (await r.json())["code"]) == (503, "service.unavailable")
            assert r.headers["Retry-After"] == "5"
        assert (await api.get("/readyz")).status == 503
        db_proxy.resume()
        await wait_for(lambda: _status(api, "/readyz", 200), timeout=15, interval=0.2)
    assert [e["dependency"] for e in logs if e["event"] == "dependency.down"] == ["postgres"]
    assert not [e for e in logs if e["event"] == "http.unhandled"]

    # the broker away: still ready, an upload is accepted, its event waits in the outbox and goes out later
    amqp_proxy.pause()
    amqp_proxy.cut()
    r = await api.get("/readyz")
    assert r.status == 200 and (await r.json())["degraded"] == ["rabbitmq"]
    r = await api.post("/api/v1/videos", data=_upload(mp4), headers=headers)
    assert r.status == 201, await r.text()
    video = await r.json()
    amqp_proxy.resume()
    await wait_for(lambda: [e for e in seen if str(e.video_id) == video["id"]], timeout=60, interval=0.2)


async def _status(api: Any, path: str, status: int) -> bool:
    return bool((await api.get(path)).status == status)
