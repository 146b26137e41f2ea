"""Event handlers: thin. Inbox claim → domain → outbox, in one transaction (``common.bus.Router``)."""

from __future__ import annotations

import asyncpg

from common import jobs, videos
from common.bus import Delivery, Router
from common.credits import credits_router
from common.events.analysis import CaptionsTranscriptRequested
from common.events.ingest import VideoDeleted, VideoIngested
from common.jobrunner import LeasedJobRunner, OnFailure, cancel_router
from common.jobs import JobFailure
from common.storage import ObjectStore
from common.views import view_of

from . import store
from .config import CaptionsSettings
from .errors import Code
from .jobs import PRODUCER, JobParams, captions_failed, tracks_changed
from .models import JobKind, VideoRef

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
        await store.upsert_video(conn, view_of(VideoRef, event))

    @r.on(VideoDeleted)
    async def on_video_deleted(conn: asyncpg.Connection, event: VideoDeleted, delivery: Delivery) -> None:
        await videos.mark_video_deleted(conn, video_id=event.video_id, owner_id=event.owner_id)
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
            unknown = JobFailure(Code.VIDEO_NOT_FOUND, "captions knows no such video of this owner")
            await captions_failed(
                conn,
                event.id,
                video_id=event.video_id,
                owner_id=event.owner_id,
                failure=unknown,
                request_id=event.request_id,
            )
            return
        params = view_of(JobParams, video, language=event.language or "auto", request_id=event.request_id)
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
