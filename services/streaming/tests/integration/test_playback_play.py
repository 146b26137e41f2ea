"""/play/<id>/...: token-gated, rewritten playlists a real player can follow, bytes with ranges, CORS, no escapes.

Runs against both object stores (filesystem and S3 on moto).
"""

from __future__ import annotations

import io
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import av
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from common.storage import ObjectStore
from common.storage.fs import FileStore
from common.storage.s3 import S3Store
from common.testing.auth import TokenFactory
from streaming.playback import PlaybackKeys, sign_token

from .conftest import HLS_CONTENT_TYPES, AppFactory, SeedStream

Client = TestClient[web.Request, web.Application]
BASE = "http://play.example.test"


async def _playback(
    client: Client, video_id: uuid.UUID, owner_id: uuid.UUID, tf: TokenFactory
) -> dict[str, Any]:
    resp = await client.post(f"/api/v1/videos/{video_id}/playback", headers=tf.headers(owner_id))
    assert resp.status == 201, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


def _local(url: str) -> str:
    assert url.startswith(BASE + "/play/")
    return url.removeprefix(BASE)


def _child_uris(playlist: str) -> list[str]:
    uris = re.findall(r'URI="([^"]*)"', playlist)
    return uris + [ln.strip() for ln in playlist.splitlines() if ln.strip() and not ln.startswith("#")]


def _join(playlist_url: str, uri: str) -> str:
    return str(URL(playlist_url).join(URL(uri, encoded=True)))


async def _get(client: Client, url: str, **kw: Any) -> tuple[aiohttp.ClientResponse, bytes]:
    resp = await client.get(URL(url, encoded=True), **kw)
    return resp, await resp.read()


PlayFactory = Callable[..., Awaitable[tuple[Any, Client, dict[str, Any]]]]


@pytest.fixture
def play(app_factory: AppFactory, seed_stream: SeedStream, token_factory: TokenFactory) -> PlayFactory:
    """``await play(store, **setting_changes)``: a seeded stream, the app, and its owner's playback session."""

    async def make(store: ObjectStore, **changes: Any) -> tuple[Any, Client, dict[str, Any]]:
        s = await seed_stream(store)
        client = await app_factory(store, **changes)
        return s, client, await _playback(client, s.video_id, s.owner_id, token_factory)

    return make


async def test_a_player_follows_every_uri_and_decodes_every_rendition(
    play: PlayFactory, store: ObjectStore
) -> None:
    _, client, pb = await play(store)
    master_url = _local(pb["hls_url"])
    resp, body = await _get(client, master_url)
    assert resp.status == 200
    assert resp.content_type == "application/vnd.apple.mpegurl"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers["Cache-Control"].startswith("private, max-age=")
    master = body.decode()
    children = _child_uris(master)
    assert children and all(f"token={pb['token']}" in u for u in children)

    declared = re.findall(r"RESOLUTION=(\d+)x(\d+)[^\n]*\n([^\n]+)", master)
    assert len(declared) == 2
    for w, h, variant in declared:
        variant_url = _join(master_url, variant)
        resp, body = await _get(client, variant_url)
        assert resp.status == 200 and resp.content_type == HLS_CONTENT_TYPES["m3u8"]
        uris = _child_uris(body.decode())
        assert uris[0].startswith("init.mp4?token=") and len(uris) >= 3
        media = b""
        for uri in uris:
            r, data = await _get(client, _join(variant_url, uri))
            assert r.status == 200, uri
            assert r.content_type == HLS_CONTENT_TYPES[uri.split("?")[0].rsplit(".", 1)[1]]
            assert r.headers["Cache-Control"] == "private, max-age=86400"
            assert r.headers["Accept-Ranges"] == "bytes"
            media += data
        with av.open(io.BytesIO(media), "r") as container:
            frames = list(container.decode(video=0))
        assert len(frames) >= 70  # 3 s at 25 fps, every segment decodes
        assert (frames[0].width, frames[0].height) == (int(w), int(h))

    # the subtitle group: playlist rewritten, the WebVTT itself served as text/vtt, untouched
    subs_url = _join(master_url, next(u for u in children if u.startswith("subs/")))
    resp, body = await _get(client, subs_url)
    (vtt_uri,) = _child_uris(body.decode())
    resp, vtt = await _get(client, _join(subs_url, vtt_uri))
    assert resp.status == 200 and resp.content_type == "text/vtt" and b"Hello sprite.jpg" in vtt


async def test_dash_manifest_and_thumbnails_carry_the_token(play: PlayFactory, store: ObjectStore) -> None:
    _, client, pb = await play(store)
    mpd_url = _local(pb["dash_url"])
    resp, body = await _get(client, mpd_url)
    assert resp.status == 200 and resp.content_type == "application/dash+xml"
    mpd = body.decode()
    init = re.search(r'initialization="([^"]+)"', mpd)
    media = re.search(r'media="([^"]+)"', mpd)
    assert (
        init
        and media
        and f"token={pb['token']}" in init.group(1)
        and f"token={pb['token']}" in media.group(1)
    )
    for template in (init.group(1), media.group(1)):
        uri = template.replace("$RepresentationID$", "0").replace("$Number%05d$", "00001")
        r, data = await _get(client, _join(mpd_url, uri))
        assert r.status == 200 and r.content_type == "video/iso.segment" and data

    resp, body = await _get(client, _local(pb["thumbnails_vtt_url"]))
    assert resp.status == 200 and resp.content_type == "text/vtt"
    cues = [ln for ln in body.decode().splitlines() if ln.startswith("sprite.jpg")]
    assert len(cues) == 2 and all(f"?token={pb['token']}#xywh=" in c for c in cues)
    sprite_url = _join(_local(pb["thumbnails_vtt_url"]), cues[0].split("#")[0])
    resp, sprite = await _get(client, sprite_url)
    assert resp.status == 200 and resp.content_type == "image/jpeg" and sprite[:2] == b"\xff\xd8"
    resp, poster = await _get(client, _local(pb["poster_url"]))
    assert resp.status == 200 and resp.content_type == "image/jpeg" and poster[:2] == b"\xff\xd8"


PROTECTED = [
    "master.m3u8",
    "src/index.m3u8",
    "src/init.mp4",
    "src/seg_00001.m4s",
    "subs/en.vtt",
    "manifest.mpd",
    "thumbs/poster.jpg",
    "thumbs/sprite.jpg",
    "thumbs/thumbnails.vtt",
]


async def test_missing_expired_forged_foreign_and_unknown_key_tokens_get_403_everywhere(
    app_factory: AppFactory, seed_stream: SeedStream, fs_store: FileStore, token_factory: TokenFactory
) -> None:
    s = await seed_stream(fs_store)
    other = await seed_stream(fs_store, owner_id=s.owner_id)
    client = await app_factory(fs_store)
    good = (await _playback(client, s.video_id, s.owner_id, token_factory))["token"]
    keys = PlaybackKeys.parse(["k2:second-playback-secret-0123456789"])
    later = int(time.time()) + 600
    tokens = {
        "none": ("", "playback.token_invalid"),
        "expired": (
            sign_token(keys, video_id=s.video_id, expires_at=int(time.time()) - 1),
            "playback.token_expired",
        ),
        "tampered": (good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB"), "playback.token_invalid"),
        "other video": (
            (await _playback(client, other.video_id, other.owner_id, token_factory))["token"],
            "playback.token_invalid",
        ),
        "unknown kid": (
            sign_token(
                PlaybackKeys.parse(["k9:second-playback-secret-0123456789"]),
                video_id=s.video_id,
                expires_at=later,
            ),
            "playback.token_invalid",
        ),
    }
    for path in PROTECTED:
        ok = await client.get(f"/play/{s.video_id}/{path}", params={"token": good})
        assert ok.status == 200, path
        for name, (token, code) in tokens.items():
            resp = await client.get(f"/play/{s.video_id}/{path}", params={"token": token} if token else None)
            assert resp.status == 403, (path, name)
            doc = await resp.json(content_type=None)
            assert resp.content_type == "application/problem+json" and doc["code"] == code, (path, name)
            # a player on another origin can read why, and nothing caches the refusal
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert resp.headers["Cache-Control"] == "no-store"
    # operators see refusals by reason, and bytes served
    metrics = await (await client.get("/metrics")).text()
    assert 'reelforge_streaming_play_denied_total{code="playback.token_expired"}' in metrics
    assert 'reelforge_streaming_play_bytes_total{kind="media"}' in metrics


async def test_ranges_head_and_conditional_requests(
    play: PlayFactory,
    store: ObjectStore,
    hls_tree: dict[str, bytes],
) -> None:
    s, client, pb = await play(store)
    token = pb["token"]
    url = f"/play/{s.video_id}/src/seg_00001.m4s"
    whole = hls_tree["src/seg_00001.m4s"]
    size = len(whole)

    resp = await client.get(url, params={"token": token}, headers={"Range": "bytes=10-109"})
    assert resp.status == 206 and await resp.read() == whole[10:110]
    assert resp.headers["Content-Range"] == f"bytes 10-109/{size}" and resp.headers["Content-Length"] == "100"

    resp = await client.get(url, params={"token": token}, headers={"Range": "bytes=-50"})
    assert resp.status == 206 and await resp.read() == whole[-50:]

    resp = await client.get(url, params={"token": token}, headers={"Range": f"bytes={size}-"})
    assert resp.status == 416 and resp.headers["Content-Range"] == f"bytes */{size}"

    resp = await client.head(url, params={"token": token})
    assert resp.status == 200 and resp.headers["Content-Length"] == str(size)
    assert resp.content_type == "video/iso.segment" and await resp.read() == b""

    resp = await client.get(url, params={"token": token})
    etag = resp.headers["ETag"]
    assert await resp.read() == whole
    resp = await client.get(url, params={"token": token}, headers={"If-None-Match": etag})
    assert resp.status == 304
    # If-Range with a stale validator: the whole file, not a fragment of a different version
    resp = await client.get(
        url, params={"token": token}, headers={"Range": "bytes=0-9", "If-Range": '"stale"'}
    )
    assert resp.status == 200 and await resp.read() == whole

    resp = await client.options(
        url,
        headers={
            "Origin": "https://player.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "Range" in resp.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize(
    "raw",
    [
        "..%2F..%2Foriginals%2F{vid}%2Fsource.mp4",
        "%2e%2e/%2e%2e/originals/{vid}/source.mp4",
        "src/..%2F..%2F..%2Fstreams%2F{other}%2Fmaster.m3u8",
        "thumbs/..%2F..%2F..%2Foriginals%2F{vid}%2Fsource.mp4",
        "%2Fetc%2Fpasswd",
        "src%5C..%5C..%5Cmaster.m3u8",
        "src/seg_00001.m4s%00.m3u8",
    ],
)
async def test_no_path_escapes_the_video(
    raw: str,
    app_factory: AppFactory,
    seed_stream: SeedStream,
    fs_store: FileStore,
    token_factory: TokenFactory,
) -> None:
    s = await seed_stream(fs_store)
    other = await seed_stream(fs_store, owner_id=s.owner_id)
    await fs_store.put(f"originals/{s.video_id}/source.mp4", b"the private original")
    client = await app_factory(fs_store)
    token = (await _playback(client, s.video_id, s.owner_id, token_factory))["token"]
    path = raw.format(vid=s.video_id, other=other.video_id)
    resp = await client.get(URL(f"/play/{s.video_id}/{path}?token={token}", encoded=True))
    # a NUL byte is refused before any handler runs (common.http: 400 request.invalid_characters)
    assert resp.status == (400 if "%00" in raw else 404)
    assert b"private original" not in await resp.read()


async def test_a_missing_file_is_404_even_with_a_good_token(
    play: PlayFactory,
    fs_store: FileStore,
) -> None:
    s, client, pb = await play(fs_store)
    token = pb["token"]
    for path in ("src/seg_09999.m4s", "1080p/index.m3u8"):
        resp = await client.get(f"/play/{s.video_id}/{path}", params={"token": token})
        assert resp.status == 404


async def test_redirect_mode_sends_segments_to_short_lived_presigned_urls(
    play: PlayFactory,
    s3_store: S3Store,
    hls_tree: dict[str, bytes],
) -> None:
    s, client, pb = await play(s3_store, playback_delivery="redirect", playback_presign_ttl_s=120)
    token = pb["token"]
    resp = await client.get(
        f"/play/{s.video_id}/src/seg_00001.m4s", params={"token": token}, allow_redirects=False
    )
    assert resp.status == 302
    location = resp.headers["Location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=120" in location
    async with aiohttp.ClientSession() as http, http.get(location) as direct:
        assert direct.status == 200 and await direct.read() == hls_tree["src/seg_00001.m4s"]
    # the redirect is still token-gated, and playlists are always served (rewritten) by us
    resp = await client.get(f"/play/{s.video_id}/src/seg_00001.m4s", allow_redirects=False)
    assert resp.status == 403
    resp = await client.get(
        f"/play/{s.video_id}/src/index.m3u8", params={"token": token}, allow_redirects=False
    )
    assert resp.status == 200 and f"seg_00001.m4s?token={token}" in await resp.text()


async def test_redirect_mode_on_the_filesystem_store_proxies(
    play: PlayFactory,
    fs_store: FileStore,
    hls_tree: dict[str, bytes],
) -> None:
    s, client, pb = await play(fs_store, playback_delivery="redirect")
    token = pb["token"]
    resp = await client.get(
        f"/play/{s.video_id}/src/seg_00001.m4s", params={"token": token}, allow_redirects=False
    )
    assert resp.status == 200 and await resp.read() == hls_tree["src/seg_00001.m4s"]
