"""Events produced by analysis."""

from __future__ import annotations

import uuid

from .base import Event


class CaptionsTranscriptRequested(Event, tag="captions.transcript_requested.v1", frozen=True, kw_only=True):
    """A command to captions: transcribe a video (no separate charge: the requester's hold covers it).

    Captions answers ``captions.completed.v1`` (its ``transcript_key`` names the transcript JSON) or
    ``captions.failed.v1``, with ``correlation_id`` = ``request_id``.
    """

    request_id: str
    video_id: uuid.UUID
    owner_id: uuid.UUID
    language: str = "auto"


class AnalysisCompleted(Event, tag="analysis.completed.v1", frozen=True, kw_only=True):
    """An AI analysis is stored."""

    analysis_id: uuid.UUID
    video_id: uuid.UUID | None = None
    owner_id: uuid.UUID
    source_url: str = ""


class AnalysisFailed(Event, tag="analysis.failed.v1", frozen=True, kw_only=True):
    """An analysis failed."""

    analysis_id: uuid.UUID
    owner_id: uuid.UUID
    code: str
    message: str
