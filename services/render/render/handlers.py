"""Event handlers: thin. Inbox claim → domain → outbox, in one transaction (``common.bus.Router``)."""

from __future__ import annotations

import uuid

import asyncpg

from common import videos
from common.bus import Delivery, Router
from common.credits import credits_router
from common.events.ingest import VideoDeleted, VideoIngested, VideoIngestFailed
from common.jobrunner import LeasedJobRunner, OnFailure, cancel_router
from common.logging import get_logger
from common.storage import ObjectStore
from common.views import view_of

from . import store
from .models import JobKind, VideoRef

log = get_logger(__name__)
CONSUMER = "render"
KINDS = (JobKind.RENDER.value,)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def router(*, runner: LeasedJobRunner | None, on_failure: OnFailure, objects: ObjectStore) -> Router:
    """The worker's queue: the videos read model, ingest's answers to imports and renders, cancels, billing."""
    r = Router(consumer=CONSUMER)

    async def drop_outputs(conn: asyncpg.Connection, video_id: uuid.UUID) -> None:
        """A render registered as a video its owner deleted loses its output (whichever event came first). The
        object goes inside the handler's transaction: should the commit fail, the redelivery deletes again (absent
        is fine); a source clip's delete matches no render here, so other renders' outputs stay."""
        for key in await store.drop_deleted_outputs(conn, video_id=video_id):
            await objects.delete(key)
            log.info("render.output_deleted", video_id=str(video_id), key=key)

    @r.on(VideoIngested)
    async def on_video_ingested(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None:
        await store.upsert_video(conn, video=view_of(VideoRef, event))
        if not event.correlation_id:
            return
        # the answer to an import this service asked for, or ingest registering one of its renders
        if await store.answer_import(
            conn, request_id=event.correlation_id, owner_id=event.owner_id, video_id=event.video_id
        ):
            await store.credit_items(
                conn, request_id=event.correlation_id, uploader=event.uploader, platform=event.platform
            )
        elif event.source == "render":
            render_id = _uuid(event.correlation_id)
            if render_id is not None:
                await store.set_render_video(
                    conn, render_id=render_id, owner_id=event.owner_id, video_id=event.video_id
                )
                await drop_outputs(conn, event.video_id)  # its delete may have arrived first

    @r.on(VideoIngestFailed)
    async def on_ingest_failed(
        conn: asyncpg.Connection, event: VideoIngestFailed, delivery: Delivery
    ) -> None:
        if event.correlation_id:
            await store.answer_import(
                conn,
                request_id=event.correlation_id,
                owner_id=event.owner_id,
                error={"code": event.code, "message": event.message},
            )

    @r.on(VideoDeleted)
    async def on_video_deleted(conn: asyncpg.Connection, event: VideoDeleted, delivery: Delivery) -> None:
        await videos.mark_video_deleted(conn, video_id=event.video_id, owner_id=event.owner_id)
        await drop_outputs(conn, event.video_id)

    r.include(cancel_router(kinds=KINDS, producer=CONSUMER, runner=runner))
    r.include(credits_router(on_failure=on_failure))
    return r
