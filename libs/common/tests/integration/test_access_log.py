"""Operators' logs: one access line per request, and a console log written to a file carries no colour codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from structlog.testing import capture_logs

from common.http import REQUEST_ID_HEADER, create_base_app
from common.testing.http import serving


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


async def test_every_request_gets_one_access_line_with_method_path_status_duration_and_request_id() -> None:
    app = create_base_app(service="accessdemo")
    app.router.add_get("/hello", hello)
    async with serving(app) as (host, port), aiohttp.ClientSession() as client:
        with capture_logs() as logs:
            async with client.get(f"http://{host}:{port}/hello?token=secret") as r:
                assert r.status == 200
                rid = r.headers[REQUEST_ID_HEADER]
            async with client.post(
                f"http://{host}:{port}/nowhere", headers={REQUEST_ID_HEADER: "abc-123"}
            ) as r:
                assert r.status == 404
            async with client.get(f"http://{host}:{port}/healthz") as r:
                assert r.status == 200
    lines = [e for e in logs if e["event"] == "http.request"]
    assert [(e["method"], e["path"], e["status"], e["request_id"], e["log_level"]) for e in lines] == [
        ("GET", "/hello", 200, rid, "info"),
        ("POST", "/nowhere", 404, "abc-123", "info"),
        ("GET", "/healthz", 200, lines[2]["request_id"], "debug"),  # probes: debug, not a line per scrape
    ]
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in lines)
    assert not any("secret" in str(e) for e in logs)  # the query (a /play token) is never logged


def test_a_console_log_redirected_to_a_file_has_no_colour_codes(tmp_path: Path) -> None:
    script = (
        "from common.logging import configure_logging, get_logger\n"
        "configure_logging(service='colours', fmt='console')\n"
        "get_logger().info('http.request', status=200)\n"
        "get_logger().error('something.failed', code='x')\n"
    )
    out = tmp_path / "service.log"
    with out.open("wb") as f:
        subprocess.run([sys.executable, "-c", script], stderr=f, stdout=f, check=True, timeout=60)
    text = out.read_text()
    assert "http.request" in text and "something.failed" in text
    assert "\x1b[" not in text, text
