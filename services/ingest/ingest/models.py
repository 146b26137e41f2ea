"""The ingest records and the shapes the API shows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from common.events.ingest import VideoIngested


class Video(msgspec.Struct, kw_only=True):
    """A row of the catalogue: an original kept whole under ``originals/<id>/``."""

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str = ""
    source: str  # upload | import | render | migration
    source_url: str | None = None
    source_ref: str | None = None
    storage_key: str
    container: str
    content_type: str
    duration_s: float
    width: int = 0
    height: int = 0
    rotation: int = 0
    fps: float = 0.0
    video_codec: str = ""
    audio_codec: str = ""
    audio_only: bool = False
    size_bytes: int
    created_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        """The video as the API shows it."""
        return {
            "id": str(self.id),
            "title": self.title,
            "source": self.source,
            "source_url": self.source_url,
            "duration_s": self.duration_s,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "fps": self.fps,
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "audio_only": self.audio_only,
            "container": self.container,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }

    def ingested(self, *, correlation_id: str = "") -> VideoIngested:
        """The ``video.ingested.v1`` event announcing this video."""
        return VideoIngested(
            video_id=self.id,
            owner_id=self.owner_id,
            storage_key=self.storage_key,
            duration_s=self.duration_s,
            width=self.width,
            height=self.height,
            fps=self.fps,
            rotation=self.rotation,
            video_codec=self.video_codec,
            audio_codec=self.audio_codec,
            size_bytes=self.size_bytes,
            source=self.source,
            title=self.title,
            producer="ingest",
            correlation_id=correlation_id,
        )


class SearchResult(msgspec.Struct, kw_only=True):
    """One video a platform search found."""

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

    def public(self) -> dict[str, Any]:
        """The result as the API shows it."""
        return {
            "position": self.position,
            "id": self.platform_id,
            "url": self.url,
            "title": self.title,
            "uploader": self.uploader,
            "view_count": self.view_count,
            "like_count": self.like_count,
            "comment_count": self.comment_count,
            "duration_s": self.duration_s,
            "thumbnail_url": self.thumbnail_url,
            "published_at": self.published_at.isoformat() if self.published_at else None,
        }
