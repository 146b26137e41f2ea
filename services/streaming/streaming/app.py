"""The streaming app: resources via cleanup_ctx, routes, and (in the worker role) event subscriptions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.openapi import add_api
from common.service import build_app

from .api import API
from .config import StreamingSettings
from .delivery import add_delivery
from .media_handlers import add_media_worker


def create_app(settings: StreamingSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the streaming app for ``role`` (``api`` or ``worker``)."""
    app = build_app(settings, role=role, **overrides)
    if role == "api":
        add_api(app, API)  # playback, /play, stream status, webhooks
    add_delivery(app)  # playback keys; webhook dispatch (worker role)
    add_media_worker(app)  # video.ingested -> transcode, captions.completed (media half, worker role)
    return app
