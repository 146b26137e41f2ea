"""The running gateway serves, at /api/v1/openapi.json, the API document committed as web/openapi.json (which the
web client is typed from): the document merged from every live service equals the one generated offline
(tests/architecture/test_committed_openapi.py checks the committed file against the code)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from common.testing.openapi import canonical, drift

from .stack import Stack

pytestmark = pytest.mark.xdist_group("e2e")
COMMITTED = Path(__file__).resolve().parents[2] / "web" / "openapi.json"


async def test_the_gateway_serves_the_committed_api_document(
    e2e_stack: Stack, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{e2e_stack.gateway_url}/api/v1/openapi.json") as r:
        assert r.status == 200
        served = await r.json()
    assert not served.get("x-unavailable"), served.get("x-unavailable")  # every service answered
    committed = json.loads(COMMITTED.read_text())
    assert canonical(served) == canonical(committed), (
        "web/openapi.json (first) differs from what the gateway serves (second): run `make openapi` and commit it\n  "
        + "\n  ".join(drift(committed, served))
    )
