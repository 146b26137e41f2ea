"""`make up`'s promise, as a test: every service process starts, is alive, ready, and exposes metrics; `/` is the built app."""

from __future__ import annotations

import re

import aiohttp
import pytest

from .stack import Stack

pytestmark = pytest.mark.xdist_group("e2e")


async def test_every_process_is_healthy_ready_and_measured(e2e_stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        for name, proc in sorted(e2e_stack.procs.items()):
            base = f"http://127.0.0.1:{proc.port}"
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200, name
            async with http.get(f"{base}/readyz") as r:
                body = await r.json()
                assert r.status == 200 and body["status"] == "ok", (name, body)
            async with http.get(f"{base}/metrics") as r:
                assert r.status == 200 and "reelforge_http_requests_total" in await r.text(), name


async def test_the_gateway_serves_the_built_web_app_at_the_root(e2e_stack: Stack) -> None:
    """`make up` serves the built app (web/dist), not a stand-in: index.html loads its bundles from /assets/."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{e2e_stack.gateway_url}/") as r:
            assert r.status == 200, "the web app is not built: scripts/bootstrap.sh builds web/dist"
            assert r.headers["Content-Type"] == "text/html; charset=utf-8"
            page = await r.text()
        scripts = re.findall(r'<script[^>]* src="(/assets/[^"]+\.js)"', page)
        assert scripts, page
        async with http.get(f"{e2e_stack.gateway_url}{scripts[0]}") as r:
            assert r.status == 200 and r.content_type in ("application/javascript", "text/javascript")
            assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
