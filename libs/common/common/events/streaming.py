"""Events produced by streaming."""

from __future__ import annotations

import uuid

from .base import Event, VideoEvent


class StreamPlayable(VideoEvent, tag="stream.playable.v1", frozen=True, kw_only=True):
    """The first rendition is complete: the video can be played."""

    renditions: list[str] = []


class StreamReady(VideoEvent, tag="stream.ready.v1", frozen=True, kw_only=True):
    """The full ladder (and poster, thumbnails) is complete."""

    renditions: list[str] = []
    duration_s: float = 0.0


class StreamFailed(VideoEvent, tag="stream.failed.v1", frozen=True, kw_only=True):
    """Transcoding failed with a stable error code."""

    code: str
    message: str


class MigrationRequested(Event, tag="video.migration_requested.v1", frozen=True, kw_only=True):
    """An object of an existing bucket should become a video (``python -m streaming import-bucket``); ingest copies it."""

    source_url: str  # the store the object lives in: ``s3://bucket[/prefix]`` or ``file:///abs/path``
    source_key: str
    owner_id: uuid.UUID
    size_bytes: int = 0
    title: str = ""
