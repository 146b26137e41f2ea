"""Streaming's ONE route table: playback, the token-gated /play files, stream status and webhooks."""

from __future__ import annotations

from common.openapi import Api, Route
from common.pagination import Page

from .media_api import get_stream
from .models import (
    DeliveryView,
    PlaybackRequest,
    PlaybackView,
    PlayQuery,
    StreamingCode,
    StreamView,
    WebhookCreate,
    WebhookCreatedView,
    WebhookList,
    WebhookView,
)
from .play_api import create_playback, play, play_preflight
from .webhook_api import (
    DELIVERY_PAGING,
    create_webhook,
    delete_webhook,
    enable_webhook,
    get_webhook,
    list_deliveries,
    list_webhooks,
)

_PLAY = "/play/{video_id}/{path:.+}"
_HOOK = "/api/v1/webhooks/{webhook_id}"
_NO_HOOK = {404: [StreamingCode.WEBHOOK_NOT_FOUND]}
_STREAMING, _WEBHOOKS = ("streaming",), ("webhooks",)

ROUTES = (
    Route(
        "POST",
        "/api/v1/videos/{video_id}/playback",
        create_playback,
        body=PlaybackRequest,
        body_required=False,
        response=PlaybackView,
        status=201,
        tags=_STREAMING,
        errors={
            404: [StreamingCode.STREAM_NOT_FOUND],
            409: [StreamingCode.STREAM_NOT_READY],
        },
    ),
    Route(
        "GET",
        _PLAY,
        play,
        public=True,
        query=PlayQuery,
        headers=("Range",),
        tags=_STREAMING,
        description=(
            "`path` may contain slashes: `master.m3u8`, `<rendition>/index.m3u8`, segments, `manifest.mpd`,"
            " `subs/<lang>.vtt`, `thumbs/poster.jpg`, `thumbs/sprite.jpg`, `thumbs/thumbnails.vtt`."
            " Range requests are honoured; with PLAYBACK_DELIVERY=redirect on S3, non-playlist files answer 302"
            " to a short-lived presigned URL. CORS: `Access-Control-Allow-Origin: *`."
        ),
        raw={
            200: "the file",
            206: "the requested byte range",
            302: "redirect to a presigned storage URL (redirect delivery)",
            304: "not modified (If-None-Match)",
        },
        errors={
            403: [StreamingCode.TOKEN_INVALID, StreamingCode.TOKEN_EXPIRED],
            404: [StreamingCode.FILE_NOT_FOUND],
            416: [StreamingCode.RANGE_NOT_SATISFIABLE],
        },
    ),
    Route("OPTIONS", _PLAY, play_preflight, documented=False),
    Route(
        "GET",
        "/api/v1/videos/{video_id}/stream",
        get_stream,
        response=StreamView,
        tags=_STREAMING,
        errors={404: [StreamingCode.STREAM_NOT_FOUND]},
    ),
    Route(
        "POST",
        "/api/v1/webhooks",
        create_webhook,
        body=WebhookCreate,
        response=WebhookCreatedView,
        status=201,
        tags=_WEBHOOKS,
        errors={
            409: [StreamingCode.WEBHOOK_LIMIT_REACHED],
            422: [
                StreamingCode.WEBHOOK_INVALID_URL,
                StreamingCode.WEBHOOK_FORBIDDEN_ADDRESS,
                StreamingCode.WEBHOOK_UNRESOLVABLE_HOST,
                StreamingCode.WEBHOOK_INVALID_EVENTS,
            ],
        },
    ),
    Route("GET", "/api/v1/webhooks", list_webhooks, response=WebhookList, tags=_WEBHOOKS),
    Route("GET", _HOOK, get_webhook, response=WebhookView, tags=_WEBHOOKS, errors=_NO_HOOK),
    Route("DELETE", _HOOK, delete_webhook, status=204, tags=_WEBHOOKS, errors=_NO_HOOK),
    Route("POST", f"{_HOOK}/enable", enable_webhook, response=WebhookView, tags=_WEBHOOKS, errors=_NO_HOOK),
    Route(
        "GET",
        f"{_HOOK}/deliveries",
        list_deliveries,
        response=Page[DeliveryView],
        paging=DELIVERY_PAGING,
        tags=_WEBHOOKS,
        errors=_NO_HOOK,
    ),
)

API = Api(
    title="Reelforge streaming",
    description="Adaptive streams, signed playback and webhooks.",
    routes=ROUTES,
    tags=[
        {"name": "streaming", "description": "streams and playback"},
        {"name": "webhooks", "description": "endpoints notified when a stream is ready or failed"},
    ],
)
