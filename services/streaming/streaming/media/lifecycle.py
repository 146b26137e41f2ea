"""A stream's status changes, each with its event in the same transaction: playable, ready, failed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from common import jobs
from common.events.jobs import JobSubject
from common.events.streaming import StreamFailed, StreamPlayable, StreamReady
from common.jobrunner import JobContext
from common.logging import get_logger
from common.outbox import add as outbox_add

from .. import store
from .probe import SourceInfo
from .publish import Publisher

log = get_logger(__name__)

PRODUCER = "streaming"
JOB_KIND = "transcode"


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a transcode job works on (from the ``video.ingested`` event, kept in the job's params)."""

    video_id: uuid.UUID
    owner_id: uuid.UUID
    storage_key: str
    correlation_id: str = ""

    def params(self) -> dict[str, str]:
        """The job's ``params``."""
        return {
            "video_id": str(self.video_id),
            "storage_key": self.storage_key,
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def of(cls, job: jobs.Job) -> Target:
        """The target of a transcode job."""
        return cls(
            video_id=uuid.UUID(job.params["video_id"]),
            owner_id=job.owner_id,
            storage_key=str(job.params.get("storage_key", "")),
            correlation_id=str(job.params.get("correlation_id", "")),
        )


async def queue_transcode(conn: asyncpg.Connection, target: Target, *, title: str = "") -> jobs.Job:
    """A queued ``transcode`` job for ``target``, named after its video, attached to the stream (caller's
    transaction); the runner hears of it through the ``jobs`` trigger's NOTIFY."""
    job = await jobs.create_job(
        conn,
        kind=JOB_KIND,
        owner_id=target.owner_id,
        producer=PRODUCER,
        params=target.params(),
        stage="queued",
        correlation_id=target.correlation_id,
        subject=JobSubject(kind="video", id=str(target.video_id), title=title),
    )
    await store.set_job(conn, video_id=target.video_id, job_id=job.id)
    log.info("transcode.queued", video_id=str(target.video_id), job_id=str(job.id))
    return job


async def _become(
    conn: asyncpg.Connection,
    target: Target,
    status: str,
    event: type[StreamPlayable | StreamReady | StreamFailed],
    *,
    error: dict[str, str] | None = None,
    **fields: Any,
) -> None:
    """The stream's new ``status`` and the ``event`` announcing it, in the caller's transaction."""
    await store.set_status(conn, video_id=target.video_id, status=status, error=error)
    announced = event(
        video_id=target.video_id,
        owner_id=target.owner_id,
        correlation_id=target.correlation_id,
        producer=PRODUCER,
        **fields,
    )
    await outbox_add(conn, announced)


async def become_playable(
    ctx: JobContext, publisher: Publisher, target: Target, *, audio_only: bool = False
) -> None:
    """Rewrite the master; on the first video rendition (the audio one of an audio-only stream), status
    ``playable`` + ``stream.playable.v1``."""
    async with ctx.transaction() as conn:
        stream = await publisher.master(conn, target.video_id)
        if stream.status != "processing" or not (
            stream.renditions if audio_only else stream.video_renditions
        ):
            return
        await _become(
            conn, target, "playable", StreamPlayable, renditions=[r.name for r in stream.renditions]
        )
        await jobs.update_job(conn, ctx.job.id, producer=PRODUCER, stage="playable", emit=False)


async def become_ready(ctx: JobContext, publisher: Publisher, target: Target, info: SourceInfo) -> None:
    """The final master, status ``ready`` + ``stream.ready.v1``, and the job succeeded: one transaction."""
    async with ctx.transaction() as conn:
        stream = await publisher.master(conn, target.video_id)
        names = [r.name for r in stream.renditions]
        await _become(conn, target, "ready", StreamReady, renditions=names, duration_s=info.duration_s)
        await jobs.update_job(
            conn,
            ctx.job.id,
            producer=PRODUCER,
            status=jobs.JobStatus.SUCCEEDED,
            stage="ready",
            result={"video_id": str(target.video_id), "renditions": names},
            correlation_id=target.correlation_id,
        )


async def fail_stream(conn: asyncpg.Connection, target: Target, code: str, message: str) -> None:
    """The stream ends in ``error`` with ``stream.failed.v1`` (in the caller's transaction)."""
    stream = await store.get_stream(conn, video_id=target.video_id, for_update=True)
    if stream is None or stream.status in ("ready", "error"):
        return
    error = {"code": code, "message": message}
    await _become(conn, target, "error", StreamFailed, error=error, **error)
    log.info("transcode.failed", video_id=str(target.video_id), code=code, message=message)
