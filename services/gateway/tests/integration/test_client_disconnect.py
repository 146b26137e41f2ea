"""A viewer who seeks or closes the player hangs up mid-download: that is not a server error (issue 14 item 9)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from common.testing.http import hang_up_mid_download, requests_counted, serving
from common.testing.waiting import wait_for
from gateway.app import create_app
from gateway.config import GatewaySettings

Served = tuple[str, int, aiohttp.ClientSession]
GatewayTo = Callable[[str], contextlib.AbstractAsyncContextManager[Served]]


@pytest.fixture
def gateway_to(
    gateway_settings: GatewaySettings,
    fake_upstream: Callable[..., Awaitable[TestServer]],
    caplog: pytest.LogCaptureFixture,
) -> GatewayTo:
    """The gateway proxying one upstream (a fake) served as production serves it: ``(host, port, client)``."""
    caplog.set_level(logging.INFO)

    @contextlib.asynccontextmanager
    async def served(name: str) -> AsyncIterator[Served]:
        upstream = str((await fake_upstream(name)).make_url("")).rstrip("/")
        app = create_app(gateway_settings.with_(**{f"upstream_{name}": upstream}))
        async with serving(app) as (host, port), aiohttp.ClientSession() as client:
            yield host, port, client

    return served


def _counts() -> tuple[float, float]:
    """The gateway's requests counted as 499 and as 5xx so far."""
    return requests_counted("gateway", status="499"), requests_counted("gateway", status="5")


async def test_a_viewer_closing_mid_download_is_a_499_not_a_5xx(
    gateway_to: GatewayTo, caplog: pytest.LogCaptureFixture
) -> None:
    closed_before, errors_before = _counts()
    async with gateway_to("streaming") as (host, port, client):
        with capture_logs() as logs:
            for _ in range(3):  # the proxy is mid-way through streaming the upstream's answer
                head = await hang_up_mid_download(host, port, "/play/v1/big.ts?token=t", after_bytes=1 << 20)
                assert head.startswith(b"HTTP/1.1 200")
            await wait_for(
                lambda: requests_counted("gateway", status="499") >= closed_before + 3, message="three 499s"
            )
        # the gateway still serves the next viewer in full
        async with client.get(f"http://{host}:{port}/play/v1/big.ts?token=t") as r:
            assert r.status == 200 and len(await r.read()) == 32 << 20
    assert requests_counted("gateway", status="499") == closed_before + 3
    assert requests_counted("gateway", status="5") == errors_before  # nothing for the 5xx alert
    assert not [e for e in logs if e["log_level"] != "info" or "exc_info" in e], (
        logs
    )  # no traceback, no warning
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], caplog.records
    closed = [e for e in logs if e["event"] == "http.client_closed"]
    assert len(closed) == 3 and all(e["path"] == "/play/v1/big.ts" for e in closed)


async def test_an_uploader_giving_up_mid_upload_is_a_499_not_a_502(
    gateway_to: GatewayTo, caplog: pytest.LogCaptureFixture
) -> None:
    closed_before, errors_before = _counts()
    async with gateway_to("ingest") as (host, port, client):
        token = (await register_and_login_at(client, f"http://{host}:{port}"))["access_token"]
        with capture_logs() as logs:
            _, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"POST /api/v1/videos HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: video/mp4\r\nContent-Length: {64 << 20}\r\n\r\n".encode()
            )
            for _ in range(16):  # 4 MiB of 64, then the user closes the tab
                writer.write(b"\0" * (256 << 10))
                await writer.drain()
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            writer.close()
            await wait_for(lambda: requests_counted("gateway", status="499") > closed_before, message="a 499")
    assert requests_counted("gateway", status="5") == errors_before
    events = [(e["event"], e["log_level"]) for e in logs if e["event"] != "http.request"]
    assert events == [("http.client_closed", "info")], logs
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], caplog.records


async def register_and_login_at(client: aiohttp.ClientSession, base: str) -> dict[str, str]:
    """A fresh account's token pair from the gateway at ``base``."""
    body = {"email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"}
    async with client.post(f"{base}/api/v1/auth/register", json=body) as r:
        assert r.status == 201
    async with client.post(f"{base}/api/v1/auth/login", json=body) as r:
        assert r.status == 200
        pair: dict[str, str] = await r.json()
        return pair
