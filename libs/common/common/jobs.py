"""The shared job model (ARCHITECTURE §4): status transitions, stable error codes, progress events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import asyncpg
import msgspec

from . import credit_holds, outbox
from .bus.base import Bus
from .errors import CodedError, public_message
from .events.jobs import JobError, JobProgress, JobSubject
from .logging import get_logger
from .metrics import JOBS

log = get_logger(__name__)


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
_ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset(
        {JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SUCCEEDED}
    ),
    JobStatus.RUNNING: frozenset(
        {JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.QUEUED}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}


class ErrorCode(StrEnum):
    """Stable error codes shared across services (services add their own ``<area>.<reason>`` codes too)."""

    MEDIA_UNREADABLE = "media.unreadable"
    MEDIA_NO_VIDEO = "media.no_video_stream"
    MEDIA_UNSUPPORTED_CODEC = "media.unsupported_codec"
    MEDIA_TOO_LONG = "media.too_long"
    SOURCE_UNAVAILABLE = "source.unavailable"
    SOURCE_UNSUPPORTED = "source.unsupported"
    SOURCE_FORBIDDEN = "source.forbidden_address"
    SOURCE_TOO_LONG = "source.too_long"
    CREDITS_INSUFFICIENT = "credits.insufficient"
    CANCELED = "job.canceled"
    INTERNAL = "internal.error"
    TIMEOUT = "job.timeout"


P = TypeVar("P", bound="JobParams")


class JobParams(msgspec.Struct, kw_only=True, frozen=True):
    """A job kind's parameters (``jobs.params``): subclass with the fields; ``of(job)`` reads, ``to_params()`` writes."""

    @classmethod
    def of(cls: type[P], job: Job) -> P:
        """The parameters of ``job``."""
        return msgspec.convert(job.params, cls)

    def to_params(self) -> dict[str, Any]:
        """As ``jobs.params`` JSON."""
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out


class InvalidTransition(Exception):
    """A job cannot move from its status to the requested one (e.g. out of a terminal status)."""


class JobFailure(CodedError):
    """Raise from domain work to fail a job with a stable code and a user-facing message (422 over HTTP)."""


class Job(msgspec.Struct, kw_only=True):
    """A row of a service's ``jobs`` table."""

    id: uuid.UUID
    kind: str
    owner_id: uuid.UUID
    status: str
    progress: float = 0.0
    stage: str = ""
    error: dict[str, str] | None = None
    result: dict[str, Any] | None = None
    params: dict[str, Any] = {}
    seq: int = 0
    cancel_requested: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    subject: dict[str, str] | None = None

    @property
    def terminal(self) -> bool:
        """Whether the job has ended."""
        return self.status in TERMINAL

    def to_event(self, *, producer: str, correlation_id: str = "") -> JobProgress:
        """The snapshot event for this job."""
        return JobProgress(
            job_id=self.id,
            owner_id=self.owner_id,
            kind=self.kind,
            status=self.status,
            percent=round(self.progress, 2),
            stage=self.stage,
            error=JobError(code=self.error["code"], message=self.error.get("message", ""))
            if self.error
            else None,
            result=self.result,
            created_at=self.created_at,
            updated_at=self.updated_at,
            seq=self.seq,
            subject=msgspec.convert(self.subject, JobSubject) if self.subject else None,
            producer=producer,
            correlation_id=correlation_id,
        )

    def public(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {
            "id": str(self.id),
            "kind": self.kind,
            "owner_id": str(self.owner_id),
            "status": self.status,
            "progress": round(self.progress, 2),
            "stage": self.stage,
            "error": self.error,
            "result": self.result,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "subject": self.subject,
        }


_COLS = (
    "id, kind, owner_id, status, progress, stage, error, result, params, seq, cancel_requested, created_at,"
    " updated_at, subject"
)


def _row(r: Mapping[str, Any]) -> Job:
    return Job(**dict(r))


async def create_job(
    conn: asyncpg.Connection,
    *,
    kind: str,
    owner_id: uuid.UUID,
    producer: str,
    params: Mapping[str, Any] | None = None,
    stage: str = "",
    job_id: uuid.UUID | None = None,
    correlation_id: str = "",
    subject: JobSubject | None = None,
) -> Job:
    """Insert a queued job and its snapshot event (outbox), in the caller's transaction; ``subject`` names what it
    works on (the user's video) in every snapshot."""
    r = await conn.fetchrow(
        "INSERT INTO jobs (id, kind, owner_id, status, stage, params, seq, subject)"
        f" VALUES ($1, $2, $3, 'queued', $4, $5, 1, $6) RETURNING {_COLS}",
        job_id or uuid.uuid4(),
        kind,
        owner_id,
        stage,
        dict(params or {}),
        msgspec.to_builtins(subject) if subject is not None else None,
    )
    job = _row(r)
    JOBS.labels(producer, kind, job.status).inc()
    await outbox.add(conn, job.to_event(producer=producer, correlation_id=correlation_id))
    return job


async def get_job(conn: asyncpg.Connection, job_id: uuid.UUID, *, for_update: bool = False) -> Job | None:
    """A job by id (optionally locked for update)."""
    r = await conn.fetchrow(
        f"SELECT {_COLS} FROM jobs WHERE id = $1" + (" FOR UPDATE" if for_update else ""), job_id
    )
    return _row(r) if r else None


async def update_job(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    *,
    producer: str,
    status: JobStatus | str | None = None,
    progress: float | None = None,
    stage: str | None = None,
    error: JobFailure | Mapping[str, str] | None = None,
    result: Mapping[str, Any] | None = None,
    correlation_id: str = "",
    emit: bool = True,
) -> Job:
    """Change a job; a status change writes its snapshot to the outbox (same transaction).

    Raises ``InvalidTransition`` when the job already ended (a late progress update of a canceled job).
    """
    current = await get_job(conn, job_id, for_update=True)
    if current is None:
        raise KeyError(f"job {job_id} not found")
    new_status = JobStatus(status) if status is not None else JobStatus(current.status)
    if new_status not in _ALLOWED[JobStatus(current.status)]:
        raise InvalidTransition(f"job {job_id}: {current.status} -> {new_status}")
    err: dict[str, str] | None = current.error
    if isinstance(error, JobFailure):
        err = {"code": error.code, "message": public_message(error.message)}
    elif error is not None:
        err = dict(error)
        if "message" in err:  # what users read never names a file of ours
            err["message"] = public_message(err["message"])
    pct = current.progress if progress is None else max(0.0, min(100.0, float(progress)))
    if new_status == JobStatus.SUCCEEDED:
        pct = 100.0
    r = await conn.fetchrow(
        f"UPDATE jobs SET status = $2, progress = $3, stage = $4, error = $5, result = $6, seq = seq + 1,"
        f" updated_at = now() WHERE id = $1 RETURNING {_COLS}",
        job_id,
        str(new_status),
        pct,
        current.stage if stage is None else stage,
        err,
        dict(result) if result is not None else current.result,
    )
    job = _row(r)
    if new_status != current.status:
        JOBS.labels(producer, job.kind, job.status).inc()
        if new_status in TERMINAL:
            # a paid job's settle is sent by the transaction that ends it, whoever ends it (common.credits)
            await credit_holds.settle_ended_job(
                conn,
                job_id=job_id,
                succeeded=new_status == JobStatus.SUCCEEDED,
                producer=producer,
                correlation_id=correlation_id,
            )
    if emit and (
        new_status != current.status or new_status in TERMINAL or result is not None or error is not None
    ):
        await outbox.add(conn, job.to_event(producer=producer, correlation_id=correlation_id))
    return job


async def succeed_job(
    conn: asyncpg.Connection, job_id: uuid.UUID, *, producer: str, result: Mapping[str, Any]
) -> Job:
    """End a job ``succeeded`` (100 %, stage ``done``) with its result, in the caller's final transaction."""
    return await update_job(
        conn, job_id, producer=producer, status=JobStatus.SUCCEEDED, progress=100, stage="done", result=result
    )


async def request_cancel(conn: asyncpg.Connection, job_id: uuid.UUID, *, producer: str) -> Job | None:
    """Mark a job for cancellation; a queued job is canceled at once, a running one at its next checkpoint."""
    job = await get_job(conn, job_id, for_update=True)
    if job is None or job.terminal:
        return job
    if job.status == JobStatus.QUEUED:
        return await update_job(
            conn,
            job_id,
            producer=producer,
            status=JobStatus.CANCELED,
            error={"code": ErrorCode.CANCELED, "message": "canceled by the user"},
        )
    await conn.execute("UPDATE jobs SET cancel_requested = true WHERE id = $1", job_id)
    job.cancel_requested = True
    return job


class ProgressReporter:
    """Publishes throttled progress snapshots directly on the bus (skipping the outbox) and records them.

    Call ``await reporter.update(percent, stage)`` as often as you like; it writes at most every
    ``min_interval_s`` (or when the stage changes) and raises ``JobFailure(job.canceled)`` when a
    cancel was requested, so long work stops at its next checkpoint.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Bus | None,
        job_id: uuid.UUID,
        *,
        producer: str,
        min_interval_s: float = 0.5,
    ) -> None:
        self.pool, self.bus, self.job_id, self.producer = pool, bus, job_id, producer
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._stage: str | None = None
        self._lock = asyncio.Lock()

    async def update(self, percent: float, stage: str | None = None, *, force: bool = False) -> None:
        """Record progress; publish a snapshot if enough time passed."""
        now = time.monotonic()
        if not force and stage == self._stage and now - self._last < self.min_interval_s:
            return
        async with self._lock:
            self._last, self._stage = now, stage
            async with self.pool.acquire() as conn, conn.transaction():
                current = await get_job(conn, self.job_id, for_update=True)
                if current is None or current.terminal:
                    return
                if current.cancel_requested:
                    raise JobFailure(ErrorCode.CANCELED, "canceled by the user")
                job = await update_job(
                    conn,
                    self.job_id,
                    producer=self.producer,
                    progress=min(percent, 99.9),
                    stage=stage,
                    emit=False,
                )
            if self.bus is not None:
                try:
                    await self.bus.publish(job.to_event(producer=self.producer))
                except Exception as exc:  # progress is best-effort; status changes use the outbox
                    log.warning("job.progress_publish_failed", job_id=str(self.job_id), error=repr(exc))
