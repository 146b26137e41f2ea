"""Events produced by ingest."""

from __future__ import annotations

import uuid

from .base import Event


class VideoIngested(Event, tag="video.ingested.v1", frozen=True, kw_only=True):
    """A video's original is stored whole under ``originals/<video_id>/`` and probed."""

    video_id: uuid.UUID
    owner_id: uuid.UUID
    storage_key: str
    duration_s: float
    width: int = 0
    height: int = 0
    fps: float = 0.0
    rotation: int = 0
    video_codec: str = ""
    audio_codec: str = ""
    size_bytes: int = 0
    source: str = "upload"  # upload | import | render | migration
    title: str = ""


class VideoIngestFailed(Event, tag="video.ingest_failed.v1", frozen=True, kw_only=True):
    """An upload/import could not become a video."""

    owner_id: uuid.UUID
    job_id: uuid.UUID | None = None
    source_url: str = ""
    code: str
    message: str


class VideoImportRequested(Event, tag="video.import_requested.v1", frozen=True, kw_only=True):
    """A command to ingest from another service: import ``url`` into ``owner_id``'s library.

    The same SSRF rules and job model as a user's import apply (the owner sees the import job). Ingest answers
    ``video.ingested.v1`` or ``video.ingest_failed.v1`` with ``correlation_id`` = ``request_id``. Owned by ingest,
    the service that carries it out (requesters: render, analysis).
    """

    request_id: str
    owner_id: uuid.UUID
    url: str
    title: str = ""


class VideoDeleted(Event, tag="video.deleted.v1", frozen=True, kw_only=True):
    """A video was deleted by its owner; derived artefacts should go too."""

    video_id: uuid.UUID
    owner_id: uuid.UUID
