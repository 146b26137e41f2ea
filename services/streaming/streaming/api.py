"""Streaming's ONE route table: playback, the token-gated /play files, stream status (one or many) and webhooks."""

from __future__ import annotations

from common.openapi import Api, Route
from common.pagination import Items, Page

from .media_api import get_stream, retry_stream, stream_states
from .models import (
    DeliveryView,
    PlaybackRequest,
    PlaybackView,
    PlayQuery,
    StreamingCode,
    StreamStatesQuery,
    StreamStateView,
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
    redeliver,
)

_PLAY = "/play/{video_id}/{path:.+}"
_HOOK = "/api/v1/webhooks/{webhook_id}"
_NO_HOOK = {404: [StreamingCode.WEBHOOK_NOT_FOUND]}
_STREAMING, _WEBHOOKS = ("streaming",), ("webhooks",)
_STREAM = "/api/v1/videos/{video_id}/stream"
_NO_STREAM = {404: [StreamingCode.STREAM_NOT_FOUND]}

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
        errors={**_NO_STREAM, 409: [StreamingCode.STREAM_NOT_READY]},
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
    Route("GET", _STREAM, get_stream, response=StreamView, tags=_STREAMING, errors=_NO_STREAM),
    Route(
        "GET",
        "/api/v1/streams",
        stream_states,
        query=StreamStatesQuery,
        response=Items[StreamStateView],
        tags=_STREAMING,
        description=(
            "The stream state of each video asked about (up to 100, in the order asked), for a grid of videos in"
            " one request: `status`, `error` (code and message) and, once it plays, `poster_url` signed with a"
            " playback token. An id the caller owns no stream of (not transcoding yet, deleted, another user's or"
            " unknown) is answered `not_found`, never an error."
        ),
    ),
    Route(
        "POST",
        f"{_STREAM}/retry",
        retry_stream,
        response=StreamView,
        status=202,
        tags=_STREAMING,
        description=(
            "Transcode a stream in `error` again (failed, or its transcode canceled): a new `transcode` job"
            " (`job_id`), status back to `processing`; renditions the last attempt completed are kept."
        ),
        errors={**_NO_STREAM, 409: [StreamingCode.STREAM_NOT_RETRYABLE]},
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
    Route(
        "POST",
        f"{_HOOK}/deliveries/{{delivery_id}}/redeliver",
        redeliver,
        response=DeliveryView,
        status=202,
        tags=_WEBHOOKS,
        description=(
            "Queue a finished delivery (`delivered`, `failed` or `canceled`) for one more attempt now: the same"
            " event id and body, freshly signed; its attempts are numbered on in the log."
        ),
        errors={
            404: [StreamingCode.WEBHOOK_NOT_FOUND, StreamingCode.DELIVERY_NOT_FOUND],
            409: [StreamingCode.WEBHOOK_DISABLED, StreamingCode.DELIVERY_PENDING],
        },
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
