"""``GET /api/v1/videos/{id}/stream``: a video's stream status and renditions; ``POST …/stream/retry``: transcode a
failed or canceled stream again (owner only); ``GET /api/v1/streams?video_ids=``: many videos' states at once."""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from common import jobs
from common.auth import require_user
from common.errors import NotFound
from common.http import REQUEST_ID, Problem, json_response, parse_uuid, read_query
from common.pagination import Items
from common.service import POOL, settings_of
from common.views import view_of

from . import store
from .config import StreamingSettings
from .media.layout import listed_renditions
from .media.lifecycle import Target, queue_transcode
from .models import StreamingCode, StreamStatesQuery, StreamStateView, StreamView, public_error
from .play_api import PLAYABLE, PLAYBACK_KEYS
from .playback import play_url, sign_token


def stream_view(stream: store.StreamRecord) -> StreamView:
    """The public shape of a stream (the renditions its master playlist lists)."""
    videos, audio = listed_renditions(stream)
    return StreamView.of(stream, [*videos, *([audio] if audio else [])])


async def get_stream(request: web.Request) -> web.Response:
    """Status and renditions of a video's stream (404 for anyone else's: ids are not probeable)."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    async with request.app[POOL].acquire() as conn:
        stream = _owned(await store.get_stream(conn, video_id=video_id), principal.user_id)
    return json_response(stream_view(stream))


async def retry_stream(request: web.Request) -> web.Response:
    """Transcode a failed or canceled stream again: a new ``transcode`` job; what the last one finished is kept."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        stream = _owned(await store.get_stream(conn, video_id=video_id, for_update=True), principal.user_id)
        if stream.status != "error":
            raise Problem(
                409,
                StreamingCode.STREAM_NOT_RETRYABLE,
                f"the stream is {stream.status}: only a failed or canceled one can be retried",
                stream_status=stream.status,
            )
        last = await jobs.get_job(conn, stream.job_id) if stream.job_id else None
        await store.set_status(conn, video_id=video_id, status="processing")
        target = Target(
            video_id=video_id,
            owner_id=stream.owner_id,
            storage_key=stream.source_key,
            correlation_id=request.get(REQUEST_ID, ""),
        )
        title = (last.subject or {}).get("title", "") if last else ""
        await queue_transcode(conn, target, title=title)
        stream = _owned(await store.get_stream(conn, video_id=video_id), principal.user_id)
    return json_response(stream_view(stream), status=202)


async def stream_states(request: web.Request) -> web.Response:
    """The stream state of each video asked about (a page of cards in one request); a signed poster when it plays."""
    principal = await require_user(request)
    ids = read_query(request, StreamStatesQuery).ids()
    async with request.app[POOL].acquire() as conn:
        found = {
            s.video_id: s for s in await store.stream_states(conn, owner_id=principal.user_id, video_ids=ids)
        }
    settings = settings_of(request, StreamingSettings)
    ttl = settings.playback_token_ttl_s
    # expiries on a grid of ttl/12: the same poster URL for a few minutes, so a browser keeps the image it has
    step = max(1, ttl // 12)
    expires_at = (int(time.time()) + ttl) // step * step

    def state(video_id: uuid.UUID) -> StreamStateView:
        s = found.get(video_id)
        if s is None:
            return StreamStateView(video_id=video_id, status="not_found", error=None, poster_url=None)
        poster = None
        if s.status in PLAYABLE and s.poster_key:
            token = sign_token(request.app[PLAYBACK_KEYS], video_id=video_id, expires_at=expires_at)
            poster = play_url(settings.public_base_url, video_id, "thumbs/poster.jpg", token)
        return view_of(StreamStateView, s, error=public_error(s.error), poster_url=poster)

    return json_response(Items(items=[state(v) for v in ids]), headers={"Cache-Control": "no-store"})


def _owned(stream: store.StreamRecord | None, user_id: object) -> store.StreamRecord:
    if stream is None or stream.owner_id != user_id:
        raise NotFound("stream", "no such video")
    return stream
