"""The aggregated OpenAPI document: merged from real upstreams, unreachable ones listed, always valid."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestServer
from openapi_spec_validator import validate

from gateway.config import GatewaySettings

from ..conftest import GATEWAY_PATHS, GatewayFactory


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def test_own_document_is_valid(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    r = await client.get("/openapi.json")
    doc = await r.json()
    validate(doc)
    for path in (*GATEWAY_PATHS, "/api/v1/jobs/{id}", "/api/v1/jobs/{id}/cancel", "/.well-known/jwks.json"):
        assert path in doc["paths"], path


async def test_aggregated_document_merges_reachable_services(
    start_gateway: GatewayFactory,
    gateway_settings: GatewaySettings,
    fake_upstream: Callable[..., Awaitable[TestServer]],
) -> None:
    ingest = await fake_upstream(
        "ingest", paths=("/api/v1/videos", "/api/v1/videos/{id}", "/api/v1/rankings")
    )
    streaming = await fake_upstream(
        "streaming", paths=("/api/v1/videos/{id}/stream", "/play/{video_id}/{file}")
    )
    dead = _dead_url()
    settings = gateway_settings.with_(
        upstream_ingest=str(ingest.make_url("")).rstrip("/"),
        upstream_streaming=str(streaming.make_url("")).rstrip("/"),
        upstream_captions=dead,
        upstream_analysis=dead,
        upstream_render=dead,
        upstream_billing=dead,
    )
    client = await start_gateway(settings)
    r = await client.get("/api/v1/openapi.json")  # public: no token needed
    assert r.status == 200
    doc = await r.json()
    validate(doc)
    assert doc["x-unavailable"] == ["analysis", "billing", "captions", "render"]
    assert {
        "/api/v1/videos",
        "/api/v1/videos/{id}",
        "/api/v1/videos/{id}/stream",
        "/play/{video_id}/{file}",
        "/api/v1/me",
    } <= set(doc["paths"])
    # a service cannot advertise paths the gateway routes elsewhere, nor its internal endpoints
    assert "/api/v1/rankings" not in doc["paths"] and "/healthz" not in doc["paths"]
    # both services define a different `Thing`: the second is renamed and its refs follow
    schemas = doc["components"]["schemas"]
    assert (
        schemas["Thing"]["title"] == "ingest thing"
        and schemas["streaming_Thing"]["title"] == "streaming thing"
    )
    stream_op = doc["paths"]["/api/v1/videos/{id}/stream"]["get"]
    ref = stream_op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/streaming_Thing"
