"""The stream API: the OpenAPI document and a stream that is still processing."""

from __future__ import annotations

import uuid
from typing import Any

from openapi_spec_validator import validate

from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from streaming import store as media_store


async def test_openapi_document_is_valid_and_lists_the_stream_path(
    app_factory: Any, fs_store: ObjectStore
) -> None:
    client = await app_factory(fs_store)
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    op = doc["paths"]["/api/v1/videos/{video_id}/stream"]["get"]
    assert set(op["responses"]) >= {"200", "401", "404"}


async def test_processing_stream_shows_no_renditions_yet(
    app_factory: Any, streaming_pool: Any, fs_store: ObjectStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store)
    vid, owner = uuid.uuid4(), uuid.uuid4()
    async with streaming_pool.acquire() as conn:
        await media_store.create_stream(
            conn,
            video_id=vid,
            owner_id=owner,
            source_key=f"originals/{vid}/a.mp4",
            duration_s=3.0,
            width=640,
            height=360,
            has_dash=False,
        )
    resp = await client.get(f"/api/v1/videos/{vid}/stream", headers=token_factory.headers(owner))
    doc = await resp.json()
    assert resp.status == 200
    assert doc["status"] == "processing" and doc["renditions"] == [] and doc["poster_url"] is None
    bad = await client.get("/api/v1/videos/not-a-uuid/stream", headers=token_factory.headers(owner))
    assert bad.status == 404
