"""Events produced by analysis."""

from __future__ import annotations

import uuid

from .base import Event


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
