"""OpenAPI 3.1 paths and schemas of the delivery half (merged into ``/openapi.json`` by ``openapi.add_openapi``)."""

from __future__ import annotations

from typing import Any

from common.openapi import json_body, json_content, problem_response, schema_ref, uuid_path_param

from .webhooks import EVENTS

_NULLABLE_URL = {"type": ["string", "null"], "format": "uri"}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "PlaybackRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "expires_in": {
                "type": "integer",
                "description": "token lifetime in seconds; default 3600, clamped to [60, 86400]",
            }
        },
    },
    "Playback": {
        "type": "object",
        "required": ["token", "expires_at", "hls_url", "dash_url", "poster_url", "thumbnails_vtt_url"],
        "properties": {
            "video_id": {"type": "string", "format": "uuid"},
            "token": {"type": "string", "description": "signed playback token, bound to this video"},
            "expires_at": _TIME,
            "expires_in": {"type": "integer"},
            "hls_url": {"type": "string", "format": "uri"},
            "dash_url": {**_NULLABLE_URL, "description": "null when DASH is not produced"},
            "poster_url": {**_NULLABLE_URL, "description": "null until the poster exists"},
            "thumbnails_vtt_url": {**_NULLABLE_URL, "description": "null until the thumbnail sprite exists"},
        },
    },
    "WebhookCreate": {
        "type": "object",
        "required": ["url", "events"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "http(s); public addresses only"},
            "events": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(EVENTS)}},
        },
    },
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "events", "enabled"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "url": {"type": "string", "format": "uri"},
            "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}},
            "enabled": {"type": "boolean", "description": "false once disabled for failing continuously"},
            "disabled_reason": {"type": ["string", "null"]},
            "disabled_at": _NULLABLE_TIME,
            "consecutive_failures": {"type": "integer"},
            "failing_since": _NULLABLE_TIME,
            "last_success_at": _NULLABLE_TIME,
            "created_at": _TIME,
        },
    },
    "WebhookCreated": {
        "allOf": [
            schema_ref("Webhook"),
            {
                "type": "object",
                "required": ["secret"],
                "properties": {
                    "secret": {
                        "type": "string",
                        "description": "the signing secret; shown only in this response",
                    }
                },
            },
        ]
    },
    "WebhookList": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": schema_ref("Webhook")}},
    },
    "DeliveryAttempt": {
        "type": "object",
        "required": ["attempt", "started_at", "status_code", "latency_ms", "error", "next_retry_at"],
        "properties": {
            "attempt": {"type": "integer"},
            "started_at": _TIME,
            "status_code": {
                "type": ["integer", "null"],
                "description": "null when no HTTP answer (timeout, refused)",
            },
            "latency_ms": {"type": "integer"},
            "error": {"type": ["string", "null"]},
            "next_retry_at": {**_NULLABLE_TIME, "description": "when the next attempt was scheduled, if any"},
        },
    },
    "Delivery": {
        "type": "object",
        "required": ["id", "event_id", "event_type", "status", "attempts"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "event_id": {
                "type": "string",
                "format": "uuid",
                "description": "the body's id and Reelforge-Event-Id",
            },
            "event_type": {"type": "string", "enum": list(EVENTS)},
            "status": {"type": "string", "enum": ["pending", "delivered", "failed", "canceled"]},
            "attempt_count": {"type": "integer"},
            "next_attempt_at": _NULLABLE_TIME,
            "last_status_code": {"type": ["integer", "null"]},
            "last_error": {"type": ["string", "null"]},
            "created_at": _TIME,
            "delivered_at": _NULLABLE_TIME,
            "attempts": {"type": "array", "items": schema_ref("DeliveryAttempt")},
        },
    },
    "DeliveryList": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {"type": "array", "items": schema_ref("Delivery")},
            "next_before": {**_NULLABLE_TIME, "description": "pass as ?before= for the next page"},
        },
    },
}

_WEBHOOK_ID = uuid_path_param("webhook_id")
_401 = problem_response("no or bad access token")
_404_HOOK = problem_response("no such webhook (or not yours)")

PATHS: dict[str, Any] = {
    "/api/v1/videos/{video_id}/playback": {
        "post": {
            "operationId": "createPlayback",
            "summary": "A signed, short-lived playback token and the HLS/DASH/poster/thumbnail URLs using it",
            "tags": ["streaming"],
            "parameters": [uuid_path_param("video_id")],
            "requestBody": json_body("PlaybackRequest", required=False),
            "responses": {
                "201": json_content("Playback", "the token and URLs"),
                "401": _401,
                "404": problem_response("no such video (or not yours)"),
                "409": problem_response("stream.not_ready: the video is still processing or failed"),
                "422": problem_response("validation.invalid"),
            },
        }
    },
    "/play/{video_id}/{path}": {
        "get": {
            "operationId": "play",
            "summary": "Token-gated playback files (no JWT): playlists rewritten so every child URI carries the token",
            "description": (
                "`path` may contain slashes: `master.m3u8`, `<rendition>/index.m3u8`, segments, `manifest.mpd`,"
                " `subs/<lang>.vtt`, `thumbs/poster.jpg`, `thumbs/sprite.jpg`, `thumbs/thumbnails.vtt`."
                " Range requests are honoured; with PLAYBACK_DELIVERY=redirect on S3, non-playlist files answer 302"
                " to a short-lived presigned URL. CORS: `Access-Control-Allow-Origin: *`."
            ),
            "tags": ["streaming"],
            "security": [],
            "parameters": [
                uuid_path_param("video_id"),
                {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "the file"},
                "206": {"description": "the requested byte range"},
                "302": {"description": "redirect to a presigned storage URL (redirect delivery)"},
                "304": {"description": "not modified (If-None-Match)"},
                "403": problem_response("playback.token_invalid or playback.token_expired"),
                "404": problem_response("no such file"),
                "416": problem_response("playback.range_not_satisfiable"),
            },
        }
    },
    "/api/v1/webhooks": {
        "post": {
            "operationId": "createWebhook",
            "summary": "Register an endpoint; the response carries its signing secret, shown only once",
            "tags": ["webhooks"],
            "requestBody": json_body("WebhookCreate"),
            "responses": {
                "201": json_content("WebhookCreated", "registered"),
                "401": _401,
                "409": problem_response("webhook.limit_reached"),
                "422": problem_response(
                    "webhook.invalid_url, webhook.forbidden_address, webhook.unresolvable_host,"
                    " webhook.invalid_events, validation.invalid"
                ),
            },
        },
        "get": {
            "operationId": "listWebhooks",
            "summary": "The caller's endpoints (no secrets), with whether each is enabled",
            "tags": ["webhooks"],
            "responses": {"200": json_content("WebhookList", "endpoints"), "401": _401},
        },
    },
    "/api/v1/webhooks/{webhook_id}": {
        "get": {
            "operationId": "getWebhook",
            "summary": "One endpoint",
            "tags": ["webhooks"],
            "parameters": [_WEBHOOK_ID],
            "responses": {
                "200": json_content("Webhook", "the endpoint"),
                "401": _401,
                "404": _404_HOOK,
            },
        },
        "delete": {
            "operationId": "deleteWebhook",
            "summary": "Delete an endpoint (its pending deliveries stop)",
            "tags": ["webhooks"],
            "parameters": [_WEBHOOK_ID],
            "responses": {"204": {"description": "deleted"}, "401": _401, "404": _404_HOOK},
        },
    },
    "/api/v1/webhooks/{webhook_id}/enable": {
        "post": {
            "operationId": "enableWebhook",
            "summary": "Re-enable an endpoint that was disabled for failing",
            "tags": ["webhooks"],
            "parameters": [_WEBHOOK_ID],
            "responses": {
                "200": json_content("Webhook", "the endpoint"),
                "401": _401,
                "404": _404_HOOK,
            },
        }
    },
    "/api/v1/webhooks/{webhook_id}/deliveries": {
        "get": {
            "operationId": "listWebhookDeliveries",
            "summary": "Deliveries, newest first, with every attempt (status code, latency, error, next retry)",
            "tags": ["webhooks"],
            "parameters": [
                _WEBHOOK_ID,
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                {"name": "before", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            ],
            "responses": {
                "200": json_content("DeliveryList", "deliveries"),
                "400": problem_response("request.bad_query"),
                "401": _401,
                "404": _404_HOOK,
            },
        }
    },
}
