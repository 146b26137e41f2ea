"""The media worker: ``video.ingested.v1`` → a queued ``transcode`` job run under a lease; caption tracks added to
streams; transcode cancellations."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from common import jobs
from common.bus.base import Bus, Delivery
from common.events.base import Event
from common.events.captions import CaptionsCompleted, CaptionsTracksChanged, CaptionTrackRef
from common.events.ingest import VideoDeleted, VideoIngested
from common.events.jobs import JobCancelRequested
from common.jobrunner import JobContext, LeasedJobRunner
from common.logging import get_logger
from common.storage import ObjectNotFound, ObjectStore
from common.storage.content_types import content_type

from .. import store
from ..config import StreamingSettings
from . import subtitles
from .errors import CANCELED, MEDIA_UNREADABLE, TRANSCODE_FAILED, MediaError
from .ladder import EncoderSettings
from .layout import safe_language, stream_prefix, thumbs_prefix
from .lifecycle import JOB_KIND, PRODUCER, Target, fail_stream, queue_transcode
from .transcode import Transcoder

log = get_logger(__name__)
# WebVTT segment length: Apple's HLS authoring spec wants subtitle segments as long as the media's
SUBTITLE_SEGMENT_S = 6.0


class MediaWorker:
    """``video.ingested.v1`` → a queued ``transcode`` job, run under a lease; captions; transcode cancels.

    The event handler only records the stream and its job (in the inbox transaction) and acks: the transcode
    itself runs in ``runner`` (``common.jobrunner.LeasedJobRunner``), so it may take hours without holding a
    RabbitMQ message past the broker's consumer timeout, and a killed worker's job is taken over when its lease
    expires.
    """

    def __init__(
        self, *, pool: asyncpg.Pool, bus: Bus, store: ObjectStore, settings: StreamingSettings
    ) -> None:
        self.pool, self.bus, self.store, self.settings = pool, bus, store, settings
        self.encoder = EncoderSettings(preset=settings.streaming_x264_preset, gop_s=settings.streaming_gop_s)
        self.transcoder = Transcoder(pool=pool, objects=store, settings=settings, encoder=self.encoder)
        self.work_root = Path(settings.streaming_work_dir or settings.tmp_dir).resolve() / "transcode"
        self.runner = LeasedJobRunner.from_settings(
            settings,
            pool=pool,
            bus=bus,
            kinds=[JOB_KIND],
            handler=self.run_job,
            producer=PRODUCER,
            concurrency=settings.streaming_concurrency,
            unexpected_error_code=TRANSCODE_FAILED,
            on_failure=self._on_job_failed,
            name="transcode",
        )

    async def on_ingested(self, conn: asyncpg.Connection, event: Event, delivery: Delivery) -> None:
        """In the inbox transaction: the ``processing`` stream and one queued ``transcode`` job per video."""
        assert isinstance(event, VideoIngested)
        created = await store.create_stream(
            conn,
            video_id=event.video_id,
            owner_id=event.owner_id,
            source_key=event.storage_key,
            duration_s=event.duration_s,
            width=event.width,
            height=event.height,
            has_dash=self.settings.streaming_dash,
        )
        stream = await store.get_stream(conn, video_id=event.video_id, for_update=True)
        if stream is None:  # deleted before its video.ingested was handled: it stays deleted
            log.info("transcode.video_deleted", video_id=str(event.video_id))
            return
        if not created and (stream.status in ("ready", "error") or stream.job_id is not None):
            log.info("transcode.already_queued", video_id=str(event.video_id), status=stream.status)
            return
        target = Target(
            video_id=event.video_id,
            owner_id=event.owner_id,
            storage_key=event.storage_key,
            correlation_id=event.correlation_id,
        )
        await queue_transcode(conn, target, title=event.title)

    async def run_job(self, ctx: JobContext) -> None:
        """The ``transcode`` job: copy first, then the ladder, thumbnails, DASH; resumes what an attempt left."""
        target = Target.of(ctx.job)
        async with self.pool.acquire() as conn:
            stream = await store.get_stream(conn, video_id=target.video_id)
            if stream is None:
                if await store.is_deleted(conn, video_id=target.video_id):
                    raise jobs.JobFailure(CANCELED, "the video was deleted")
                raise jobs.JobFailure(MEDIA_UNREADABLE, "the stream of this job does not exist")
            if stream.status in ("ready", "error"):
                log.info("transcode.already_done", video_id=str(target.video_id), status=stream.status)
                return
            attempt = await store.start_attempt(conn, video_id=target.video_id)
        if not target.storage_key:
            target = dataclasses.replace(target, storage_key=stream.source_key)
        log.info("transcode.start", video_id=str(target.video_id), attempt=attempt, job_attempt=ctx.attempt)
        work = self.work_root / f"{target.video_id}-{uuid.uuid4().hex[:8]}"
        work.mkdir(parents=True, exist_ok=True)
        try:
            await self.transcoder.run(ctx, target, work)
        except MediaError as e:
            # users read a plain message; what the library said (paths, error names) stays in the log
            log.warning(
                "transcode.media_error",
                video_id=str(target.video_id),
                code=e.code,
                message=e.message,
                detail=repr(e.__cause__) if e.__cause__ else None,
            )
            raise jobs.JobFailure(e.code, e.message) from e
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _on_job_failed(self, conn: asyncpg.Connection, job: jobs.Job, failure: jobs.JobFailure) -> None:
        """The job failed or was canceled: so does its stream (``error`` + ``stream.failed.v1``), atomically.

        A job stopped because its video was deleted removes what it uploaded after the delete's own sweep."""
        target = Target.of(job)
        if await store.is_deleted(conn, video_id=target.video_id):
            await self.remove_objects(target.video_id)
            return
        await fail_stream(conn, target, failure.code, failure.message)

    async def on_deleted(self, event: VideoDeleted, delivery: Delivery) -> None:
        """The video was deleted: its stream becomes a tombstone (every /play URL 404s from this commit on),
        its transcode is canceled, its files are removed. Idempotent, so a redelivery just repeats it."""
        async with self.pool.acquire() as conn, conn.transaction():
            job_id = await store.mark_deleted(conn, video_id=event.video_id, owner_id=event.owner_id)
            if job_id is not None:
                await jobs.request_cancel(conn, job_id, producer=PRODUCER)
        if job_id is not None:
            self.runner.cancel_local(job_id)
        await self.remove_objects(event.video_id)
        log.info("stream.deleted", video_id=str(event.video_id))

    async def remove_objects(self, vid: uuid.UUID) -> None:
        """Delete the stream's playlists, segments, subtitle segments, DASH files and thumbnails."""
        await self.store.delete_prefix(stream_prefix(vid))
        await self.store.delete_prefix(thumbs_prefix(vid))

    async def on_captions(self, event: CaptionsCompleted, delivery: Delivery) -> None:
        """Add a finished job's tracks to the master's SUBTITLES group (segmented WebVTT)."""
        await self.publish_subtitles(event.video_id, event.tracks, replace=False)

    async def on_tracks_changed(self, event: CaptionsTracksChanged, delivery: Delivery) -> None:
        """Make the SUBTITLES group exactly the video's live tracks (after an edit, a delete or a new job)."""
        await self.publish_subtitles(event.video_id, event.tracks, replace=True)

    async def publish_subtitles(
        self, vid: uuid.UUID, tracks: Sequence[CaptionTrackRef], *, replace: bool
    ) -> None:
        """Segment each track beside the stream, then list them in the master (token-gated like every file)."""
        async with self.pool.acquire() as conn:
            stream = await store.get_stream(conn, video_id=vid)
            deleted = stream is None and await store.is_deleted(conn, video_id=vid)
        if deleted:
            return  # the video was deleted: its tracks went with it
        if stream is None:
            raise LookupError(f"no stream yet for video {vid}")  # retried with back-off: ingest may be behind
        rows = [
            row for t in tracks if (row := await self._segment_track(vid, t, stream.duration_s)) is not None
        ]
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_video(conn, video_id=vid)
            dropped = (
                await store.keep_subtitle_tracks(conn, video_id=vid, languages=[r[0] for r in rows])
                if replace
                else []
            )
            if rows:
                await store.upsert_subtitle_tracks(conn, video_id=vid, tracks=rows)
            if rows or dropped:
                await self.transcoder.publisher.master(conn, vid)
        for lang in dropped:  # unlisted first, then removed: no player is sent to a missing file
            await self.store.delete_prefix(f"{stream_prefix(vid)}subs/{lang}/")

    async def _segment_track(
        self, vid: uuid.UUID, track: CaptionTrackRef, duration_s: float
    ) -> tuple[str, str, str, str] | None:
        lang = safe_language(track.language)
        try:
            text = (await self.store.read_bytes(track.vtt_key)).decode("utf-8")
            cues = subtitles.parse_cues(text)
        except (ObjectNotFound, UnicodeDecodeError, ValueError) as e:
            log.warning("captions.track_unusable", video_id=str(vid), key=track.vtt_key, error=repr(e))
            return None
        prefix = f"{stream_prefix(vid)}subs/{lang}/"
        version = hashlib.sha256(text.encode()).hexdigest()[:10]  # new names per content: no stale cache
        seg_s = SUBTITLE_SEGMENT_S
        segments = subtitles.segment(cues, duration_s=duration_s, segment_s=seg_s)
        uris = [f"{version}-{k}.vtt" for k in range(len(segments))]
        for uri, body in zip(uris, segments, strict=True):
            await self.store.put(prefix + uri, body.encode(), content_type=content_type("vtt"))
        playlist = subtitles.media_playlist(segment_uris=uris, duration_s=duration_s, segment_s=seg_s)
        await self.store.put(f"{prefix}index.m3u8", playlist.encode(), content_type=content_type("m3u8"))
        return (lang, track.label or lang, f"{prefix}index.m3u8", track.vtt_key)

    async def on_cancel(self, conn: asyncpg.Connection, event: Any, delivery: Delivery) -> None:
        """Cancel a transcode: a queued one (and its stream) at once, a running one at its next frame."""
        assert isinstance(event, JobCancelRequested)
        if event.kind != JOB_KIND:
            return
        job = await jobs.get_job(conn, event.job_id)
        if job is None or job.owner_id != event.owner_id or job.kind != JOB_KIND:
            return
        after = await jobs.request_cancel(conn, event.job_id, producer=PRODUCER)
        if after is not None and after.status == jobs.JobStatus.CANCELED and not job.terminal:
            await fail_stream(conn, Target.of(job), CANCELED, "canceled by the user")
        # the running job's runner hears it through NOTIFY too; this is the shortcut within one process
        self.runner.cancel_local(event.job_id)
