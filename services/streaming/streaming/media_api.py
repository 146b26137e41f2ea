"""``GET /api/v1/videos/{id}/stream``: a video's stream status and renditions (owner only)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.auth import require_user
from common.http import Problem, json_response, parse_uuid
from common.service import POOL, ROLE

from . import store
from .media.layout import listed_renditions
from .openapi import add_openapi

STREAM_PATH = "/api/v1/videos/{video_id}/stream"


def stream_document(stream: store.StreamRecord) -> dict[str, Any]:
    """The public shape of a stream."""
    videos, audio = listed_renditions(stream)
    return {
        "video_id": str(stream.video_id),
        "status": stream.status,
        "renditions": [r.public() for r in [*videos, *([audio] if audio else [])]],
        "duration_s": stream.duration_s,
        "width": stream.width,
        "height": stream.height,
        # a relative URL under /play/<id>/ (it needs a playback token: POST .../playback returns full URLs)
        "poster_url": f"/play/{stream.video_id}/thumbs/poster.jpg" if stream.poster_key else None,
        "has_dash": stream.has_dash,
        "subtitles": [{"language": s.language, "label": s.label} for s in stream.subtitles],
        "error": stream.error,
        "created_at": stream.created_at.isoformat(),
        "updated_at": stream.updated_at.isoformat(),
    }


async def get_stream(request: web.Request) -> web.Response:
    """The caller's stream; 404 for anyone else's (ids are not probeable)."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    async with request.app[POOL].acquire() as conn:
        stream = await store.get_stream(conn, video_id=video_id)
    if stream is None or stream.owner_id != principal.user_id:
        raise Problem(404, "stream.not_found", "no such video")
    return json_response(stream_document(stream))


_RENDITION = {
    "type": "object",
    "required": ["name", "kind", "width", "height", "bandwidth", "codecs"],
    "properties": {
        "name": {"type": "string", "examples": ["720p", "src", "audio"]},
        "kind": {"type": "string", "enum": ["video", "audio"]},
        "width": {"type": ["integer", "null"], "description": "pixels (null for audio)"},
        "height": {"type": ["integer", "null"], "description": "pixels (null for audio)"},
        "channels": {"type": ["integer", "null"], "description": "audio channels (null for video)"},
        "bandwidth": {"type": "integer", "description": "peak segment bitrate, bits/s"},
        "average_bandwidth": {"type": "integer", "description": "mean bitrate, bits/s"},
        "codecs": {"type": "string", "examples": ["avc1.64001F"]},
        "frame_rate": {"type": ["number", "null"]},
    },
}
_STREAM = {
    "type": "object",
    "required": ["video_id", "status", "renditions", "duration_s", "poster_url", "error"],
    "properties": {
        "video_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["processing", "playable", "ready", "error"]},
        "renditions": {"type": "array", "items": {"$ref": "#/components/schemas/Rendition"}},
        "duration_s": {"type": "number"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "poster_url": {"type": ["string", "null"]},
        "has_dash": {"type": "boolean"},
        "subtitles": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"language": {"type": "string"}, "label": {"type": "string"}},
            },
        },
        "error": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {
                            "type": "string",
                            "examples": [
                                "media.unreadable",
                                "media.unsupported_codec",
                                "media.no_video_stream",
                                "transcode.failed",
                                "job.canceled",
                            ],
                        },
                        "message": {"type": "string"},
                    },
                },
            ]
        },
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

MEDIA_PATHS: dict[str, Any] = {
    STREAM_PATH: {
        "get": {
            "operationId": "getStream",
            "summary": "Status and renditions of a video's stream",
            "tags": ["streaming"],
            "security": [{"bearerAuth": []}],
            "parameters": [
                {
                    "name": "video_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            ],
            "responses": {
                "200": {
                    "description": "the stream",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stream"}}},
                },
                "401": {"description": "no or bad access token", "content": _PROBLEM},
                "404": {"description": "no such video (or not yours)", "content": _PROBLEM},
            },
        }
    }
}


def add_media_routes(app: web.Application) -> None:
    """Register the media half's API routes and their OpenAPI paths (api role only)."""
    if app[ROLE] != "api":
        return
    app.router.add_get(STREAM_PATH, get_stream)
    add_openapi(app, paths=MEDIA_PATHS, schemas={"Stream": _STREAM, "Rendition": _RENDITION})
