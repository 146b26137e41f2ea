"""Streaming end to end (both halves): an ingested video becomes ready; a player fetches it over HTTP with a
playback token and PyAV decodes every rendition; bad tokens get 403 on playlists and segments; the owner's
webhook receiver gets a correctly signed ``stream.ready``, retried while it fails."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
import uuid
from typing import Any

import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from common.events.ingest import VideoIngested
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.media import make_video
from common.testing.waiting import wait_for
from streaming.play_api import PLAYBACK_KEYS
from streaming.playback import sign_token
from streaming.webhooks import verify_signature

pytestmark = pytest.mark.timeout(240)

Client = TestClient[web.Request, web.Application]
BASE = "http://play.example.test"


def _attrs(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])}


def _uris(playlist: str) -> list[str]:
    return re.findall(r'URI="([^"]*)"', playlist) + [
        ln.strip() for ln in playlist.splitlines() if ln.strip() and not ln.startswith("#")
    ]


async def _fetch(client: Client, url: str) -> tuple[int, str, bytes]:
    resp = await client.get(URL(url, encoded=True))
    return resp.status, resp.content_type, await resp.read()


def _numbered(template: str, number: int) -> str:
    """A DASH media template with ``$Number$`` / ``$Number%05d$`` filled in."""
    return re.sub(r"\$Number(?:%0(\d+)d)?\$", lambda m: str(number).zfill(int(m.group(1) or 0)), template)


def _join(base: str, uri: str) -> str:
    return str(URL(base).join(URL(uri, encoded=True)))


async def _rendition_bytes(client: Client, playlist_url: str) -> bytes:
    status, ctype, body = await _fetch(client, playlist_url)
    assert status == 200 and ctype == "application/vnd.apple.mpegurl"
    media = b""
    for uri in _uris(body.decode()):
        assert "token=" in uri
        status, _, data = await _fetch(client, _join(playlist_url, uri))
        assert status == 200, uri
        media += data
    return media


async def test_ingested_video_plays_over_http_with_a_token_and_the_owner_is_notified(
    store: ObjectStore, media_env: Any, token_factory: TokenFactory, aiohttp_server: Any
) -> None:
    # a receiver that fails twice before it accepts
    received: list[tuple[dict[str, str], str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.text()))
        return web.Response(status=500 if len(received) <= 2 else 204)

    receiver_app = web.Application()
    receiver_app.router.add_post("/hooks/reelforge", hook)
    server: TestServer = await aiohttp_server(receiver_app, host="127.0.0.1")

    env = await media_env(
        store,
        public_base_url=BASE,
        webhook_allow_private=True,
        webhook_retry_base_s=0.2,
        webhook_retry_max_delay_s=1.0,
        webhook_dispatch_interval_s=0.05,
    )
    api: Client = env.api
    owner = uuid.uuid4()
    h = token_factory.headers(owner)
    resp = await api.post(
        "/api/v1/webhooks",
        json={"url": str(server.make_url("/hooks/reelforge")), "events": ["stream.ready"]},
        headers=h,
    )
    assert resp.status == 201
    webhook = await resp.json()

    # ingest publishes video.ingested.v1 after storing the original
    src = make_video(seconds=3, width=320, height=240, fps=25, audio=True)
    vid = uuid.uuid4()
    key = f"originals/{vid}/source.mp4"
    await store.put_file(key, src)
    await env.bus.publish(VideoIngested(video_id=vid, owner_id=owner, storage_key=key, duration_s=3.0))

    async def ready() -> bool:
        r = await api.get(f"/api/v1/videos/{vid}/stream", headers=h)
        return r.status == 200 and (await r.json())["status"] == "ready"

    await wait_for(ready, timeout=120, interval=0.2)

    resp = await api.post(f"/api/v1/videos/{vid}/playback", json={"expires_in": 600}, headers=h)
    assert resp.status == 201
    pb = await resp.json()
    token = pb["token"]
    master_url = pb["hls_url"].removeprefix(BASE)
    status_code, ctype, body = await _fetch(api, master_url)
    assert status_code == 200 and ctype == "application/vnd.apple.mpegurl"
    master = body.decode()
    lines = master.splitlines()
    variants = [
        (_attrs(ln), lines[i + 1]) for i, ln in enumerate(lines) if ln.startswith("#EXT-X-STREAM-INF:")
    ]
    groups = [_attrs(ln) for ln in lines if ln.startswith("#EXT-X-MEDIA:")]
    assert variants and all(f"token={token}" in uri for _, uri in variants)
    assert all(f"token={token}" in g["URI"] for g in groups if "URI" in g)

    # every rendition decodes from the HTTP URLs, at the resolution the master declares
    for attrs, uri in variants:
        media = await _rendition_bytes(api, _join(master_url, uri))
        with av.open(io.BytesIO(media), "r") as c:
            frames = list(c.decode(video=0))
        assert len(frames) == 75, uri  # 3 s at 25 fps
        assert f"{frames[0].width}x{frames[0].height}" == attrs["RESOLUTION"], uri
    for g in groups:
        if g.get("TYPE") == "AUDIO":
            media = await _rendition_bytes(api, _join(master_url, g["URI"]))
            with av.open(io.BytesIO(media), "r") as c:
                samples = sum(f.samples for f in c.decode(audio=0))
            assert samples >= 3 * 48000 * 0.9

    # 403 for the playlist and for a segment: no token, expired, another video's token
    first_variant = _join(master_url, variants[0][1])
    _, _, variant_body = await _fetch(api, first_variant)
    segment_url = _join(first_variant, _uris(variant_body.decode())[-1])
    keys = api.app[PLAYBACK_KEYS]
    bad = {
        "": "playback.token_invalid",
        sign_token(keys, video_id=vid, expires_at=int(time.time()) - 5): "playback.token_expired",
        sign_token(keys, video_id=uuid.uuid4(), expires_at=int(time.time()) + 600): "playback.token_invalid",
    }
    for url in (master_url, segment_url):
        bare = URL(url, encoded=True).without_query_params("token")
        for bad_token, code in bad.items():
            target = bare.update_query(token=bad_token) if bad_token else bare
            resp = await api.get(target)
            assert resp.status == 403, (url, code)
            assert (await resp.json(content_type=None))["code"] == code

    # the webhook: three signed deliveries of the same stream.ready, the first two answered 500
    await wait_for(lambda: len(received) >= 3, timeout=20)
    await asyncio.sleep(0.3)
    assert len(received) == 3
    for headers, body_text in received:
        assert verify_signature(webhook["secret"], body_text, headers["Reelforge-Signature"])
        doc = json.loads(body_text)
        assert doc["type"] == "stream.ready" and doc["data"]["video_id"] == str(vid)
        assert doc["data"]["status"] == "ready" and headers["Reelforge-Event-Id"] == doc["id"]
    assert len({b for _, b in received}) == 1

    async def delivered() -> list[dict[str, Any]]:
        r = await api.get(f"/api/v1/webhooks/{webhook['id']}/deliveries", headers=h)
        items: list[dict[str, Any]] = (await r.json())["items"]
        return items if items and items[0]["status"] == "delivered" else []

    (delivery,) = await wait_for(delivered, timeout=30)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 204]


async def test_dash_plays_over_http_with_the_token_in_every_segment_url(
    fs_store: ObjectStore, media_env: Any, token_factory: TokenFactory
) -> None:
    import xml.etree.ElementTree as ET

    env = await media_env(fs_store, public_base_url=BASE, streaming_dash=True)
    api: Client = env.api
    owner = uuid.uuid4()
    h = token_factory.headers(owner)
    vid = uuid.uuid4()
    key = f"originals/{vid}/source.mp4"
    await fs_store.put_file(key, make_video(seconds=3, width=320, height=240, fps=25, audio=True))
    await env.bus.publish(VideoIngested(video_id=vid, owner_id=owner, storage_key=key, duration_s=3.0))

    async def ready() -> bool:
        r = await api.get(f"/api/v1/videos/{vid}/stream", headers=h)
        return r.status == 200 and (await r.json())["status"] == "ready"

    await wait_for(ready, timeout=120, interval=0.2)
    pb = await (await api.post(f"/api/v1/videos/{vid}/playback", headers=h)).json()
    assert pb["dash_url"] is not None
    mpd_url = pb["dash_url"].removeprefix(BASE)
    status, ctype, body = await _fetch(api, mpd_url)
    assert status == 200 and ctype == "application/dash+xml"
    ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
    root = ET.fromstring(body)  # still well-formed XML after rewriting
    decoded = 0
    for aset in root.iter(f"{{{ns['m']}}}AdaptationSet"):
        for rep in aset.findall("m:Representation", ns):
            tmpl = rep.find("m:SegmentTemplate", ns)
            if tmpl is None:
                tmpl = aset.find("m:SegmentTemplate", ns)
            assert tmpl is not None
            rid = str(rep.get("id"))
            init_uri = tmpl.get("initialization", "").replace("$RepresentationID$", rid)
            media_tmpl = tmpl.get("media", "").replace("$RepresentationID$", rid)
            assert f"token={pb['token']}" in init_uri and f"token={pb['token']}" in media_tmpl
            status, _, media = await _fetch(api, _join(mpd_url, init_uri))
            assert status == 200
            number = int(tmpl.get("startNumber", "1"))
            while True:  # as a player walks the timeline; the first missing number ends it
                uri = _numbered(media_tmpl, number)
                status, _, chunk = await _fetch(api, _join(mpd_url, uri))
                if status == 404:
                    break
                assert status == 200
                media += chunk
                number += 1
            # and without the token the same segment is refused
            resp = await api.get(URL(_join(mpd_url, uri), encoded=True).without_query_params("token"))
            assert resp.status == 403
            if aset.get("contentType") == "video":
                with av.open(io.BytesIO(media), "r") as c:
                    assert len(list(c.decode(video=0))) == 75
                decoded += 1
    assert decoded >= 1
