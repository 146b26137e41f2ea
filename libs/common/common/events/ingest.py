"""Events produced by ingest."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from .base import Event, VideoEvent


class VideoIngested(VideoEvent, tag="video.ingested.v1", frozen=True, kw_only=True):
    """A video's original is stored whole under ``originals/<video_id>/`` and probed."""

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
    #: where an import came from (the URL asked for); empty for the other sources
    source_url: str = ""
    #: an import's creator as the source names them (yt-dlp's channel/uploader); empty when it names none
    uploader: str = ""
    #: an import's platform (``YouTube``, ``TikTok``...; a site yt-dlp knows only generically: its host name)
    platform: str = ""


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


class VideoDeleted(VideoEvent, tag="video.deleted.v1", frozen=True, kw_only=True):
    """A video was deleted by its owner; derived artefacts should go too."""


class SearchResult(msgspec.Struct, kw_only=True):
    """One video a platform search found: what ingest stores, and what render ranks from ingest's search view.

    ``position`` is its rank in the platform's own order; the view shows ``platform_id`` as ``id``.
    """

    position: int
    platform_id: str = ""
    url: str
    title: str = ""
    uploader: str = ""
    view_count: int | None = None
    like_count: int | None = None
    comment_count: int | None = None
    duration_s: float | None = None
    thumbnail_url: str | None = None
    published_at: datetime | None = None
