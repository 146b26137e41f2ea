"""Events produced by render."""

from __future__ import annotations

import uuid

from .base import Event


class RenderCompleted(Event, tag="render.completed.v1", frozen=True, kw_only=True):
    """A ranking short was rendered to ``storage_key`` (under ``renders/<render_id>/``); ingest registers it as the
    owner's video (source ``render``) and answers ``video.ingested.v1`` with ``correlation_id`` = ``str(render_id)``
    (``video.ingest_failed.v1`` when the object is missing or unreadable)."""

    render_id: uuid.UUID
    project_id: uuid.UUID
    owner_id: uuid.UUID
    storage_key: str
    duration_s: float
    width: int = 1080
    height: int = 1920
    title: str = ""
    #: the attribution of the sources, one line each (e.g. ``#1 @uploader · youtube · <url>``): the video's description
    description: str = ""


class RenderFailed(Event, tag="render.failed.v1", frozen=True, kw_only=True):
    """A render failed."""

    render_id: uuid.UUID
    project_id: uuid.UUID
    owner_id: uuid.UUID
    code: str
    message: str
