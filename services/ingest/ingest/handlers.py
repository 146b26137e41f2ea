"""Event handlers of the worker: render outputs and bucket migrations become videos; cancels; deletions."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from common import inbox, outbox
from common.bus import Delivery, Router
from common.events.base import Event
from common.events.ingest import VideoDeleted, VideoIngestFailed
from common.events.render import RenderCompleted
from common.events.streaming import MigrationRequested
from common.jobrunner import cancel_router
from common.jobs import ErrorCode, JobFailure
from common.logging import get_logger
from common.storage import ObjectNotFound, ObjectStore, create_store

from . import pipeline, store
from .config import IngestSettings
from .runner import KINDS, PRODUCER, JobRunner, limits_of
from .tmpfiles import workspace

log = get_logger(__name__)

CONSUMER = "ingest"


class Handlers:
    """The worker's event handlers; ``router()`` registers them for the service queue."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        store: ObjectStore,
        settings: IngestSettings,
        runner: JobRunner | None = None,
        store_factory: Callable[[str], ObjectStore] | None = None,
    ) -> None:
        self.pool, self.store, self.settings, self.runner = pool, store, settings, runner
        self.limits = limits_of(settings)
        self._store_factory = store_factory or (lambda url: create_store(settings.with_(storage_url=url)))

    def router(self) -> Router:
        """The worker queue's routes: registrations are idempotent by their source reference, cancels by the inbox."""
        r = Router(consumer=CONSUMER)
        r.add(RenderCompleted, self.on_render_completed, inbox=False)
        r.add(MigrationRequested, self.on_migration_requested, inbox=False)
        r.include(cancel_router(kinds=KINDS, producer=PRODUCER, runner=self.runner))
        r.add(VideoDeleted, self.on_video_deleted, inbox=False)
        return r

    async def on_render_completed(self, event: RenderCompleted, delivery: Delivery) -> None:
        """Register a rendered short as a video with source ``render`` (idempotent by render id)."""
        await self._register(
            event,
            source="render",
            source_ref=f"render:{event.render_id}",
            source_url=None,
            owner_id=event.owner_id,
            title=event.title,
            object_store=self.store,
            key=event.storage_key,
        )

    async def on_migration_requested(self, event: MigrationRequested, delivery: Delivery) -> None:
        """Copy an object of an existing bucket into the catalogue (idempotent by source URL and key)."""
        same = event.source_url.rstrip("/") == self.settings.storage_url.rstrip("/")
        source_store = self.store if same else self._store_factory(event.source_url)
        try:
            await self._register(
                event,
                source="migration",
                source_ref=f"migration:{event.source_url.rstrip('/')}#{event.source_key}",
                source_url=f"{event.source_url.rstrip('/')}/{event.source_key}",
                owner_id=event.owner_id,
                title=event.title or pipeline.title_from_filename(event.source_key),
                object_store=source_store,
                key=event.source_key,
            )
        finally:
            if not same:
                await source_store.close()

    async def _register(
        self,
        event: Event,
        *,
        source: str,
        source_ref: str,
        source_url: str | None,
        owner_id: uuid.UUID,
        title: str,
        object_store: ObjectStore,
        key: str,
    ) -> None:
        async with self.pool.acquire() as conn:
            if await store.video_by_source_ref(conn, source_ref=source_ref) is not None:
                return
        video_id = uuid.uuid4()
        self.settings.ingest_tmp.mkdir(parents=True, exist_ok=True)
        try:
            async with workspace(self.settings.ingest_tmp, source) as ws:
                try:
                    local = await pipeline.fetch_object(object_store, key, ws / "source")
                except ObjectNotFound as exc:
                    raise JobFailure(ErrorCode.SOURCE_UNAVAILABLE, f"no object at {key}") from exc
                video = await pipeline.store_original(
                    self.store,
                    local,
                    video_id=video_id,
                    owner_id=owner_id,
                    limits=self.limits,
                    source=source,
                    title=title,
                    source_url=source_url,
                    source_ref=source_ref,
                )
        except JobFailure as failure:
            # the input itself is bad: retrying cannot help, so say so once and ack
            log.warning("ingest.register_failed", source=source, key=key, code=failure.code)
            async with self.pool.acquire() as conn, conn.transaction():
                if await inbox.claim(conn, event, consumer=CONSUMER):
                    await outbox.add(
                        conn,
                        VideoIngestFailed(
                            owner_id=owner_id,
                            source_url=source_url or key,
                            code=failure.code,
                            message=failure.message,
                            producer=PRODUCER,
                            correlation_id=event.correlation_id,
                        ),
                    )
            return
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                inserted = None
                if await inbox.claim(conn, event, consumer=CONSUMER):
                    inserted = await store.insert_video(conn, video=video)
                if inserted is None:
                    await pipeline.discard_original(self.store, video_id)
                    return
                await outbox.add(conn, inserted.ingested(correlation_id=event.correlation_id))
        except BaseException:
            await pipeline.discard_original(self.store, video_id)
            raise
        log.info("ingest.registered", source=source, video_id=str(video_id), key=key)

    async def on_video_deleted(self, event: VideoDeleted, delivery: Delivery) -> None:
        """Delete the original of a deleted video (the API tried already; this makes it certain)."""
        await self.store.delete_prefix(pipeline.original_prefix(event.video_id))
