"""The stream API: a stream that is still processing."""

from __future__ import annotations

from common.storage import ObjectStore
from common.testing.auth import TokenFactory

from .conftest import AppFactory, SeedStream


async def test_processing_stream_shows_no_renditions_yet(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: ObjectStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store)
    s = await seed_stream(fs_store, status="processing", files=False, thumbs=False)
    resp = await client.get(f"/api/v1/videos/{s.video_id}/stream", headers=token_factory.headers(s.owner_id))
    doc = await resp.json()
    assert resp.status == 200
    assert doc["status"] == "processing" and doc["renditions"] == [] and doc["poster_url"] is None
    bad = await client.get("/api/v1/videos/not-a-uuid/stream", headers=token_factory.headers(s.owner_id))
    assert bad.status == 404
