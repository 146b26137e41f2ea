"""Job events (ARCHITECTURE §4). Every service that runs long work publishes these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from .base import Event


class JobError(msgspec.Struct, frozen=True, kw_only=True):
    """Why a job failed: a stable code and a human message."""

    code: str
    message: str


class JobSubject(msgspec.Struct, frozen=True, kw_only=True):
    """What a job works on (``kind`` ``video``: the video's id and its title when known), so a job list names it."""

    kind: str
    id: str
    title: str = ""


class JobProgress(Event, tag="job.progress.v1", frozen=True, kw_only=True):
    """A snapshot of a job. Status changes go through the outbox; percent-only updates may be direct."""

    direct: ClassVar[bool] = True

    job_id: uuid.UUID
    owner_id: uuid.UUID
    kind: str  # import | search | transcode | captions | analysis | analysis_batch | render | ...
    status: str  # queued | running | succeeded | failed | canceled
    percent: float = 0.0
    stage: str = ""
    error: JobError | None = None
    result: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: monotonically increasing per job, so consumers can drop stale snapshots
    seq: int = 0
    subject: JobSubject | None = None


class JobCancelRequested(Event, tag="job.cancel_requested.v1", frozen=True, kw_only=True):
    """A user asked to cancel a job; the owning service (by ``kind``) cancels it and reports ``canceled``."""

    job_id: uuid.UUID
    owner_id: uuid.UUID
    kind: str
