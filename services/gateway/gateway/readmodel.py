"""The jobs read model: every service's job snapshots, as the owner sees them; cancel requests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from common.errors import NotFound
from common.events.jobs import JobCancelRequested, JobProgress
from common.http import Problem
from common.jobs import TERMINAL, Job, JobStatus
from common.pagination import Page, PageRequest, Paging, page_of

from . import store
from .models import GatewayCode, JobView

STATUSES = frozenset(s.value for s in JobStatus)
JOBS_PAGING = Paging(default=20, maximum=100)
#: the keyset position of a page of jobs: the last one's (created_at, id)
JobKey = tuple[datetime, uuid.UUID]


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
        "subject": msgspec.to_builtins(event.subject) if event.subject else None,
    }


async def apply_snapshot(conn: store.Connection, event: JobProgress) -> bool:
    """Record a snapshot unless it is stale or the job already ended; idempotent by ``seq``."""
    return await store.apply_job_snapshot(conn, event)


def _split(values: Sequence[str]) -> list[str]:
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


async def list_jobs(
    pool: store.Pool,
    *,
    owner_id: uuid.UUID,
    statuses: Sequence[str] = (),
    kinds: Sequence[str] = (),
    page: PageRequest[JobKey],
) -> Page[JobView]:
    """A page of the owner's jobs, newest first, and the cursor of the next page (or null)."""
    wanted = _split(statuses)
    bad = [s for s in wanted if s not in STATUSES]
    if bad:
        raise Problem(
            422,
            GatewayCode.INVALID_STATUS,
            f"unknown status {bad[0]!r}; use one of {sorted(STATUSES)}",
            field="status",
        )
    async with pool.acquire() as conn:
        jobs = await store.list_jobs(
            conn,
            owner_id=owner_id,
            statuses=wanted,
            kinds=_split(kinds),
            limit=page.limit + 1,
            before=page.after,
        )
    return page_of(jobs, page, key=_key, view=JobView.of)


def _key(job: Job) -> JobKey:
    assert job.created_at is not None
    return job.created_at, job.id


async def get_job(pool: store.Pool, *, owner_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    """The owner's job; 404 ``job.not_found`` for a missing job and for another user's."""
    async with pool.acquire() as conn:
        job = await store.owned_job(conn, owner_id=owner_id, job_id=job_id)
    if job is None:
        raise NotFound("job")
    return job


async def request_cancel(
    pool: store.Pool, *, owner_id: uuid.UUID, job_id: uuid.UUID, producer: str, correlation_id: str = ""
) -> Job:
    """Ask the owning service to cancel (``job.cancel_requested.v1`` via the outbox); 409 if the job ended."""
    async with store.transaction(pool) as conn:
        job = await store.owned_job(conn, owner_id=owner_id, job_id=job_id, for_update=True)
        if job is None:
            raise NotFound("job")
        if job.status in TERMINAL:
            raise Problem(
                409, GatewayCode.JOB_NOT_CANCELABLE, f"the job already {job.status}", job_status=job.status
            )
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
