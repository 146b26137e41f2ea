"""Events produced by render."""

from __future__ import annotations

import uuid

from .base import Event


class RenderCompleted(Event, tag="render.completed.v1", frozen=True, kw_only=True):
    """A ranking short was rendered to ``storage_key``; ingest registers it as a video."""

    render_id: uuid.UUID
    project_id: uuid.UUID
    owner_id: uuid.UUID
    storage_key: str
    duration_s: float
    width: int = 1080
    height: int = 1920
    title: str = ""


class RenderFailed(Event, tag="render.failed.v1", frozen=True, kw_only=True):
    """A render failed."""

    render_id: uuid.UUID
    project_id: uuid.UUID
    owner_id: uuid.UUID
    code: str
    message: str
