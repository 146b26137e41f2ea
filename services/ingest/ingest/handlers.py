"""Event handlers of the worker: imports other services ask for, render outputs and bucket migrations become
videos; cancels; deletions."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import asyncpg

from common import inbox, outbox
from common.bus import Delivery, PermanentError, Router
from common.events.base import Event
from common.events.ingest import VideoDeleted, VideoImportRequested, VideoIngestFailed
from common.events.render import RenderCompleted
from common.events.streaming import MigrationRequested
from common.jobrunner import cancel_router
from common.jobs import ErrorCode, JobFailure
from common.logging import get_logger
from common.storage import ObjectNotFound, ObjectStore, create_store

from . import imports, originals, pipeline, store
from .config import IngestSettings
from .originals import Originals
from .runner import KINDS, PRODUCER, JobRunner
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
        self.originals = Originals.of(settings, pool=pool, objects=store)
        self._store_factory = store_factory or (lambda url: create_store(settings.with_(storage_url=url)))

    def router(self) -> Router:
        """The worker queue's routes: registrations are idempotent by their source reference, cancels by the inbox."""
        r = Router(consumer=CONSUMER)
        r.add(VideoImportRequested, self.on_import_requested, after=self._wake_runner)
        r.add(RenderCompleted, self.on_render_completed, inbox=False)
        r.add(MigrationRequested, self.on_migration_requested, inbox=False)
        r.include(cancel_router(kinds=KINDS, producer=PRODUCER, runner=self.runner))
        r.add(VideoDeleted, self.on_video_deleted, inbox=False)
        return r

    async def on_import_requested(
        self, conn: asyncpg.Connection, event: VideoImportRequested, delivery: Delivery
    ) -> None:
        """Queue the import another service asked for, as a user's ``POST /imports`` does (one per request id).

        The job runner answers ``video.ingested.v1`` / ``video.ingest_failed.v1`` with ``correlation_id`` =
        ``request_id`` when the job ends; a URL that cannot even be recorded is answered at once.
        """
        request_id = event.request_id
        if not request_id or "\x00" in request_id or len(request_id) > imports.MAX_URL:
            raise PermanentError(f"video.import_requested.v1 with an unusable request_id {request_id[:80]!r}")
        await store.lock_import_request(conn, request_id=request_id)
        if await store.import_by_request(conn, request_id=request_id) is not None:
            log.info("ingest.import_request_duplicate", request_id=request_id)
            return
        url = event.url.strip()
        refusal = imports.url_refusal(url)
        if refusal is not None:
            await outbox.add(
                conn,
                VideoIngestFailed(
                    owner_id=event.owner_id,
                    source_url=url.replace("\x00", "")[: imports.MAX_URL],
                    code=ErrorCode.SOURCE_UNSUPPORTED,
                    message=refusal,
                    producer=PRODUCER,
                    correlation_id=request_id,
                ),
            )
            return
        job, import_id = await imports.queue(
            conn,
            owner_id=event.owner_id,
            url=url,
            title=event.title.replace("\x00", ""),
            correlation_id=request_id,
            request_id=request_id,
        )
        log.info(
            "ingest.import_requested", request_id=request_id, job_id=str(job.id), import_id=str(import_id)
        )

    def _wake_runner(self, _event: Event) -> None:
        if self.runner is not None:
            self.runner.wake()

    async def on_render_completed(self, event: RenderCompleted, delivery: Delivery) -> None:
        """Register a rendered short as the owner's video with source ``render`` and its sources' attribution as
        its description (idempotent by render id); the answer's correlation id is the render id."""
        await self._register(
            event,
            source="render",
            source_ref=f"render:{event.render_id}",
            source_url=None,
            owner_id=event.owner_id,
            title=event.title,
            description=pipeline.render_description(
                render_id=event.render_id, project_id=event.project_id, credits=event.description
            ),
            object_store=self.store,
            key=event.storage_key,
            correlation_id=str(event.render_id),
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
        description: str = "",
        correlation_id: str | None = None,
    ) -> None:
        correlation_id = event.correlation_id if correlation_id is None else correlation_id
        async with self.pool.acquire() as conn:
            if await store.video_by_source_ref(conn, source_ref=source_ref) is not None:
                return
        # a redelivery of this event (the bus's retry after a crash) stores under the same id: one copy
        video_id = originals.event_video_id(source_ref, event.id)
        self.settings.scratch_dir.mkdir(parents=True, exist_ok=True)
        try:
            async with workspace(self.settings.scratch_dir, source) as ws:
                try:
                    local = await pipeline.fetch_object(object_store, key, ws / "source")
                except ObjectNotFound as exc:
                    raise JobFailure(ErrorCode.SOURCE_UNAVAILABLE, f"no object at {key}") from exc
                video = await self.originals.keep(
                    local,
                    video_id=video_id,
                    owner_id=owner_id,
                    source=source,
                    title=title,
                    description=description,
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
                            correlation_id=correlation_id,
                        ),
                    )
            return
        # no inline clean-up when this fails: a redelivery rewrites the same object, else the sweep deletes it
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = None
            if await inbox.claim(conn, event, consumer=CONSUMER):
                inserted = await store.insert_video(conn, video=video)
            if inserted is not None:
                await outbox.add(conn, inserted.ingested(correlation_id=correlation_id))
            registered = inserted is not None or bool(
                await store.registered_video_ids(conn, video_ids=[video_id])
            )
        if not registered:  # another event registered this source first: this copy is not needed
            await self.originals.discard(video_id)
            return
        log.info("ingest.registered", source=source, video_id=str(video_id), key=key)

    async def on_video_deleted(self, event: VideoDeleted, delivery: Delivery) -> None:
        """Delete the original of a deleted video (the API tried already; this makes it certain)."""
        await self.store.delete_prefix(pipeline.original_prefix(event.video_id))
