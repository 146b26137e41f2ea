"""`make up`'s promise, as a test: every service process starts, is alive, ready, and exposes metrics."""

from __future__ import annotations

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
