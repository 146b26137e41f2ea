"""The request middleware: a client that hangs up while its answer is written is counted as 499 and logged at info
(a player seeking or closing is not a server error); a connection error that is not the client's stays a 500."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from common.http import create_base_app
from common.testing.http import hang_up_mid_download, requests_counted, serving
from common.testing.waiting import wait_for

SERVICE = "closedemo"


async def segment(request: web.Request) -> web.StreamResponse:
    """A long answer written chunk by chunk, as streaming's /play handler writes a segment."""
    resp = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
    resp.content_length = 64 << 20
    await resp.prepare(request)
    chunk = b"\x47" * (256 << 10)
    for _ in range(256):
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def reset_elsewhere(request: web.Request) -> web.Response:
    """A handler whose own outgoing connection is reset: the server's fault, with the client still there."""
    raise ConnectionResetError("reset by a database or another service")


async def test_a_hang_up_is_499_at_info_and_a_reset_elsewhere_is_still_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_base_app(service=SERVICE)
    app.router.add_get("/segment.ts", segment)
    app.router.add_get("/reset", reset_elsewhere)
    closed, errors = requests_counted(SERVICE, status="499"), requests_counted(SERVICE, status="5")
    caplog.set_level(logging.INFO)
    async with serving(app) as (host, port):
        with capture_logs() as logs:
            await hang_up_mid_download(host, port, "/segment.ts", after_bytes=1 << 20)
            await wait_for(lambda: requests_counted(SERVICE, status="499") == closed + 1, message="a 499")
        assert requests_counted(SERVICE, status="5") == errors
        assert [(e["event"], e["log_level"]) for e in logs if e["event"] != "http.request"] == [
            ("http.client_closed", "info")
        ]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], caplog.records

        with capture_logs() as logs:
            async with aiohttp.ClientSession() as client, client.get(f"http://{host}:{port}/reset") as r:
                assert r.status == 500 and (await r.json())["code"] == "internal.error"
        assert requests_counted(SERVICE, status="5") == errors + 1
        assert [(e["event"], e["log_level"]) for e in logs if e["event"] != "http.request"] == [
            ("http.unhandled", "error")
        ]
