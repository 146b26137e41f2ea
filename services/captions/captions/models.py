"""Records, request and response bodies, statuses and error codes of the captions service."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from common.pagination import Items
from common.videos import VideoRow
from common.views import View


class TrackKind(StrEnum):
    """Where a track's cues came from."""

    TRANSCRIBED = "transcribed"
    TRANSLATED = "translated"
    EDITED = "edited"


class TrackStatus(StrEnum):
    """A track is live until it is deleted (by its owner, or with its video)."""

    READY = "ready"
    DELETED = "deleted"


class JobKind(StrEnum):
    """The captions service's job kinds."""

    CAPTIONS = "captions"  # paid: transcribe (+ translate) and publish tracks
    TRANSCRIPT = "transcript"  # for another service (captions.transcript_requested): no charge, no tracks


class VideoRef(VideoRow, kw_only=True, frozen=True):
    """What captions knows of a video (from ``video.ingested``)."""

    fps: float = 0.0
    audio_codec: str = ""


class Track(msgspec.Struct, kw_only=True):
    """A caption track row."""

    id: uuid.UUID
    video_id: uuid.UUID
    owner_id: uuid.UUID
    job_id: uuid.UUID | None
    language: str
    label: str
    kind: TrackKind
    status: TrackStatus
    version: int
    cue_count: int
    quality: dict[str, int]
    vtt_key: str
    srt_key: str
    json_key: str
    created_at: datetime
    updated_at: datetime


LanguageCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", max_length=16)]


class CaptionsRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /videos/{id}/captions: transcribe in ``language`` ("auto" detects it) and translate to each of ``translate_to``."""

    language: Annotated[str, msgspec.Meta(max_length=16)] = "auto"
    translate_to: Annotated[list[LanguageCode], msgspec.Meta(max_length=10)] = []


class TrackView(View, kw_only=True):
    """A caption track as the API shows it."""

    id: uuid.UUID
    video_id: uuid.UUID
    language: str
    label: str
    kind: TrackKind
    status: TrackStatus
    cue_count: int
    quality: dict[str, int]
    version: int
    created_at: datetime
    updated_at: datetime


TrackList = Items[TrackView]


class WordIn(msgspec.Struct, kw_only=True):
    """A word with its times (seconds)."""

    text: str
    start: float
    end: float


class CueIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One cue of a user's edit."""

    # written into WebVTT as the cue identifier: no line breaks, no "-->" (a file every player still reads)
    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None
    start: Annotated[float, msgspec.Meta(ge=0)]
    end: Annotated[float, msgspec.Meta(gt=0)]
    text: Annotated[str, msgspec.Meta(max_length=500)]


class CuesEdit(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PUT /captions/{track_id}/cues: the whole new cue list (validated by the language's profile)."""

    cues: Annotated[list[CueIn], msgspec.Meta(max_length=20000)]
    base_version: int | None = None  # optimistic concurrency: 409 when the track moved on


class QualityLimits(msgspec.Struct, kw_only=True):
    """The rules of a track's language (docs/captions.md, "Profiles and their sources")."""

    max_chars_per_line: float
    max_lines: int
    max_chars_per_second: float
    min_duration_s: float
    max_duration_s: float
    min_gap_ms: int
    half_width_latin: bool  # Latin letters, digits, spaces and punctuation count half (Korean)


class CueProblem(msgspec.Struct, kw_only=True):
    """One rule a cue breaks: the cue (its number in the track, from 1, and its times), the rule and the numbers."""

    cue_id: str
    number: int
    start_s: float
    end_s: float
    rule: str
    detail: str


class QualityReportView(msgspec.Struct, kw_only=True):
    """GET /captions/{track_id}/quality: a track's current version checked against its language's rules."""

    track_id: uuid.UUID
    version: int
    language: str
    cue_count: int
    limits: QualityLimits
    counts: dict[str, int]  # violations per rule, every rule listed (the track's ``quality``)
    problems: list[CueProblem]


class CaptionsJobView(msgspec.Struct, kw_only=True):
    """The answer to a captions request: its job."""

    job: dict[str, Any]
