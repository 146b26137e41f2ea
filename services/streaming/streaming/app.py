"""The streaming app: resources via cleanup_ctx, routes, and (in the worker role) event subscriptions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.openapi import add_api
from common.service import build_app

from .api import API
from .config import StreamingSettings
from .media_handlers import add_media_worker
from .playback_webhooks import add_playback_and_webhooks


def create_app(settings: StreamingSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the streaming app for ``role`` (``api`` or ``worker``)."""
    app = build_app(settings, role=role, **overrides)
    if role == "api":
        add_api(app, API)  # playback, /play, stream status, webhooks
    add_playback_and_webhooks(app)  # playback keys; the webhook sender (worker role)
    add_media_worker(app)  # video.ingested -> transcode, captions.completed (media half, worker role)
    return app
