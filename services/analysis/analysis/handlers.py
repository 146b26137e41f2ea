"""Event handlers: thin. Inbox claim → read model or a request's answer → outbox, in one transaction."""

from __future__ import annotations

from typing import Any

import asyncpg

from common.bus import Delivery, Router
from common.credits import credits_router
from common.events.captions import CaptionsCompleted, CaptionsFailed
from common.events.ingest import VideoDeleted, VideoIngested, VideoIngestFailed
from common.jobrunner import LeasedJobRunner, OnFailure, cancel_router

from . import store
from .models import JobKind, RequestState
from .sources import PRODUCER

CONSUMER = "analysis"
KINDS = (JobKind.ANALYSIS.value, JobKind.BATCH_CHUNK.value)


async def _answered(
    conn: asyncpg.Connection, correlation_id: str, state: RequestState, **answer: Any
) -> None:
    """An event that answers one of our requests (its correlation id is the request id) is recorded on it."""
    if correlation_id:
        await store.answer_request(conn, request_id=correlation_id, state=state, **answer)


async def _refused(conn: asyncpg.Connection, event: VideoIngestFailed | CaptionsFailed) -> None:
    """The answer to one of our requests is a failure, with its code."""
    await _answered(conn, event.correlation_id, RequestState.FAILED, code=event.code, message=event.message)


def router(*, runner: LeasedJobRunner | None, on_failure: OnFailure) -> Router:
    """The worker's queue: videos and their transcripts (read model), answers to our requests, cancels, billing."""
    r = Router(consumer=CONSUMER)

    @r.on(VideoIngested)
    async def on_video_ingested(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None:
        await store.upsert_video(conn, event)
        await _answered(conn, event.correlation_id, RequestState.DONE, video_id=event.video_id)

    @r.on(VideoIngestFailed)
    async def on_ingest_failed(
        conn: asyncpg.Connection, event: VideoIngestFailed, delivery: Delivery
    ) -> None:
        await _refused(conn, event)

    @r.on(VideoDeleted)
    async def on_video_deleted(conn: asyncpg.Connection, event: VideoDeleted, delivery: Delivery) -> None:
        await store.mark_video_deleted(conn, video_id=event.video_id, owner_id=event.owner_id)

    @r.on(CaptionsCompleted)
    async def on_captions_completed(
        conn: asyncpg.Connection, event: CaptionsCompleted, delivery: Delivery
    ) -> None:
        if not event.transcript_key:
            return
        await store.set_video_transcript(conn, event)
        answer = {"transcript_key": event.transcript_key, "language": event.language}
        await _answered(conn, event.correlation_id, RequestState.DONE, **answer)

    @r.on(CaptionsFailed)
    async def on_captions_failed(conn: asyncpg.Connection, event: CaptionsFailed, delivery: Delivery) -> None:
        await _refused(conn, event)

    r.include(cancel_router(kinds=KINDS, producer=PRODUCER, runner=runner))
    r.include(credits_router(on_failure=on_failure))
    return r
