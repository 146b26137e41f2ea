"""POST /api/v1/videos/{id}/playback: owner only, playable streams only, clamped lifetime, absolute URLs."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from openapi_spec_validator import validate

from common.storage.fs import FileStore
from common.testing.auth import TokenFactory

from .conftest import AppFactory, SeedStream


async def test_owner_gets_a_token_and_absolute_urls(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    s = await seed_stream(fs_store)
    client = await app_factory(fs_store)
    resp = await client.post(
        f"/api/v1/videos/{s.video_id}/playback", json={}, headers=token_factory.headers(s.owner_id)
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    doc = await resp.json()
    token = doc["token"]
    base = f"http://play.example.test/play/{s.video_id}"
    assert doc["hls_url"] == f"{base}/master.m3u8?token={token}"
    assert doc["dash_url"] == f"{base}/manifest.mpd?token={token}"
    assert doc["poster_url"] == f"{base}/thumbs/poster.jpg?token={token}"
    assert doc["thumbnails_vtt_url"] == f"{base}/thumbs/thumbnails.vtt?token={token}"
    expires = datetime.fromisoformat(doc["expires_at"]).timestamp()
    assert abs(expires - (time.time() + 3600)) < 5 and doc["expires_in"] == 3600


async def test_playable_streams_get_tokens_and_missing_extras_are_null(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    s = await seed_stream(fs_store, status="playable", dash=False, thumbs=False)
    client = await app_factory(fs_store)
    resp = await client.post(
        f"/api/v1/videos/{s.video_id}/playback", headers=token_factory.headers(s.owner_id)
    )
    assert resp.status == 201
    doc = await resp.json()
    assert doc["hls_url"].endswith(f"/master.m3u8?token={doc['token']}")
    assert doc["dash_url"] is None and doc["poster_url"] is None and doc["thumbnails_vtt_url"] is None


async def test_lifetime_is_clamped_between_a_minute_and_a_day(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    s = await seed_stream(fs_store, files=False)
    client = await app_factory(fs_store)
    url = f"/api/v1/videos/{s.video_id}/playback"
    for asked, got in ((5, 60), (600, 600), (10**8, 86400)):
        resp = await client.post(url, json={"expires_in": asked}, headers=token_factory.headers(s.owner_id))
        assert (await resp.json())["expires_in"] == got
    resp = await client.post(url, json={"expires_in": "soon"}, headers=token_factory.headers(s.owner_id))
    assert resp.status == 422 and (await resp.json())["code"] == "validation.invalid"


async def test_other_users_and_unknown_videos_get_404(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    s = await seed_stream(fs_store, files=False)
    client = await app_factory(fs_store)
    for video, user in ((s.video_id, uuid.uuid4()), (uuid.uuid4(), s.owner_id)):
        resp = await client.post(f"/api/v1/videos/{video}/playback", headers=token_factory.headers(user))
        assert resp.status == 404
        assert (await resp.json())["code"] == "stream.not_found"
    resp = await client.post("/api/v1/videos/not-a-uuid/playback", headers=token_factory.headers(s.owner_id))
    assert resp.status == 404


async def test_a_video_still_processing_or_failed_is_not_ready(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    client = await app_factory(fs_store)
    for status in ("processing", "error"):
        s = await seed_stream(fs_store, status=status, files=False)
        resp = await client.post(
            f"/api/v1/videos/{s.video_id}/playback", headers=token_factory.headers(s.owner_id)
        )
        assert resp.status == 409
        doc = await resp.json()
        assert resp.content_type == "application/problem+json"
        assert doc["code"] == "stream.not_ready" and doc["stream_status"] == status


async def test_a_jwt_is_required(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore
) -> None:
    s = await seed_stream(fs_store, files=False)
    client = await app_factory(fs_store)
    resp = await client.post(f"/api/v1/videos/{s.video_id}/playback")
    assert resp.status == 401 and (await resp.json())["code"] == "auth.missing_token"
    resp = await client.post(
        f"/api/v1/videos/{s.video_id}/playback", headers={"Authorization": "Bearer not.a.jwt"}
    )
    assert resp.status == 401 and (await resp.json())["code"] == "auth.invalid_token"


async def test_openapi_documents_the_stream_and_delivery_paths_and_is_valid(
    app_factory: AppFactory, fs_store: FileStore
) -> None:
    client = await app_factory(fs_store)
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    stream = doc["paths"]["/api/v1/videos/{video_id}/stream"]["get"]
    assert set(stream["responses"]) >= {"200", "401", "404"}
    for path, methods in {
        "/api/v1/videos/{video_id}/playback": {"post"},
        "/play/{video_id}/{path}": {"get"},
        "/api/v1/webhooks": {"get", "post"},
        "/api/v1/webhooks/{webhook_id}": {"get", "delete"},
        "/api/v1/webhooks/{webhook_id}/enable": {"post"},
        "/api/v1/webhooks/{webhook_id}/deliveries": {"get"},
    }.items():
        assert methods <= set(doc["paths"][path]), path
    # every documented delivery route is really served (and vice versa)
    served = {r.resource.canonical for r in client.app.router.routes() if r.resource is not None}
    assert {
        "/api/v1/videos/{video_id}/playback",
        "/api/v1/webhooks",
        "/api/v1/webhooks/{webhook_id}",
        "/api/v1/webhooks/{webhook_id}/enable",
        "/api/v1/webhooks/{webhook_id}/deliveries",
    } <= served
