"""Event wiring of the media half (worker role): one queue for ``video.ingested``, ``video.deleted``,
``captions.completed`` and transcode cancellations; the handlers only dispatch to ``MediaWorker``, whose job
runner does the transcodes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from common.bus import Router
from common.events.captions import CaptionsCompleted, CaptionsTracksChanged
from common.events.ingest import VideoDeleted, VideoIngested
from common.events.jobs import JobCancelRequested
from common.service import BUS, POOL, ROLE, STORE, settings_of

from .config import StreamingSettings
from .media.worker import MediaWorker

MEDIA_WORKER: web.AppKey[MediaWorker] = web.AppKey("media_worker", MediaWorker)
CANCEL_CONSUMER = "streaming.transcode_cancel"
INGESTED_CONSUMER = "streaming.transcode_queue"


def media_router(worker: MediaWorker) -> Router:
    """The media queue's routes: ``video.ingested`` only queues a transcode (then the runner is woken: it
    transcodes without holding the message), ``captions.completed`` adds subtitle tracks (idempotent upserts),
    ``video.deleted`` tombstones the stream and removes its files (idempotent), cancels go through the inbox."""
    r = Router()
    r.add(VideoIngested, worker.on_ingested, consumer=INGESTED_CONSUMER, after=lambda _: worker.runner.wake())
    r.add(CaptionsCompleted, worker.on_captions, inbox=False)
    r.add(CaptionsTracksChanged, worker.on_tracks_changed, inbox=False)
    r.add(VideoDeleted, worker.on_deleted, inbox=False)
    r.add(JobCancelRequested, worker.on_cancel, consumer=CANCEL_CONSUMER)
    return r


async def _media_consumer(app: web.Application) -> AsyncIterator[None]:
    settings = settings_of(app, StreamingSettings)
    worker = MediaWorker(pool=app[POOL], bus=app[BUS], store=app[STORE], settings=settings)
    app[MEDIA_WORKER] = worker
    await media_router(worker).subscribe(app[BUS], queue=settings.queue, pool=app[POOL])
    await worker.runner.start()
    yield
    # stop taking jobs; a running transcode stops at its next frame and is handed back for another worker
    await worker.runner.stop(timeout_s=max(1.0, settings.shutdown_timeout_s - 5))


def add_media_worker(app: web.Application) -> None:
    """In the worker role, consume the media events (after the pool, bus and store exist)."""
    if app[ROLE] == "worker":
        app.cleanup_ctx.append(_media_consumer)
