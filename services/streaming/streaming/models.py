"""Streaming's API bodies (the OpenAPI document is generated from these) and its error codes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from common.errors import public_message
from common.events.jobs import JobError
from common.views import View, view_of

from .store import RenditionRecord, StreamRecord
from .webhook_store import AttemptRecord, DeliveryRecord, WebhookFields, WebhookRecord


class StreamingCode(StrEnum):
    """Every error code streaming answers or fails a stream with (besides ``CommonCode``/``common.jobs.ErrorCode``)."""

    STREAM_NOT_FOUND = "stream.not_found"
    STREAM_NOT_READY = "stream.not_ready"
    STREAM_NOT_RETRYABLE = "stream.not_retryable"
    FILE_NOT_FOUND = "file.not_found"
    TOKEN_INVALID = "playback.token_invalid"
    TOKEN_EXPIRED = "playback.token_expired"
    RANGE_NOT_SATISFIABLE = "playback.range_not_satisfiable"
    WEBHOOK_NOT_FOUND = "webhook.not_found"
    WEBHOOK_LIMIT_REACHED = "webhook.limit_reached"
    WEBHOOK_INVALID_URL = "webhook.invalid_url"
    WEBHOOK_FORBIDDEN_ADDRESS = "webhook.forbidden_address"
    WEBHOOK_UNRESOLVABLE_HOST = "webhook.unresolvable_host"
    WEBHOOK_INVALID_EVENTS = "webhook.invalid_events"
    WEBHOOK_DISABLED = "webhook.disabled"
    DELIVERY_NOT_FOUND = "webhook_delivery.not_found"
    DELIVERY_PENDING = "webhook_delivery.pending"
    TRANSCODE_FAILED = "transcode.failed"


# -- playback ----------------------------------------------------------------------------------------------------


class PlaybackRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of ``POST /videos/{id}/playback`` (optional)."""

    expires_in: Annotated[
        int | None,
        msgspec.Meta(description="token lifetime in seconds; default 3600, clamped to [60, 86400]"),
    ] = None


class PlayQuery(msgspec.Struct):
    """Query of ``/play/{id}/{path}``."""

    token: Annotated[str, msgspec.Meta(description="the playback token (POST .../playback)")] = ""


class PlaybackView(msgspec.Struct, kw_only=True):
    """A signed playback token bound to one video, and the URLs that carry it (null: not produced yet)."""

    video_id: uuid.UUID
    token: str
    expires_at: datetime
    expires_in: int
    hls_url: str
    dash_url: str | None
    poster_url: str | None
    thumbnails_vtt_url: str | None


# -- streams -----------------------------------------------------------------------------------------------------


class RenditionView(msgspec.Struct, kw_only=True):
    """One rendition: pixels for video, channels for audio; ``bandwidth`` is the peak segment bitrate (bits/s)."""

    name: str
    kind: Literal["video", "audio"]
    width: int | None
    height: int | None
    channels: int | None
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float | None

    @classmethod
    def of(cls, r: RenditionRecord) -> RenditionView:
        """The rendition as the API shows it (the audio row keeps its channel count in ``width``)."""
        if r.kind == "audio":
            return view_of(cls, r, width=None, height=None, channels=r.width, frame_rate=None)
        return view_of(cls, r, kind="video", channels=None)


class SubtitleView(msgspec.Struct, kw_only=True):
    """A subtitle track of the stream."""

    language: str
    label: str


class StreamView(msgspec.Struct, kw_only=True):
    """A video's stream: status, renditions, and why it failed (``error``) if it did.

    ``poster_url`` is relative to ``/play/<id>/`` and needs a playback token (``POST .../playback`` returns
    full URLs).
    """

    video_id: uuid.UUID
    status: Literal["processing", "playable", "ready", "error"]
    job_id: Annotated[
        uuid.UUID | None,
        msgspec.Meta(description="the transcode job (GET /api/v1/jobs/{id}); a retry makes a new one"),
    ]
    renditions: list[RenditionView]
    duration_s: float
    width: int
    height: int
    poster_url: str | None
    has_dash: bool
    subtitles: list[SubtitleView]
    error: JobError | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, stream: StreamRecord, renditions: list[RenditionRecord]) -> StreamView:
        """The stream as the API shows it, listing ``renditions`` (what the master playlist lists)."""
        return view_of(
            cls,
            stream,
            renditions=[RenditionView.of(r) for r in renditions],
            poster_url=f"/play/{stream.video_id}/thumbs/poster.jpg" if stream.poster_key else None,
            subtitles=[SubtitleView(language=s.language, label=s.label) for s in stream.subtitles],
            error=public_error(stream.error),
        )


def public_error(error: dict[str, str] | None) -> JobError | None:
    """Why a stream failed, as its owner may read it (library errors quote temp paths: never a file of ours)."""
    if not error:
        return None
    return JobError(code=error.get("code", ""), message=public_message(error.get("message", "")))


#: how many videos one ``GET /streams`` may ask about (a page of the library is at most 100 videos)
MAX_STATE_IDS = 100


class StreamStatesQuery(msgspec.Struct, kw_only=True):
    """Query of ``GET /streams``: the videos asked about."""

    video_ids: Annotated[
        str,
        msgspec.Meta(
            description=f"comma-separated video ids, 1 to {MAX_STATE_IDS} (a repeated id is answered once)",
            examples=["0b7c3f0e-3d1b-4c47-9a44-5b8b1f0f7e21,5e8f2a1c-9b7d-4e0f-8c3a-2d6b4a9e1f00"],
        ),
    ]

    def __post_init__(self) -> None:
        # a bad list is the kit's 422 validation.invalid (read_query turns this ValueError into it)
        self.ids()

    def ids(self) -> list[uuid.UUID]:
        """The ids asked about, in the order asked, each once."""
        parts = [p.strip() for p in self.video_ids.split(",")]
        if not any(parts):
            raise ValueError("video_ids: give at least one video id")
        try:
            ids = list(dict.fromkeys(uuid.UUID(p) for p in parts if p))
        except ValueError:
            raise ValueError("video_ids: each one must be a UUID") from None
        if len(ids) > MAX_STATE_IDS:
            raise ValueError(f"video_ids: at most {MAX_STATE_IDS} videos at once")
        return ids


class StreamStateView(msgspec.Struct, kw_only=True):
    """One video's stream state, for a grid of cards.

    ``not_found``: no stream of the caller's has this id (not transcoding yet, deleted, another user's or unknown:
    they read alike). ``poster_url`` (playable/ready with a poster) is absolute and carries a playback token of
    the default lifetime, the same URL for every ask within a few minutes so that browsers cache the image.
    """

    video_id: uuid.UUID
    status: Literal["processing", "playable", "ready", "error", "not_found"]
    error: JobError | None
    poster_url: str | None


# -- webhooks ----------------------------------------------------------------------------------------------------


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Body of ``POST /webhooks``: an http(s) endpoint on a public address, and the events it wants."""

    url: str
    events: list[str]


class WebhookView(WebhookFields, View, kw_only=True):
    """An endpoint (``enabled`` is false once it was disabled for failing continuously)."""


class WebhookCreatedView(WebhookView, kw_only=True):
    """A new endpoint with its signing ``secret``, shown only in this response."""

    secret: str

    @classmethod
    def created(cls, hook: WebhookRecord, secret: str) -> WebhookCreatedView:
        """The answer to the registration."""
        return view_of(cls, hook, secret=secret)


class WebhookList(msgspec.Struct, kw_only=True):
    """The caller's endpoints (at most ``WEBHOOK_MAX_PER_USER``, so never paged)."""

    items: list[WebhookView]


class DeliveryAttemptView(AttemptRecord, View, kw_only=True):
    """One HTTP attempt (``status_code`` null: no HTTP answer, e.g. a timeout)."""


class DeliveryView(msgspec.Struct, kw_only=True):
    """One event sent (or to send) to an endpoint; ``event_id`` is the body's id and ``Reelforge-Event-Id``."""

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "delivered", "failed", "canceled"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[DeliveryAttemptView]

    @classmethod
    def of(cls, d: DeliveryRecord) -> DeliveryView:
        """The delivery as its owner sees it."""
        return view_of(
            cls,
            d,
            attempt_count=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status,
            attempts=[DeliveryAttemptView.of(a) for a in d.attempt_log],
        )
