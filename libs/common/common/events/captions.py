"""Events produced by captions."""

from __future__ import annotations

import uuid

import msgspec

from .base import Event


class CaptionTrackRef(msgspec.Struct, frozen=True, kw_only=True):
    """One caption track stored as WebVTT (and SRT)."""

    language: str
    label: str
    vtt_key: str
    srt_key: str = ""
    is_original: bool = False


class CaptionsCompleted(Event, tag="captions.completed.v1", frozen=True, kw_only=True):
    """Captions are ready for a video."""

    caption_job_id: uuid.UUID
    video_id: uuid.UUID
    owner_id: uuid.UUID
    tracks: list[CaptionTrackRef] = []
    transcript_key: str = ""
    language: str = ""


class CaptionsTracksChanged(Event, tag="captions.tracks_changed.v1", frozen=True, kw_only=True):
    """The complete set of a video's live caption tracks after a change (a new job, an edit, a delete).

    Players show exactly these tracks: a consumer replaces what it had for the video with ``tracks``.
    """

    video_id: uuid.UUID
    owner_id: uuid.UUID
    tracks: list[CaptionTrackRef] = []


class CaptionsFailed(Event, tag="captions.failed.v1", frozen=True, kw_only=True):
    """Captioning failed."""

    caption_job_id: uuid.UUID
    video_id: uuid.UUID
    owner_id: uuid.UUID
    code: str
    message: str
