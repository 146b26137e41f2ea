"""The transcode use case: ``video.ingested`` → a ``transcode`` job → ``src`` copy or a first low rung (playable)
→ ladder, poster, sprite (ready).

It orchestrates the pipeline (PyAV, in a thread), the object store and the stream's rows. Crash safety: each
rendition is written to a local scratch directory and uploaded under its final keys only when complete, then
recorded complete in the database; a job taken over after a crash skips what is complete and redoes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from common import jobs
from common.bus.base import Bus, Delivery
from common.events.base import Event
from common.events.captions import CaptionsCompleted
from common.events.ingest import VideoIngested
from common.events.jobs import JobCancelRequested
from common.events.streaming import StreamFailed, StreamPlayable, StreamReady
from common.jobrunner import JobContext, LeasedJobRunner
from common.logging import get_logger
from common.metrics import ENCODE_SPEED
from common.outbox import add as outbox_add
from common.storage import ObjectNotFound, ObjectStore

from . import pipeline, store
from .config import StreamingSettings
from .hls import AudioMedia, SubtitleMedia, Variant, master_playlist, measure_rendition, subtitle_playlist
from .store import RenditionRecord, StreamRecord

log = get_logger(__name__)

PRODUCER = "streaming"
JOB_KIND = "transcode"

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".ts": "video/mp2t",
    ".mpd": "application/dash+xml",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
}


def stream_prefix(video_id: uuid.UUID) -> str:
    """``streams/<id>/``: where playlists and segments live."""
    return f"streams/{video_id}/"


def thumbs_prefix(video_id: uuid.UUID) -> str:
    """``thumbs/<id>/``: poster, sprite and thumbnail index."""
    return f"thumbs/{video_id}/"


def listed_renditions(stream: StreamRecord) -> tuple[list[RenditionRecord], RenditionRecord | None]:
    """The video variants the master playlist lists, and its audio rendition.

    The stream-copy ``src`` is listed only until the encoded ladder exists: its keyframes are the source's (not
    aligned with the ladder's) and its bitrate is uncapped, so it would make ABR switching worse, not better.
    Its files stay, so a player that started on it plays to the end.
    """
    videos = [r for r in stream.renditions if r.kind == "video"]
    encoded = [r for r in videos if not r.copy]
    audio = next((r for r in stream.renditions if r.kind == "audio"), None)
    return (encoded or videos), audio


def render_master(stream: StreamRecord) -> str:
    """The master playlist of a stream as it is in the database (relative URIs only)."""
    videos, audio = listed_renditions(stream)
    a_bw = audio.bandwidth if audio else 0
    a_avg = audio.average_bandwidth if audio else 0
    variants = [
        Variant(
            uri=f"{r.name}/index.m3u8",
            bandwidth=r.bandwidth + a_bw,
            average_bandwidth=r.average_bandwidth + a_avg,
            codecs=r.codecs + (f",{audio.codecs}" if audio else ""),
            width=r.width,
            height=r.height,
            frame_rate=r.frame_rate,
        )
        for r in videos
    ]
    audio_media = AudioMedia(uri="audio/index.m3u8", channels=audio.width or 2) if audio else None
    subs = [
        SubtitleMedia(uri=f"subs/{s.language}.m3u8", language=s.language, label=s.label)
        for s in stream.subtitles
    ]
    return master_playlist(variants, audio=audio_media, subtitles=subs)


def _safe_language(lang: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9-]", "", lang)[:35]
    return cleaned or "und"


@dataclass
class _Progress:
    done: int = 0


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
        self.encoder = pipeline.EncoderSettings(
            preset=settings.streaming_x264_preset, gop_s=settings.streaming_gop_s
        )
        self.work_root = Path(settings.streaming_work_dir or settings.tmp_dir).resolve() / "transcode"
        self.runner = LeasedJobRunner(
            pool=pool,
            bus=bus,
            kinds=[JOB_KIND],
            handler=self.run_job,
            producer=PRODUCER,
            schema=settings.schema,
            concurrency=settings.streaming_concurrency,
            lease_s=settings.job_lease_s,
            max_attempts=settings.job_max_attempts,
            poll_interval_s=settings.job_poll_interval_s,
            progress_interval_s=settings.job_progress_interval_s,
            retry_delays_s=[float(d) for d in settings.job_retry_delays_s],
            unexpected_error_code=pipeline.TRANSCODE_FAILED,
            on_failure=self._on_job_failed,
            name="transcode",
        )

    # ------------------------------------------------------------------------------------------------ ingested

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
        assert stream is not None
        if not created and (stream.status in ("ready", "error") or stream.job_id is not None):
            log.info("transcode.already_queued", video_id=str(event.video_id), status=stream.status)
            return
        target = Target(
            video_id=event.video_id,
            owner_id=event.owner_id,
            storage_key=event.storage_key,
            correlation_id=event.correlation_id,
        )
        job = await jobs.create_job(
            conn,
            kind=JOB_KIND,
            owner_id=event.owner_id,
            producer=PRODUCER,
            params=target.params(),
            stage="queued",
            correlation_id=event.correlation_id,
        )
        await store.set_job(conn, video_id=event.video_id, job_id=job.id)
        log.info("transcode.queued", video_id=str(event.video_id), job_id=str(job.id))

    async def run_job(self, ctx: JobContext) -> None:
        """The ``transcode`` job: copy first, then the ladder, thumbnails, DASH; resumes what an attempt left."""
        target = Target.of(ctx.job)
        async with self.pool.acquire() as conn:
            stream = await store.get_stream(conn, video_id=target.video_id)
            if stream is None:
                raise jobs.JobFailure(pipeline.MEDIA_UNREADABLE, "the stream of this job does not exist")
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
            await self._run(ctx, target, work)
        except pipeline.MediaError as e:
            raise jobs.JobFailure(e.code, e.message) from e
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _on_job_failed(self, conn: asyncpg.Connection, job: jobs.Job, failure: jobs.JobFailure) -> None:
        """The job failed or was canceled: so does its stream (``error`` + ``stream.failed.v1``), atomically."""
        await self._fail_stream(conn, Target.of(job), failure.code, failure.message)

    async def _run(self, ctx: JobContext, target: Target, work: Path) -> None:
        vid = target.video_id
        started = time.monotonic()
        await ctx.checkpoint(0.0, "probing", force=True)
        src = work / "source"
        try:
            await self.store.get_file(target.storage_key, src)
        except ObjectNotFound as e:
            raise pipeline.MediaError(pipeline.MEDIA_UNREADABLE, "the original file is missing") from e
        info = await asyncio.to_thread(pipeline.probe, src, max_fps=self.settings.streaming_max_fps)
        async with self.pool.acquire() as conn:
            await store.update_probe(
                conn,
                video_id=vid,
                duration_s=info.duration_s,
                width=info.display_width,
                height=info.display_height,
            )
            done = await store.completed_rendition_names(conn, video_id=vid)
            stream = await store.get_stream(conn, video_id=vid)
        assert stream is not None

        # 1. stream copy: playable in about the time it takes to remux
        if (
            self.settings.streaming_copy_first
            and info.copyable
            and "src" not in done
            and stream.status == "processing"
        ):
            await ctx.checkpoint(0.0, "remuxing", force=True)
            video, audio = await asyncio.to_thread(
                pipeline.remux_copy, src, work, info=info, gop_s=self.settings.streaming_gop_s
            )
            outs = [video] + ([audio] if audio is not None else [])
            for out in outs:
                await self._publish_rendition(vid, out)
                done.add(out.name)
            await self._become_playable(ctx, target, [o.name for o in outs])
            log.info(
                "transcode.playable",
                video_id=str(vid),
                via="copy",
                seconds=round(time.monotonic() - started, 3),
            )

        ladder = pipeline.plan_ladder(info, max_short_side=self.settings.streaming_max_short_side)
        need_thumbs = stream.poster_key is None
        result: pipeline.LadderResult | None = None
        results: list[pipeline.LadderResult] = []

        # 2. not copyable: a first pass for the lowest rung (and the audio) alone, so the stream is playable
        #    long before the whole ladder is (one extra decode; see docs/streaming.md "Progressive publish")
        first = ladder[-1]
        if (
            self.settings.streaming_early_rung
            and len(ladder) > 1
            and not any(r.name in done for r in ladder)
            and stream.status == "processing"
            and not (self.settings.streaming_copy_first and info.copyable)
        ):
            encode_audio = info.has_audio and "audio" not in done
            early = await self._encode(ctx, src, work, info, [first], encode_audio, False, share=(0.0, 25.0))
            for out in early.renditions:
                await self._publish_rendition(vid, out)
                done.add(out.name)
            await self._become_playable(ctx, target, [o.name for o in early.renditions])
            log.info(
                "transcode.playable",
                video_id=str(vid),
                via=first.name,
                seconds=round(time.monotonic() - started, 3),
            )
            results.append(early)

        # 3. the ladder, the encoded audio, the poster and the sprite: one decode of the source
        rungs = [r for r in ladder if r.name not in done]
        encode_audio = info.has_audio and "audio" not in done
        if rungs or encode_audio or need_thumbs:
            share = (25.0, 100.0) if results else (0.0, 100.0)
            result = await self._encode(
                ctx, src, work / "ladder", info, rungs, encode_audio, need_thumbs, share=share
            )
            for out in result.renditions:
                await self._publish_rendition(vid, out)
                done.add(out.name)
                await self._become_playable(ctx, target, [out.name])
            if result.poster and result.sprite and result.thumbnails_vtt is not None:
                await self._publish_thumbnails(vid, result)
            results.append(result)

        # 4. DASH, packaged from the finished renditions (remux, no re-encode)
        if self.settings.streaming_dash:
            await ctx.checkpoint(99.0, "packaging", force=True)
            await self._publish_dash(vid, work, [o for r in results for o in r.renditions])

        await self._become_ready(ctx, target, info)
        elapsed = time.monotonic() - started
        ENCODE_SPEED.labels(PRODUCER, JOB_KIND).set(info.duration_s / max(elapsed, 1e-6))
        log.info(
            "transcode.ready",
            video_id=str(vid),
            seconds=round(elapsed, 3),
            realtime_factor=round(info.duration_s / max(elapsed, 1e-6), 2),
        )

    async def _encode(
        self,
        ctx: JobContext,
        src: Path,
        work: Path,
        info: pipeline.SourceInfo,
        rungs: Sequence[pipeline.Rung],
        encode_audio: bool,
        need_thumbs: bool,
        *,
        share: tuple[float, float] = (0.0, 100.0),
    ) -> pipeline.LadderResult:
        """Run one decode pass in a thread, publishing progress (frames done / total) within ``share`` percent.

        The thread polls ``ctx.cancel`` at every packet: a cancel, a lost lease or a shutdown stops it there.
        """
        progress = _Progress()
        total = max(1, info.total_frames * max(1, len(rungs)))
        lo, hi = share

        def on_progress(n: int) -> None:
            progress.done = n

        task = asyncio.create_task(
            asyncio.to_thread(
                pipeline.transcode_ladder,
                src,
                work,
                info=info,
                rungs=rungs,
                encode_audio=encode_audio,
                thumbnails=pipeline.plan_thumbnails(info) if need_thumbs else None,
                settings=self.encoder,
                progress=on_progress,
                stop=ctx.cancel,
            )
        )
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                await ctx.checkpoint(lo + (hi - lo) * progress.done / total, "transcoding")
        except BaseException:
            ctx.cancel.set()
            with contextlib.suppress(BaseException):
                await task  # the thread stops at its next frame; never leave it writing into a deleted dir
            raise
        return task.result()

    # --------------------------------------------------------------------------------------------- publishing

    async def _upload_dir(self, directory: Path, prefix: str) -> None:
        files = await asyncio.to_thread(lambda: sorted(p for p in directory.iterdir() if p.is_file()))
        sem = asyncio.Semaphore(8)

        async def one(p: Path) -> None:
            async with sem:
                await self.store.put_file(
                    prefix + p.name, p, content_type=CONTENT_TYPES.get(p.suffix, "application/octet-stream")
                )

        # playlists last: a playlist never points at a segment that is not there yet
        await asyncio.gather(*(one(p) for p in files if p.suffix != ".m3u8"))
        await asyncio.gather(*(one(p) for p in files if p.suffix == ".m3u8"))

    async def _publish_rendition(self, vid: uuid.UUID, out: pipeline.RenditionOutput) -> None:
        """Upload a finished rendition under its final keys, then record it complete."""
        await self._upload_dir(out.directory, f"{stream_prefix(vid)}{out.name}/")
        m = out.measured
        async with self.pool.acquire() as conn:
            await store.complete_rendition(
                conn,
                video_id=vid,
                name=out.name,
                kind=out.kind,
                # audio renditions keep their channel count in ``width`` (no pixels to describe)
                width=out.width if out.kind == "video" else out.channels,
                height=out.height,
                bandwidth=m.bandwidth,
                average_bandwidth=m.average_bandwidth,
                codecs=out.codecs,
                frame_rate=out.frame_rate,
                playlist_key=f"{stream_prefix(vid)}{out.name}/index.m3u8",
                segment_count=m.segment_count,
                size_bytes=m.size_bytes,
                copy=out.copy,
            )

    async def _publish_thumbnails(self, vid: uuid.UUID, result: pipeline.LadderResult) -> None:
        assert result.poster and result.sprite and result.thumbnails_vtt is not None
        prefix = thumbs_prefix(vid)
        await self.store.put_file(prefix + "sprite.jpg", result.sprite, content_type="image/jpeg")
        await self.store.put(
            prefix + "thumbnails.vtt", result.thumbnails_vtt.encode(), content_type="text/vtt"
        )
        await self.store.put_file(prefix + "poster.jpg", result.poster, content_type="image/jpeg")
        async with self.pool.acquire() as conn:
            await store.set_thumbnails(
                conn,
                video_id=vid,
                poster_key=prefix + "poster.jpg",
                sprite_key=prefix + "sprite.jpg",
                thumbnails_vtt_key=prefix + "thumbnails.vtt",
            )

    async def _publish_dash(
        self, vid: uuid.UUID, work: Path, produced: Sequence[pipeline.RenditionOutput]
    ) -> None:
        local = {r.name: r for r in produced}
        async with self.pool.acquire() as conn:
            stream = await store.get_stream(conn, video_id=vid)
        assert stream is not None
        videos, audio = listed_renditions(stream)
        outs: list[pipeline.RenditionOutput] = []
        for rec in [*videos, *([audio] if audio else [])]:
            out = local.get(rec.name)
            if out is None:  # finished by an earlier attempt: fetch its files back
                d = work / "fetched" / rec.name
                d.mkdir(parents=True, exist_ok=True)
                async for obj in self.store.list(f"{stream_prefix(vid)}{rec.name}/"):
                    await self.store.get_file(obj.key, d / obj.key.rsplit("/", 1)[-1])
                out = pipeline.RenditionOutput(
                    name=rec.name,
                    kind=rec.kind,
                    directory=d,
                    width=rec.width,
                    height=rec.height,
                    codecs=rec.codecs,
                    frame_rate=rec.frame_rate,
                    measured=measure_rendition(d),
                    copy=rec.copy,
                )
            outs.append(out)
        mpd = await asyncio.to_thread(
            pipeline.package_dash, outs, work / "dash_out", gop_s=self.settings.streaming_gop_s
        )
        await self._upload_dir(mpd.parent / "dash", f"{stream_prefix(vid)}dash/")
        await self.store.put_file(
            f"{stream_prefix(vid)}manifest.mpd", mpd, content_type=CONTENT_TYPES[".mpd"]
        )

    async def _write_master(self, conn: asyncpg.Connection, vid: uuid.UUID) -> StreamRecord:
        """Render the master from the rows and upload it, serialized per video across workers."""
        await store.lock_video(conn, video_id=vid)
        stream = await store.get_stream(conn, video_id=vid)
        assert stream is not None
        if stream.renditions:
            await self.store.put(
                f"{stream_prefix(vid)}master.m3u8",
                render_master(stream).encode(),
                content_type=CONTENT_TYPES[".m3u8"],
            )
        return stream

    async def _become_playable(self, ctx: JobContext, target: Target, names: list[str]) -> None:
        """Rewrite the master; on the first video rendition, status ``playable`` + ``stream.playable.v1``."""
        async with ctx.transaction() as conn:
            stream = await self._write_master(conn, target.video_id)
            if stream.status != "processing" or not stream.video_renditions:
                return
            await store.set_status(conn, video_id=target.video_id, status="playable")
            await outbox_add(
                conn,
                StreamPlayable(
                    video_id=target.video_id,
                    owner_id=target.owner_id,
                    renditions=[r.name for r in stream.renditions],
                    correlation_id=target.correlation_id,
                    producer=PRODUCER,
                ),
            )
            await jobs.update_job(conn, ctx.job.id, producer=PRODUCER, stage="playable", emit=False)

    async def _become_ready(self, ctx: JobContext, target: Target, info: pipeline.SourceInfo) -> None:
        async with ctx.transaction() as conn:
            stream = await self._write_master(conn, target.video_id)
            names = [r.name for r in stream.renditions]
            await store.set_status(conn, video_id=target.video_id, status="ready")
            await outbox_add(
                conn,
                StreamReady(
                    video_id=target.video_id,
                    owner_id=target.owner_id,
                    renditions=names,
                    duration_s=info.duration_s,
                    correlation_id=target.correlation_id,
                    producer=PRODUCER,
                ),
            )
            await jobs.update_job(
                conn,
                ctx.job.id,
                producer=PRODUCER,
                status=jobs.JobStatus.SUCCEEDED,
                stage="ready",
                result={"video_id": str(target.video_id), "renditions": names},
                correlation_id=target.correlation_id,
            )

    async def _fail_stream(self, conn: asyncpg.Connection, target: Target, code: str, message: str) -> None:
        """The stream ends in ``error`` with ``stream.failed.v1`` (in the caller's transaction)."""
        stream = await store.get_stream(conn, video_id=target.video_id, for_update=True)
        if stream is None or stream.status in ("ready", "error"):
            return
        await store.set_status(
            conn, video_id=target.video_id, status="error", error={"code": code, "message": message}
        )
        await outbox_add(
            conn,
            StreamFailed(
                video_id=target.video_id,
                owner_id=target.owner_id,
                code=code,
                message=message,
                correlation_id=target.correlation_id,
                producer=PRODUCER,
            ),
        )
        log.info("transcode.failed", video_id=str(target.video_id), code=code, message=message)

    # ------------------------------------------------------------------------------------------------ captions

    async def on_captions(self, event: CaptionsCompleted, delivery: Delivery) -> None:
        """Copy the WebVTT tracks next to the stream and add them to the master's SUBTITLES group."""
        vid = event.video_id
        async with self.pool.acquire() as conn:
            stream = await store.get_stream(conn, video_id=vid)
        if stream is None:
            raise LookupError(f"no stream yet for video {vid}")  # retried with back-off: ingest may be behind
        rows: list[tuple[str, str, str, str]] = []
        for track in event.tracks:
            lang = _safe_language(track.language)
            vtt_key = f"{stream_prefix(vid)}subs/{lang}.vtt"
            try:
                body = await self.store.read_bytes(track.vtt_key)
            except ObjectNotFound:
                log.warning("captions.track_missing", video_id=str(vid), key=track.vtt_key)
                continue
            await self.store.put(vtt_key, body, content_type="text/vtt")
            playlist = subtitle_playlist(f"{lang}.vtt", duration_s=stream.duration_s)
            await self.store.put(
                f"{stream_prefix(vid)}subs/{lang}.m3u8",
                playlist.encode(),
                content_type=CONTENT_TYPES[".m3u8"],
            )
            rows.append((lang, track.label or lang, vtt_key, track.vtt_key))
        if not rows:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await store.upsert_subtitle_tracks(conn, video_id=vid, tracks=rows)
            await self._write_master(conn, vid)

    # -------------------------------------------------------------------------------------------------- cancel

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
            await self._fail_stream(conn, Target.of(job), pipeline.CANCELED, "canceled by the user")
        # the running job's runner hears it through NOTIFY too; this is the shortcut within one process
        self.runner.cancel_local(event.job_id)
