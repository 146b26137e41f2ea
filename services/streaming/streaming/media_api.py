"""``GET /api/v1/videos/{id}/stream``: a video's stream status and renditions (owner only)."""

from __future__ import annotations

from aiohttp import web

from common.auth import require_user
from common.errors import NotFound
from common.http import json_response, parse_uuid
from common.service import POOL

from . import store
from .media.layout import listed_renditions
from .models import StreamView


def stream_view(stream: store.StreamRecord) -> StreamView:
    """The public shape of a stream (the renditions its master playlist lists)."""
    videos, audio = listed_renditions(stream)
    return StreamView.of(stream, [*videos, *([audio] if audio else [])])


async def get_stream(request: web.Request) -> web.Response:
    """Status and renditions of a video's stream (404 for anyone else's: ids are not probeable)."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    async with request.app[POOL].acquire() as conn:
        stream = await store.get_stream(conn, video_id=video_id)
    if stream is None or stream.owner_id != principal.user_id:
        raise NotFound("stream", "no such video")
    return json_response(stream_view(stream))
