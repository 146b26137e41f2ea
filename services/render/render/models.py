"""Records, request and response bodies, statuses and error codes of the render service."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from common.addresses import check_http_urls
from common.events.jobs import JobError
from common.pagination import Items
from common.videos import VideoRow

from . import errors
from .compose import ShortClipPolicy
from .layout import Layout, Target


class RenderCode(StrEnum):
    """Stable error codes of the render service (a job's ``error.code``, a problem's ``code``)."""

    PROJECT_NOT_FOUND = "project.not_found"
    RENDER_NOT_FOUND = "render.not_found"
    SEARCH_NOT_FOUND = "search.not_found"
    VIDEO_NOT_FOUND = "video.not_found"
    SEARCH_NOT_READY = "ranking.search_not_ready"
    TOO_FEW_RESULTS = "ranking.too_few_results"
    INVALID_SOURCE = "ranking.invalid_source"
    INVALID_EDIT = "ranking.invalid_edit"
    VERSION_CONFLICT = "ranking.version_conflict"
    INGEST_UNAVAILABLE = "ingest.unavailable"
    NOT_RENDERED = "render.not_ready"
    LINK_INVALID = "render.link_invalid"
    OUTPUT_DELETED = "render.output_deleted"
    SOURCE_UNAVAILABLE = "source.unavailable"
    CLIP_TOO_SHORT = errors.CLIP_TOO_SHORT
    MISSING_GLYPHS = errors.MISSING_GLYPHS
    MEDIA_UNREADABLE = errors.MEDIA_UNREADABLE
    MEDIA_NO_VIDEO = errors.MEDIA_NO_VIDEO
    RENDER_FAILED = errors.RENDER_FAILED
    CANCELED = errors.CANCELED


class JobKind(StrEnum):
    """The render service's job kinds."""

    RENDER = "render"  # paid: fetch the sources, compose, encode, publish


class PlayOrder(StrEnum):
    """Countdown plays rank N first and rank 1 last; top_down plays rank 1 first."""

    COUNTDOWN = "countdown"
    TOP_DOWN = "top_down"


class OrderBy(StrEnum):
    """What ranks a search's results (manual: the platform's own order, then the user's edits)."""

    VIEWS = "views"
    LIKES = "likes"
    COMMENTS = "comments"
    MANUAL = "manual"


class ImportStatus(StrEnum):
    """Where an import this service asked ingest for stands."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


Title = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Text = Annotated[str, msgspec.Meta(max_length=200)]
Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=r"^https?://")]
LanguageCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", max_length=16)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=24 * 3600)]

MIN_ITEMS, MAX_ITEMS = 3, 10
MIN_CLIP_S, MAX_CLIP_S = 1.0, 60.0
#: YouTube counts a video as a Short up to this length; over it a short with others' clips is warned about
SHORTS_MAX_S = 60.0


class Source(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a project's clips come from: exactly one of a stored search, URLs, or the owner's videos."""

    search_id: uuid.UUID | None = None
    urls: Annotated[list[Url], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)] | None = None
    video_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)] | None = None

    def __post_init__(self) -> None:
        check_http_urls(*(self.urls or ()))

    @property
    def kind(self) -> str:
        """``search``, ``urls`` or ``video_ids`` (``""`` when not exactly one is given)."""
        given = [
            k
            for k, v in (("search", self.search_id), ("urls", self.urls), ("video_ids", self.video_ids))
            if v
        ]
        return given[0] if len(given) == 1 else ""


class TemplateOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How the short is framed: intro and outro card lengths, and what a clip shorter than asked does."""

    intro_s: Annotated[float, msgspec.Meta(ge=0, le=5)] = 1.5
    outro_s: Annotated[float, msgspec.Meta(ge=0, le=8)] = 3.0
    short_clips: ShortClipPolicy = ShortClipPolicy.USE_WHOLE


class ProjectCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /rankings: a "Top N" project; from a search it takes the top ``n`` results by ``order_by``."""

    title: Title
    source: Source
    language: LanguageCode = "en"
    n: Annotated[int, msgspec.Meta(ge=MIN_ITEMS, le=MAX_ITEMS)] = 5
    order: PlayOrder = PlayOrder.COUNTDOWN
    order_by: OrderBy = OrderBy.VIEWS
    clip_seconds: Annotated[float, msgspec.Meta(ge=MIN_CLIP_S, le=MAX_CLIP_S)] = 8.0
    target: Target = Target.SHORTS
    options: TemplateOptions = msgspec.field(default_factory=TemplateOptions)


class ItemEdit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One item of an edit, in rank order: an existing item (``id``) or a replacement (``url`` or ``video_id``),
    with the fields to change."""

    id: uuid.UUID | None = None
    url: Url | None = None
    video_id: uuid.UUID | None = None
    title: Text | None = None
    caption: Text | None = None
    start_s: Seconds | None = None
    end_s: Seconds | None = None

    def __post_init__(self) -> None:
        check_http_urls(self.url)


class ProjectPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH /rankings/{id}: change what is given. ``items`` is the whole new list, rank 1 first."""

    title: Title | None = None
    order: PlayOrder | None = None
    target: Target | None = None
    options: TemplateOptions | None = None
    items: Annotated[list[ItemEdit], msgspec.Meta(min_length=MIN_ITEMS, max_length=MAX_ITEMS)] | None = None
    base_version: int | None = None  # optimistic concurrency: 409 when the project moved on


class Item(msgspec.Struct, kw_only=True):
    """A row of ``items``: one ranked clip."""

    id: uuid.UUID
    rank: int
    video_id: uuid.UUID | None = None
    request_id: str | None = None
    source_url: str | None = None
    platform: str = ""
    uploader: str = ""
    own: bool = False
    title: str = ""
    caption: str = ""
    start_s: float = 0.0
    end_s: float = 8.0
    view_count: int | None = None
    like_count: int | None = None
    comment_count: int | None = None
    counted_at: datetime | None = None


class Project(msgspec.Struct, kw_only=True):
    """A row of ``projects`` with its items, rank 1 first."""

    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    language: str
    n: int
    play_order: PlayOrder
    order_by: OrderBy
    clip_seconds: float
    target: Target
    source: dict[str, Any]
    options: TemplateOptions
    version: int
    created_at: datetime
    updated_at: datetime
    items: list[Item] = []


class VideoRef(VideoRow, kw_only=True, frozen=True):
    """What render knows of a video (from ``video.ingested``)."""

    width: int = 0
    height: int = 0
    audio_codec: str = ""
    title: str = ""
    #: the creator and platform ingest read from the source (an import's); empty when it named none
    uploader: str = ""
    platform: str = ""


class ImportRef(msgspec.Struct, kw_only=True, frozen=True):
    """An import render asked ingest for, and its answer so far."""

    request_id: str
    status: ImportStatus
    video_id: uuid.UUID | None = None
    error: dict[str, str] | None = None


class Warning(msgspec.Struct, kw_only=True):
    """Something the owner should know before rendering (it does not stop a render)."""

    code: str
    message: str


class ItemView(msgspec.Struct, kw_only=True):
    """A ranked clip as the API shows it; ``status`` says whether its video is in the library yet."""

    id: uuid.UUID
    rank: int
    video_id: uuid.UUID | None
    source_url: str | None
    platform: str
    uploader: str
    title: str
    caption: str
    start_s: float
    end_s: float
    view_count: int | None
    like_count: int | None
    comment_count: int | None
    counted_at: datetime | None
    status: ImportStatus
    error: JobError | None = None


class BoxView(msgspec.Struct, kw_only=True):
    """A rectangle in output pixels, from the frame's top-left corner."""

    x: int
    y: int
    w: int
    h: int


class LayoutView(msgspec.Struct, kw_only=True):
    """Where a render for the project's target draws (``render/layout.py``, the numbers the compositor uses): the
    frame, the safe area the platform's UI leaves free, the rank badge, the title box and the attribution line."""

    width: int
    height: int
    safe: BoxView
    badge: BoxView
    title: BoxView
    attribution: BoxView

    @classmethod
    def of(cls, layout: Layout) -> LayoutView:
        """The layout as the API shows it."""
        return msgspec.convert(layout, cls, from_attributes=True)


class ProjectView(msgspec.Struct, kw_only=True):
    """A ranking project: its settings, items (rank 1 first), the length a render would have, and warnings."""

    id: uuid.UUID
    title: str
    language: str
    n: int
    order: PlayOrder
    order_by: OrderBy
    clip_seconds: float
    target: Target
    source: dict[str, Any]
    options: TemplateOptions
    items: list[ItemView]
    estimated_seconds: float
    warnings: list[Warning]
    layout: Annotated[
        LayoutView, msgspec.Meta(description="where the render draws for `target` (a preview's boxes)")
    ]
    version: int
    created_at: datetime
    updated_at: datetime


class ProjectSummary(msgspec.Struct, kw_only=True):
    """A project in the owner's list."""

    id: uuid.UUID
    title: str
    n: int
    target: Target
    created_at: datetime
    updated_at: datetime


class Render(msgspec.Struct, kw_only=True):
    """A row of ``renders`` joined with its job."""

    id: uuid.UUID
    project_id: uuid.UUID
    owner_id: uuid.UUID
    spec: dict[str, Any]
    estimated_s: float
    credits: int
    output_key: str | None
    duration_s: float | None
    video_id: uuid.UUID | None
    output_deleted_at: datetime | None = None
    created_at: datetime
    status: str
    progress: float
    stage: str
    error: dict[str, str] | None
    updated_at: datetime


class RenderView(msgspec.Struct, kw_only=True):
    """A render: its job's state, and once done its video and a signed, short-lived download URL."""

    id: uuid.UUID
    project_id: uuid.UUID
    status: str
    progress: float
    stage: str
    error: JobError | None
    estimated_seconds: float
    credits: int
    duration_s: float | None
    video_id: uuid.UUID | None
    download_url: str | None
    download_expires_at: datetime | None
    #: when the output was deleted with the video it was registered as (its download link answers 410)
    output_deleted_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


RenderList = Items[RenderView]


class DownloadQuery(msgspec.Struct, kw_only=True):
    """A signed download link's query: its expiry (unix seconds) and signature."""

    expires: int
    sig: Annotated[str, msgspec.Meta(max_length=128)]
