"""Records, request and response bodies, statuses and error codes of the analysis service."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from common.addresses import check_http_urls


class Detail(StrEnum):
    """How long the summary and lists are."""

    BRIEF = "brief"
    STANDARD = "standard"
    DETAILED = "detailed"


class Engine(StrEnum):
    """Which engine wrote a result."""

    GEMINI = "gemini"
    EXTRACTIVE = "extractive"


class JobKind(StrEnum):
    """The analysis service's job kinds."""

    ANALYSIS = "analysis"  # paid: one analysis asked for on its own
    BATCH_CHUNK = "analysis_chunk"  # paid: up to BATCH_CHUNK_SIZE items of a batch, under one credit hold
    BATCH = "analysis_batch"  # a batch's progress in the job model; never claimed (its chunks do the work)


class ItemState(StrEnum):
    """Where one analysis (alone or a batch item) is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CACHED = "cached"  # an earlier identical analysis was returned: charged nothing
    FAILED = "failed"
    CANCELED = "canceled"


ENDED_STATES = frozenset({ItemState.SUCCEEDED, ItemState.CACHED, ItemState.FAILED, ItemState.CANCELED})


class BatchState(StrEnum):
    """A batch runs until paused, canceled, or every item has ended (done)."""

    RUNNING = "running"
    PAUSED = "paused"
    CANCELED = "canceled"
    DONE = "done"


class AnalysisErrorCode(StrEnum):
    """Stable codes of analysis failures a user sees (raised as ``common.jobs.JobFailure`` or ``CodedError``)."""

    TRANSCRIPT_EMPTY = "transcript.empty"
    TRANSCRIPT_UNAVAILABLE = "transcript.unavailable"
    SOURCE_BLOCKED = "source.blocked"
    SOURCE_RATE_LIMITED = "source.rate_limited"
    SOURCE_UNAVAILABLE = "source.unavailable"
    VIDEO_NOT_FOUND = "video.not_found"
    ANALYSIS_NOT_FOUND = "analysis.not_found"
    TRANSCRIPT_NOT_FOUND = "transcript.not_found"
    BATCH_NOT_FOUND = "batch.not_found"
    BATCH_TOO_LARGE = "batch.too_large"
    BATCH_EMPTY = "batch.empty"
    BATCH_ENDED = "batch.ended"
    INVALID_SOURCE = "analysis.invalid_source"
    INVALID_CSV = "batch.invalid_csv"
    QUOTA_PARKED = "quota.parked"
    MODEL_MALFORMED_OUTPUT = "model.malformed_output"
    MODEL_UNAVAILABLE = "model.unavailable"
    MODEL_REJECTED = "model.rejected"
    QUOTA_REQUEST_TOO_LARGE = "quota.request_too_large"


class AnalysisOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What the caller asks for: how detailed, and in which language (default: the transcript's)."""

    detail: Detail = Detail.STANDARD
    output_language: str | None = None


class Chapter(msgspec.Struct, frozen=True):
    """A chapter mark: where it starts and its title."""

    start_s: float
    title: str


class Highlight(msgspec.Struct, frozen=True):
    """A moment worth watching, quoting the transcript."""

    start_s: float
    end_s: float
    quote: str
    reason: str


class Analysis(msgspec.Struct, frozen=True, kw_only=True):
    """What an engine writes about a video (and the JSON the Gemini model must return)."""

    title: str
    summary: str
    key_points: list[str]
    chapters: list[Chapter]
    highlights: list[Highlight]
    keywords: list[str]


class AnalysisResult(Analysis, frozen=True, kw_only=True):
    """The structured analysis of one video, with who wrote it; ``warnings`` says what was dropped or repaired."""

    engine: Engine
    model: str
    prompt_version: str
    warnings: list[str] = []


# -- API bodies -----------------------------------------------------------------------------------------------

Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^https?://")]


class AnalysisRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /analyses: one of ``video_id`` (a video of yours) or ``url``, and the options."""

    video_id: uuid.UUID | None = None
    url: Url | None = None
    options: AnalysisOptions = AnalysisOptions()

    def __post_init__(self) -> None:
        check_http_urls(self.url)


class BatchItemIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One item of a batch: a video id or a URL."""

    video_id: uuid.UUID | None = None
    url: Url | None = None

    def __post_init__(self) -> None:
        check_http_urls(self.url)


class BatchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /analyses/batches: up to 10,000 items, one set of options for all."""

    items: Annotated[list[BatchItemIn], msgspec.Meta(max_length=10_000)]
    options: AnalysisOptions = AnalysisOptions()


class BatchCsvForm(msgspec.Struct, kw_only=True):
    """POST /analyses/batches (multipart; also at /analyses/batches/csv): a CSV file of URLs or video ids (one a
    row, first column; a header is skipped) and the options."""

    file: bytes
    detail: Detail = Detail.STANDARD
    output_language: str | None = None


class BatchCsvQuery(msgspec.Struct, kw_only=True):
    """POST /analyses/batches with a ``text/csv`` body: the options, in the query (a JSON or multipart body carries
    its own)."""

    detail: Detail = Detail.STANDARD
    output_language: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class AnalysesQuery(msgspec.Struct, kw_only=True):
    """GET /analyses: only the analyses of the video ``video_id``, if given (its page shows the latest one)."""

    video_id: uuid.UUID | None = None


class ItemsQuery(msgspec.Struct, kw_only=True):
    """GET /analyses/batches/{id}/items: only the items in ``state`` (e.g. ``failed``: what went wrong), if given."""

    state: ItemState | None = None


class ErrorView(msgspec.Struct, kw_only=True):
    """Why something failed: a stable code and a message."""

    code: str
    message: str = ""


class AnalysisView(msgspec.Struct, kw_only=True):
    """An analysis as the API shows it: where its transcript came from and the result."""

    id: uuid.UUID
    job_id: uuid.UUID | None
    batch_id: uuid.UUID | None = None
    position: int = 0
    video_id: uuid.UUID | None = None
    url: str = ""
    options: AnalysisOptions
    state: ItemState
    source: str | None = None
    language: str | None = None
    title: str = ""
    duration_s: float | None = None
    result: AnalysisResult | None = None
    error: ErrorView | None = None
    credits: int = 0
    created_at: datetime
    updated_at: datetime


class AnalysisAccepted(msgspec.Struct, kw_only=True):
    """The answer to POST /analyses: the analysis and its job."""

    analysis: AnalysisView
    job: dict[str, Any]


class SegmentView(msgspec.Struct, kw_only=True):
    """A timed stretch of the transcript (seconds)."""

    start_s: float
    end_s: float
    text: str


class TranscriptView(msgspec.Struct, kw_only=True):
    """The transcript an analysis used."""

    analysis_id: uuid.UUID
    source: str
    language: str
    segments: list[SegmentView]


class QuotaView(msgspec.Struct, kw_only=True):
    """The model quota's state for a batch."""

    state: str  # ok | parked
    until: datetime | None = None
    message: str = ""


class BatchView(msgspec.Struct, kw_only=True):
    """A batch: counts by state, throughput (items/min over the last minutes), ETA, quota state."""

    id: uuid.UUID
    job_id: uuid.UUID
    state: BatchState
    options: AnalysisOptions
    total: int
    counts: dict[str, int]
    throughput_per_min: float
    eta_s: float | None
    quota: QuotaView
    credits: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


#: the batch's throughput is measured over this window (or since it began, if that is shorter)
THROUGHPUT_WINDOW_S = 300.0


def batch_pace(*, remaining: int, ended_recently: int, running_s: float) -> tuple[float, float | None]:
    """Items per minute (``ended_recently`` over the window, or over ``running_s`` if the batch is younger) and the
    seconds left at that rate: 0 when no item remains, None while nothing has ended yet."""
    per_min = ended_recently * 60.0 / min(THROUGHPUT_WINDOW_S, max(1.0, running_s))
    if not remaining:
        return per_min, 0.0
    return per_min, (remaining * 60.0 / per_min if per_min > 0 else None)


def time_left(seconds: float) -> str:
    """An ETA as people say it: "under a minute", "about 2 min", "about 1 h 5 min"."""
    if seconds < 60:
        return "under a minute left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60} min left"


def progress_stage(*, ended: int, total: int, eta_s: float | None) -> str:
    """The batch job's stage: "1,200 of 2,376 analysed · about 2 min left" (no ETA before the first item ends)."""
    stage = f"{ended:,} of {total:,} analysed"
    return f"{stage} · {time_left(eta_s)}" if eta_s and ended < total else stage


class BatchAccepted(msgspec.Struct, kw_only=True):
    """The answer to POST /analyses/batches."""

    batch: BatchView
    job: dict[str, Any]


class AnalysisRecord(AnalysisView, kw_only=True):
    """A row of ``analyses``."""

    owner_id: uuid.UUID
    attempts: int = 0
    transcript_key: str | None = None
    cache_key: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class BatchRecord(msgspec.Struct, kw_only=True):
    """A row of ``batches``."""

    id: uuid.UUID
    owner_id: uuid.UUID
    job_id: uuid.UUID
    options: AnalysisOptions
    state: BatchState
    parked_until: datetime | None = None
    total: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class VideoRef(msgspec.Struct, kw_only=True, frozen=True):
    """What analysis knows of a video (from ``video.ingested`` and ``captions.completed``)."""

    video_id: uuid.UUID
    owner_id: uuid.UUID
    duration_s: float = 0.0
    title: str = ""
    transcript_key: str = ""
    transcript_language: str = ""


class RequestState(StrEnum):
    """A command sent to another service, and whether it was answered."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class OutboundRequest(msgspec.Struct, kw_only=True):
    """A row of ``requests``: an import (ingest) or a transcript (captions) asked for an analysis."""

    request_id: str
    analysis_id: uuid.UUID
    kind: str
    state: RequestState
    video_id: uuid.UUID | None = None
    transcript_key: str | None = None
    language: str | None = None
    code: str | None = None
    message: str | None = None
