"""The jobs read model: every service's job snapshots, as the owner sees them; cancel requests."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from common.events.jobs import JobCancelRequested, JobProgress
from common.http import Problem
from common.jobs import TERMINAL, Job, JobStatus

from . import store

STATUSES = frozenset(s.value for s in JobStatus)
MAX_PAGE = 100


def job_view(job: Job) -> dict[str, Any]:
    """The job as the API and the WebSocket show it (ARCHITECTURE §4, plus ``cancel_requested`` and ``seq``)."""
    return {**job.public(), "cancel_requested": job.cancel_requested, "seq": job.seq}


def snapshot_view(event: JobProgress) -> dict[str, Any]:
    """A ``job.progress.v1`` snapshot in the API's job shape."""
    return {
        "id": str(event.job_id),
        "kind": event.kind,
        "owner_id": str(event.owner_id),
        "status": event.status,
        "progress": round(event.percent, 2),
        "stage": event.stage,
        "error": {"code": event.error.code, "message": event.error.message} if event.error else None,
        "result": event.result,
        "created_at": event.created_at.isoformat() if event.created_at else None,
        "updated_at": event.updated_at.isoformat() if event.updated_at else None,
        # lets a client apply pushes that arrive out of order (the same rule as the read model)
        "seq": event.seq,
    }


async def apply_snapshot(conn: store.Connection, event: JobProgress) -> bool:
    """Record a snapshot unless it is stale or the job already ended; idempotent by ``seq``."""
    return await store.apply_job_snapshot(
        conn,
        job_id=event.job_id,
        owner_id=event.owner_id,
        kind=event.kind,
        status=event.status,
        progress=event.percent,
        stage=event.stage,
        error={"code": event.error.code, "message": event.error.message} if event.error else None,
        result=event.result,
        seq=event.seq,
        created_at=event.created_at,
        updated_at=event.updated_at,
    )


def encode_cursor(job: Job) -> str:
    """An opaque keyset cursor after ``job``."""
    assert job.created_at is not None
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The keyset position of a cursor; 422 ``validation.cursor`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, job_id = raw.partition("|")
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(422, "validation.cursor", "malformed cursor", field="cursor") from exc


def _split(values: Sequence[str]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


async def list_jobs(
    pool: store.Pool,
    *,
    owner_id: uuid.UUID,
    statuses: Sequence[str] = (),
    kinds: Sequence[str] = (),
    limit: int = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    """A page of the owner's jobs, newest first, and the cursor of the next page (or null)."""
    wanted = _split(statuses)
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise Problem(
            422,
            "validation.status",
            f"unknown status {bad[0]!r}; use one of {sorted(STATUSES)}",
            field="status",
        )
    if not 1 <= limit <= MAX_PAGE:
        raise Problem(422, "validation.limit", f"limit must be between 1 and {MAX_PAGE}", field="limit")
    before = decode_cursor(cursor) if cursor else None
    async with pool.acquire() as conn:
        jobs = await store.list_jobs(
            conn, owner_id=owner_id, statuses=wanted, kinds=_split(kinds), limit=limit + 1, before=before
        )
    page = jobs[:limit]
    return {
        "items": [job_view(j) for j in page],
        "next_cursor": encode_cursor(page[-1]) if len(jobs) > limit else None,
    }


async def get_job(pool: store.Pool, *, owner_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    """The owner's job; 404 ``job.not_found`` for a missing job and for another user's."""
    async with pool.acquire() as conn:
        job = await store.owned_job(conn, owner_id=owner_id, job_id=job_id)
    if job is None:
        raise Problem(404, "job.not_found", "no such job")
    return job


async def request_cancel(
    pool: store.Pool, *, owner_id: uuid.UUID, job_id: uuid.UUID, producer: str, correlation_id: str = ""
) -> Job:
    """Ask the owning service to cancel (``job.cancel_requested.v1`` via the outbox); 409 if the job ended."""
    async with store.transaction(pool) as conn:
        job = await store.owned_job(conn, owner_id=owner_id, job_id=job_id, for_update=True)
        if job is None:
            raise Problem(404, "job.not_found", "no such job")
        if job.status in TERMINAL:
            raise Problem(409, "job.not_cancelable", f"the job already {job.status}", job_status=job.status)
        if job.cancel_requested:
            return job  # asked before; the owning service has the request already
        await store.add_event(
            conn,
            event=JobCancelRequested(
                job_id=job.id,
                owner_id=job.owner_id,
                kind=job.kind,
                producer=producer,
                correlation_id=correlation_id,
            ),
        )
        return await store.mark_cancel_requested(conn, job_id=job.id)
