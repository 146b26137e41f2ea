"""HTTP: ``POST /api/v1/videos/{id}/playback`` (owner, JWT) and the token-gated ``/play/{id}/...`` (no JWT)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiohttp import hdrs, web
from prometheus_client import Counter

from common.auth import require_user
from common.errors import CodedError, NotFound
from common.http import Problem, json_response, parse_uuid, read_json, read_query
from common.service import POOL, STORE, settings_of
from common.storage import InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore

from . import store as media_store
from .config import StreamingSettings
from .models import PlaybackRequest, PlaybackView, PlayQuery, StreamingCode
from .playback import (
    REWRITERS,
    PlaybackKeys,
    PlayPath,
    RangeNotSatisfiable,
    TokenError,
    clamp_ttl,
    parse_range,
    play_url,
    resolve_play_path,
    sign_token,
    verify_token,
)

PLAYBACK_KEYS: web.AppKey[PlaybackKeys] = web.AppKey("playback_keys", PlaybackKeys)
PLAY_BYTES = Counter(
    "reelforge_streaming_play_bytes_total", "Bytes served under /play", ["kind"]
)  # kind: playlist | media (redirected bytes are not counted: they flow from the bucket)
PLAY_DENIED = Counter("reelforge_streaming_play_denied_total", "Playback requests refused", ["code"])

PLAYABLE = frozenset({"playable", "ready"})


def _no_file() -> NotFound:
    """Every "no such file" under /play is the same answer, whatever the reason."""
    return NotFound("file")


CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges, ETag",
    "Timing-Allow-Origin": "*",
}
# Playlists may still change (progressive publish adds renditions, captions add a SUBTITLES group): short.
PLAYLIST_CACHE = "private, max-age=5"
# Bytes under a rendition never change once published, and the URL carries a per-viewer token: long, private.
SEGMENT_CACHE = "private, max-age=86400"


async def create_playback(request: web.Request) -> web.Response:
    """A signed, short-lived playback token and the HLS/DASH/poster/thumbnail URLs using it."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    # the body is optional: a bare POST asks for the default lifetime
    body = await read_json(request, PlaybackRequest) if request.can_read_body else PlaybackRequest()
    settings = settings_of(request, StreamingSettings)
    async with request.app[POOL].acquire() as conn:
        stream = await media_store.get_stream(conn, video_id=video_id)
    if stream is None or stream.owner_id != principal.user_id:
        raise NotFound("stream", "no such video")
    if stream.status not in PLAYABLE:
        raise Problem(
            409,
            StreamingCode.STREAM_NOT_READY,
            "the video failed to process" if stream.status == "error" else "the video is still processing",
            stream_status=stream.status,
        )
    ttl = clamp_ttl(
        body.expires_in,
        default=settings.playback_token_ttl_s,
        minimum=settings.playback_token_min_ttl_s,
        maximum=settings.playback_token_max_ttl_s,
    )
    expires_at = int(time.time()) + ttl
    token = sign_token(request.app[PLAYBACK_KEYS], video_id=video_id, expires_at=expires_at)
    base = settings.public_base_url
    return json_response(
        PlaybackView(
            video_id=video_id,
            token=token,
            expires_at=datetime.fromtimestamp(expires_at, UTC),
            expires_in=ttl,
            hls_url=play_url(base, video_id, "master.m3u8", token),
            dash_url=play_url(base, video_id, "manifest.mpd", token) if stream.has_dash else None,
            poster_url=play_url(base, video_id, "thumbs/poster.jpg", token) if stream.poster_key else None,
            thumbnails_vtt_url=(
                play_url(base, video_id, "thumbs/thumbnails.vtt", token)
                if stream.thumbnails_vtt_key
                else None
            ),
        ),
        status=201,
        headers={"Cache-Control": "no-store"},
    )


async def play_preflight(request: web.Request) -> web.Response:
    """CORS preflight for players on other origins (a ``Range`` header makes some requests non-simple)."""
    return web.Response(
        status=204,
        headers={
            **CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "Range, If-None-Match, If-Range",
            "Access-Control-Max-Age": "86400",
        },
    )


async def play(request: web.Request) -> web.StreamResponse:
    """Token-gated playback files (no JWT): playlists rewritten so every child URI carries the token."""
    try:
        return await _play(request)
    except CodedError as p:
        # errors must be readable by a player on another origin too, and never cached
        p.headers.update({**CORS, "Cache-Control": "no-store"})
        raise


async def _play(request: web.Request) -> web.StreamResponse:
    video_id = parse_uuid(request.match_info["video_id"], what="file")
    target = resolve_play_path(video_id, request.match_info["path"])
    if target is None:
        raise _no_file()
    token = read_query(request, PlayQuery).token
    try:
        verify_token(request.app[PLAYBACK_KEYS], token, video_id=video_id)
    except TokenError as e:
        PLAY_DENIED.labels(e.code).inc()
        raise
    # a token outlives a delete: the database (shared by every replica) says whether the video still exists
    async with request.app[POOL].acquire() as conn:
        if not await media_store.is_live(conn, video_id=video_id):
            raise _no_file()
    store = request.app[STORE]
    settings = settings_of(request, StreamingSettings)

    if target.rewrite is not None:
        return await _rewritten_playlist(store, target, target.rewrite, token)
    if settings.playback_delivery == "redirect":
        url = await store.presigned_url(target.key, expires_in=settings.playback_presign_ttl_s)
        if url is not None:
            # the redirect itself must not outlive the presigned URL it points to
            return web.Response(status=302, headers={**CORS, "Location": url, "Cache-Control": "no-store"})
    return await _serve_bytes(request, store, target)


async def _rewritten_playlist(store: ObjectStore, target: PlayPath, rewrite: str, token: str) -> web.Response:
    """The playlist at ``target``, rewritten by ``REWRITERS[rewrite]`` so every child URI carries ``token``."""
    try:
        text = (await store.read_bytes(target.key)).decode("utf-8")
    except (ObjectNotFound, InvalidKey) as e:
        raise _no_file() from e
    except UnicodeDecodeError as e:
        raise _no_file() from e
    body = REWRITERS[rewrite](text, token).encode()
    PLAY_BYTES.labels("playlist").inc(len(body))
    resp = web.Response(body=body, headers={**CORS, "Cache-Control": PLAYLIST_CACHE})
    resp.content_type = target.content_type
    if target.content_type.startswith("text/"):
        resp.charset = "utf-8"
    return resp


async def _serve_bytes(request: web.Request, store: ObjectStore, target: PlayPath) -> web.StreamResponse:
    """The stored bytes at ``target``, proxied with conditional (ETag) and range support."""
    info = await _stat(store, target.key)
    etag = f'"{info.etag}"' if info.etag else ""
    headers = _bytes_headers(target, info, etag)
    if etag and etag in _etags(request.headers.get(hdrs.IF_NONE_MATCH, "")):
        return web.Response(status=304, headers={k: v for k, v in headers.items() if k != hdrs.CONTENT_TYPE})

    byte_range = _byte_range(request, info.size, etag)
    if byte_range is None:
        start, end, status = 0, info.size - 1, 200
    else:
        (start, end), status = byte_range, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    stream = web.StreamResponse(status=status, headers=headers)
    stream.content_length = max(0, end - start + 1)
    await stream.prepare(request)
    has_body = request.method != hdrs.METH_HEAD and info.size > 0
    if not has_body or await _write_range(request, stream, store, target.key, start, end):
        await stream.write_eof()
    return stream


async def _stat(store: ObjectStore, key: str) -> ObjectInfo:
    """The stored object's metadata; a missing object or an invalid key is "no such file"."""
    try:
        info = await store.stat(key)
    except InvalidKey as e:
        raise _no_file() from e
    if info is None:
        raise _no_file()
    return info


def _bytes_headers(target: PlayPath, info: ObjectInfo, etag: str) -> dict[str, str]:
    """The headers of a 200/206/304 for ``target`` (``Content-Range`` aside)."""
    headers = {
        **CORS,
        "Cache-Control": SEGMENT_CACHE,
        "Accept-Ranges": "bytes",
        hdrs.CONTENT_TYPE: target.content_type,
    }
    if etag:
        headers["ETag"] = etag
    if info.last_modified is not None:
        headers["Last-Modified"] = info.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return headers


def _byte_range(request: web.Request, size: int, etag: str) -> tuple[int, int] | None:
    """The inclusive byte range the request asks for, or None for the whole file (416 if it cannot be served)."""
    range_header = request.headers.get(hdrs.RANGE)
    if_range = request.headers.get(hdrs.IF_RANGE)
    if if_range is not None and if_range != etag:
        range_header = None  # the client's partial copy is stale: send it all
    try:
        return parse_range(range_header, size)
    except RangeNotSatisfiable as e:
        raise Problem(
            416,
            StreamingCode.RANGE_NOT_SATISFIABLE,
            f"the file has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        ) from e


async def _write_range(
    request: web.Request, stream: web.StreamResponse, store: ObjectStore, key: str, start: int, end: int
) -> bool:
    """Copy bytes ``start``..``end`` of ``key`` into ``stream``; False when the response was cut short."""
    try:
        async for chunk in store.get(key, start=start, end=end):
            await stream.write(chunk)
            PLAY_BYTES.labels("media").inc(len(chunk))
    except ObjectNotFound:
        # deleted between stat and read: the headers are gone, so cut the response short
        if request.transport is not None:
            request.transport.close()
        return False
    except ConnectionResetError:
        # players abort segment downloads all the time (seeking, switching renditions): not an error
        return False
    return True


def _etags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}
