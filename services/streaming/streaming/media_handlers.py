"""Event wiring of the media half (worker role): one queue for ``video.ingested``, ``captions.completed`` and
transcode cancellations; the handlers only dispatch to ``MediaWorker``, whose job runner does the transcodes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from common import inbox
from common.bus.base import Delivery
from common.events.base import Event
from common.events.captions import CaptionsCompleted
from common.events.ingest import VideoIngested
from common.events.jobs import JobCancelRequested
from common.service import BUS, POOL, ROLE, SETTINGS, STORE

from .config import StreamingSettings
from .media.worker import MediaWorker

MEDIA_WORKER: web.AppKey[MediaWorker] = web.AppKey("media_worker", MediaWorker)
CANCEL_CONSUMER = "streaming.transcode_cancel"
INGESTED_CONSUMER = "streaming.transcode_queue"
MEDIA_EVENTS: list[type[Event]] = [VideoIngested, CaptionsCompleted, JobCancelRequested]


async def _media_consumer(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert isinstance(settings, StreamingSettings)
    worker = MediaWorker(pool=app[POOL], bus=app[BUS], store=app[STORE], settings=settings)
    app[MEDIA_WORKER] = worker
    on_cancel = inbox.idempotent(app[POOL], CANCEL_CONSUMER, worker.on_cancel, service="streaming")
    on_ingested = inbox.idempotent(app[POOL], INGESTED_CONSUMER, worker.on_ingested, service="streaming")

    async def handle(event: Event, delivery: Delivery) -> None:
        if isinstance(event, VideoIngested):
            # quick: the stream row and a queued job, then ack; the runner transcodes (no consumer timeout)
            await on_ingested(event, delivery)
            worker.runner.wake()
        elif isinstance(event, CaptionsCompleted):
            await worker.on_captions(event, delivery)
        elif isinstance(event, JobCancelRequested):
            await on_cancel(event, delivery)

    await app[BUS].subscribe(settings.queue, MEDIA_EVENTS, handle)
    await worker.runner.start()
    yield
    # stop taking jobs; a running transcode stops at its next frame and is handed back for another worker
    await worker.runner.stop(timeout_s=max(1.0, settings.shutdown_timeout_s - 5))


def add_media_worker(app: web.Application) -> None:
    """In the worker role, consume the media events (after the pool, bus and store exist)."""
    if app[ROLE] == "worker":
        app.cleanup_ctx.append(_media_consumer)
