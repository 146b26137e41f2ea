"""Event handlers: thin. Inbox claim → domain → outbox, in one transaction (``common.bus.Router``)."""

from __future__ import annotations

import asyncpg

from common import jobs, outbox
from common.bus import Delivery, Router
from common.credits import credits_router
from common.events.analysis import CaptionsTranscriptRequested
from common.events.captions import CaptionsFailed
from common.events.ingest import VideoDeleted, VideoIngested
from common.jobrunner import LeasedJobRunner, OnFailure, cancel_router
from common.storage import ObjectStore

from . import store
from .config import CaptionsSettings
from .errors import Code
from .jobs import PRODUCER, JobParams, tracks_changed
from .models import JobKind

CONSUMER = "captions"
KINDS = (JobKind.CAPTIONS.value, JobKind.TRANSCRIPT.value)


class VideoNotKnownYet(Exception):
    """A transcript request arrived before this service's copy of ``video.ingested``: retried with back-off."""


def router(
    settings: CaptionsSettings, *, objects: ObjectStore, runner: LeasedJobRunner | None, on_failure: OnFailure
) -> Router:
    """The worker's queue: videos (read model), transcript requests, cancels and billing's answers."""
    r = Router(consumer=CONSUMER)

    @r.on(VideoIngested)
    async def on_video_ingested(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None:
        await store.upsert_video(
            conn,
            video_id=event.video_id,
            owner_id=event.owner_id,
            storage_key=event.storage_key,
            duration_s=event.duration_s,
            fps=event.fps,
            audio_codec=event.audio_codec,
        )

    @r.on(VideoDeleted)
    async def on_video_deleted(conn: asyncpg.Connection, event: VideoDeleted, delivery: Delivery) -> None:
        await store.mark_video_deleted(conn, video_id=event.video_id, owner_id=event.owner_id)
        if await store.delete_video_tracks(conn, video_id=event.video_id):
            await tracks_changed(conn, video_id=event.video_id, owner_id=event.owner_id)
        # idempotent: a redelivery deletes nothing twice; the rows say the objects are gone
        await objects.delete_prefix(f"captions/{event.video_id}/")

    @r.on(CaptionsTranscriptRequested)
    async def on_transcript_requested(
        conn: asyncpg.Connection, event: CaptionsTranscriptRequested, delivery: Delivery
    ) -> None:
        video = await store.get_video(conn, video_id=event.video_id)
        if video is None or video.owner_id != event.owner_id:
            if delivery.attempt <= settings.video_wait_attempts:
                raise VideoNotKnownYet(str(event.video_id))  # our video.ingested may still be in flight
            await outbox.add(
                conn,
                CaptionsFailed(
                    caption_job_id=event.id,
                    video_id=event.video_id,
                    owner_id=event.owner_id,
                    code=Code.VIDEO_NOT_FOUND,
                    message="captions knows no such video of this owner",
                    producer=PRODUCER,
                    correlation_id=event.request_id,
                ),
            )
            return
        params = JobParams(
            video_id=video.video_id,
            storage_key=video.storage_key,
            duration_s=video.duration_s,
            fps=video.fps,
            language=event.language or "auto",
            request_id=event.request_id,
        )
        await jobs.create_job(
            conn,
            kind=JobKind.TRANSCRIPT,
            owner_id=event.owner_id,
            producer=PRODUCER,
            params=params.to_params(),
        )

    r.include(cancel_router(kinds=KINDS, producer=PRODUCER, runner=runner))
    r.include(credits_router(on_failure=on_failure))
    return r
