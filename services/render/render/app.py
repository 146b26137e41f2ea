"""The render app: resources via cleanup_ctx, routes, and (in the worker role) event subscriptions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.service import build_app

from .config import RenderSettings


def create_app(settings: RenderSettings, *, role: str = "api", **overrides: Any) -> web.Application:
    """Build the render app for ``role`` (``api`` or ``worker``)."""
    app = build_app(settings, role=role, **overrides)
    return app
