"""The ingest records and the shapes the API shows."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from common.events.ingest import SearchResult, VideoIngested
from common.events.jobs import JobError
from common.jobs import JobStatus
from common.views import View, view_of


class IngestCode(StrEnum):
    """Every error code ingest answers or fails a job with (besides ``CommonCode`` and ``common.jobs.ErrorCode``)."""

    VIDEO_NOT_FOUND = "video.not_found"
    IMPORT_NOT_FOUND = "import.not_found"
    SEARCH_NOT_FOUND = "search.not_found"
    UPLOAD_TOO_LARGE = "upload.too_large"
    SOURCE_TOO_LARGE = "source.too_large"
    SEARCH_UNSUPPORTED_QUERY = "search.unsupported_query"
    MEDIA_BAD_DIMENSIONS = "media.bad_dimensions"


Platform = Literal["youtube", "tiktok"]
Sort = Literal["relevance", "views", "likes", "comments", "recent"]


class Video(msgspec.Struct, kw_only=True):
    """A row of the catalogue: an original kept whole under ``originals/<id>/``."""

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str = ""
    #: a rendered short's attribution of its sources (empty for the other sources)
    description: str = ""
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
    #: an import's creator and platform, from yt-dlp's info dict (``fetch.attribution``); empty otherwise
    uploader: str = ""
    platform: str = ""
    created_at: datetime | None = None

    def ingested(self, *, correlation_id: str = "") -> VideoIngested:
        """The ``video.ingested.v1`` event announcing this video."""
        # every field by name, but the event gets its own id: the video's is its video_id
        return view_of(
            VideoIngested,
            self,
            id=uuid.uuid4(),
            video_id=self.id,
            source_url=self.source_url or "",
            producer="ingest",
            correlation_id=correlation_id,
        )


# -- the API's bodies ------------------------------------------------------------------------------------------


class UploadForm(msgspec.Struct):
    """``multipart/form-data`` of POST /videos (the file is streamed, never held in memory)."""

    file: bytes
    title: str = ""
    allow_audio_only: bool = False


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /imports."""

    url: Annotated[str, msgspec.Meta(description="an http(s) URL yt-dlp can download")]
    title: str = ""
    allow_audio_only: bool = False


class VideoPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Body of PATCH /videos/{id}: the fields to change (absent or null: unchanged)."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=5000)] | None = None


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /searches: YouTube keywords, or TikTok ``#tag`` / ``@user``."""

    platform: Platform
    query: Annotated[str, msgspec.Meta(max_length=200)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 20


class VideosQuery(msgspec.Struct):
    """Filters of GET /videos (besides ``limit`` and ``cursor``)."""

    q: Annotated[
        str,
        msgspec.Meta(
            max_length=200,
            description="only videos whose title contains this text, in any case (`%` and `_` are plain"
            " characters); pass it again with `cursor` to continue the same listing",
        ),
    ] = ""


class SearchQuery(msgspec.Struct):
    """Query of GET /searches/{id}."""

    sort: Sort = "relevance"


class VideoView(View, kw_only=True):
    """A video of the catalogue; ``width``/``height`` are the display size (after rotation)."""

    id: uuid.UUID
    title: str
    description: str
    source: Literal["upload", "import", "render", "migration"]
    source_url: str | None
    duration_s: float
    width: int
    height: int
    rotation: int
    fps: float
    video_codec: str
    audio_codec: str
    audio_only: bool
    container: str
    size_bytes: int
    created_at: datetime | None


class ImportAccepted(msgspec.Struct, kw_only=True):
    """The import job (``deduplicated``: the same URL was already being imported, and this is that job)."""

    job_id: uuid.UUID
    import_id: uuid.UUID
    deduplicated: bool


class ImportView(msgspec.Struct, kw_only=True):
    """An import and its job's state; ``video_id`` once it succeeded."""

    id: uuid.UUID
    job_id: uuid.UUID
    url: str
    title: str
    status: JobStatus
    progress: float
    stage: str
    error: JobError | None
    video_id: uuid.UUID | None
    allow_audio_only: bool
    created_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> ImportView:
        """The import row (joined with its job) as the API shows it."""
        return view_of(cls, row, progress=round(float(row["progress"]), 2), error=job_error(row["error"]))


class SearchAccepted(msgspec.Struct, kw_only=True):
    """The search job."""

    job_id: uuid.UUID
    search_id: uuid.UUID


def job_error(raw: dict[str, str] | None) -> JobError | None:
    """A job's stored ``{code, message}`` as the API shows it."""
    return msgspec.convert(raw, JobError) if raw else None


class SearchResultView(msgspec.Struct, kw_only=True):
    """One video a search found; ``position`` is its rank in the platform's own order."""

    position: int
    id: str
    url: str
    title: str
    uploader: str
    view_count: int | None
    like_count: int | None
    comment_count: int | None
    duration_s: float | None
    thumbnail_url: str | None
    published_at: datetime | None

    @classmethod
    def of(cls, result: SearchResult) -> SearchResultView:
        """The result as the API shows it."""
        return view_of(cls, result, id=result.platform_id)


class SearchView(msgspec.Struct, kw_only=True):
    """A search, its job's state and its results in the requested ``sort``."""

    id: uuid.UUID
    job_id: uuid.UUID
    platform: Platform
    query: str
    limit: int
    status: JobStatus
    progress: float
    error: JobError | None
    sort: Sort
    created_at: datetime
    results: list[SearchResultView]
