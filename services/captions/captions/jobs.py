"""Job functions: a paid captions job and a transcript for another service. JobContext → domain (threads) → store.

Objects are written under keys named by the job (``captions/<video>/<job>/...``) before the final transaction,
so a retried job overwrites rather than duplicates them; the final transaction (lease-checked) stores the tracks,
records the credits used, and writes the events, all at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from common import credits, jobs, outbox
from common.events.captions import CaptionsCompleted, CaptionsFailed, CaptionsTracksChanged, CaptionTrackRef
from common.jobrunner import JobContext
from common.jobs import ErrorCode, Job, JobFailure, succeed_job
from common.logging import get_logger
from common.storage import ObjectStore

from . import store, tracks
from .config import CaptionsSettings
from .errors import CaptionsError, Code
from .formats import transcript_json
from .model import load_whisper, model_dir
from .models import JobKind, Track
from .stt import SttOptions, Transcriber
from .transcript import Transcript
from .translate import GeminiConfig, GeminiTranslator, translate_track

log = get_logger(__name__)
PRODUCER = "captions"
T = TypeVar("T")


class JobParams(jobs.JobParams, kw_only=True, frozen=True):
    """What a captions or transcript job was asked (``jobs.params``)."""

    video_id: uuid.UUID
    storage_key: str
    duration_s: float
    fps: float = 0.0
    language: str = "auto"
    translate_to: list[str] = []
    request_id: str = ""  # a transcript request's id: the correlation id of the answer
    # the hold's parts (credits), priced when the job was requested: a success captures what was delivered
    transcript_credits: int = 0
    credits_per_translation: int = 0


def track_ref(track: Track) -> CaptionTrackRef:
    """The event's view of a stored track."""
    return CaptionTrackRef(
        language=track.language, label=track.label, vtt_key=track.vtt_key, srt_key=track.srt_key
    )


async def tracks_changed(conn: asyncpg.Connection, *, video_id: uuid.UUID, owner_id: uuid.UUID) -> None:
    """Announce the video's complete set of live tracks (players show exactly these)."""
    live = await store.list_tracks(conn, video_id=video_id)
    await outbox.add(
        conn,
        CaptionsTracksChanged(
            video_id=video_id, owner_id=owner_id, tracks=[track_ref(t) for t in live], producer=PRODUCER
        ),
    )


async def publish_files(objects: ObjectStore, prefix: str, built: tracks.BuiltTrack) -> tuple[str, str, str]:
    """Write a track's WebVTT, SRT and JSON under ``prefix``; their keys (vtt, srt, json)."""
    keys: list[str] = []
    for ext, (body, content_type) in built.files().items():
        key = f"{prefix}.{ext}"
        await objects.put(key, body, content_type=content_type)
        keys.append(key)
    vtt, srt, js = keys
    return vtt, srt, js


@contextlib.asynccontextmanager
async def scratch_dir(root: str) -> AsyncIterator[Path]:
    """A private temporary directory under ``root``, removed afterwards whatever happens."""

    def make() -> Path:
        Path(root).mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="captions-", dir=root))

    path = await asyncio.to_thread(make)
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


@dataclass
class _Delivered:
    transcript: Transcript
    tracks: list[tracks.BuiltTrack]
    failed: list[dict[str, str]]


async def captions_failed(
    conn: asyncpg.Connection,
    caption_job_id: uuid.UUID,
    *,
    video_id: uuid.UUID,
    owner_id: uuid.UUID,
    failure: JobFailure,
    request_id: str = "",
) -> None:
    """Announce ``captions.failed.v1`` (a transcript request's answer carries its id as the correlation id)."""
    await outbox.add(
        conn,
        CaptionsFailed(
            caption_job_id=caption_job_id,
            video_id=video_id,
            owner_id=owner_id,
            code=failure.code,
            message=failure.message,
            producer=PRODUCER,
            correlation_id=request_id,
        ),
    )


async def _completed(conn: asyncpg.Connection, ctx: JobContext, p: JobParams, **outcome: Any) -> None:
    """Announce ``captions.completed.v1`` for the job with its ``outcome`` (tracks, transcript, language)."""
    job = ctx.job
    completed = CaptionsCompleted(
        caption_job_id=job.id,
        video_id=p.video_id,
        owner_id=job.owner_id,
        producer=PRODUCER,
        correlation_id=p.request_id,
        **outcome,
    )
    await outbox.add(conn, completed)


class CaptionJobs:
    """The worker's job functions (one loaded whisper model per process, used by one job at a time)."""

    def __init__(self, *, settings: CaptionsSettings, pool: asyncpg.Pool, objects: ObjectStore) -> None:
        self.settings, self.pool, self.objects = settings, pool, objects
        self._transcriber: Transcriber | None = None
        self._model_lock = asyncio.Lock()

    async def run(self, ctx: JobContext) -> None:
        """Run one job of either kind."""
        kinds = {JobKind.CAPTIONS.value: self._captions, JobKind.TRANSCRIPT.value: self._transcript}
        try:
            await kinds[ctx.job.kind](ctx, JobParams.of(ctx.job))
        except CaptionsError as e:
            if e.code == Code.CANCELED:
                ctx.raise_if_stopped()
            raise JobFailure(e.code, e.message) from e

    async def on_failure(self, conn: asyncpg.Connection, job: Job, failure: JobFailure) -> None:
        """A failed or canceled job says so on the bus (a transcript request's answer carries its id)."""
        p = JobParams.of(job)
        await captions_failed(
            conn, job.id, video_id=p.video_id, owner_id=job.owner_id, failure=failure, request_id=p.request_id
        )

    # -- the two kinds -----------------------------------------------------------------------------------------

    async def _transcript(self, ctx: JobContext, p: JobParams) -> None:
        transcript = await self._transcribe(ctx, p, until=90.0)
        if not transcript.segments:
            raise JobFailure(Code.NO_SPEECH, "no speech was found in the audio")
        await ctx.checkpoint(92, "publishing", force=True)
        key = f"captions/{p.video_id}/{ctx.job.id}/transcript.json"
        await self.objects.put(key, transcript_json(transcript), content_type="application/json")
        async with ctx.transaction() as conn:
            await _completed(conn, ctx, p, transcript_key=key, language=transcript.language)
            await self._succeed(conn, ctx, {"transcript_key": key, "language": transcript.language})

    async def _captions(self, ctx: JobContext, p: JobParams) -> None:
        delivered = await self._produce(ctx, p)
        await ctx.checkpoint(92, "publishing", force=True)
        prefix = f"captions/{p.video_id}/{ctx.job.id}"
        transcript_key = f"{prefix}/transcript.json"
        await self.objects.put(
            transcript_key, transcript_json(delivered.transcript), content_type="application/json"
        )
        keyed = [
            (b, await publish_files(self.objects, f"{prefix}/{b.language}", b)) for b in delivered.tracks
        ]
        async with ctx.transaction() as conn:
            stored = [
                await store.put_track(
                    conn,
                    video_id=p.video_id,
                    owner_id=ctx.job.owner_id,
                    job_id=ctx.job.id,
                    language=b.language,
                    label=b.label,
                    kind=b.kind,
                    cues=b.records(),
                    quality=b.quality,
                    keys=keys,
                )
                for b, keys in keyed
            ]
            used = p.transcript_credits + p.credits_per_translation * (len(stored) - 1)
            await credits.record_usage(conn, job_id=ctx.job.id, used=used)
            await _completed(
                conn,
                ctx,
                p,
                tracks=[track_ref(t) for t in stored],
                transcript_key=transcript_key,
                language=delivered.transcript.language,
            )
            await tracks_changed(conn, video_id=p.video_id, owner_id=ctx.job.owner_id)
            result = {
                "tracks": [{"id": str(t.id), "language": t.language, "kind": t.kind.value} for t in stored],
                "failed_translations": delivered.failed,
                "language": delivered.transcript.language,
                "credits_used": used,
            }
            await self._succeed(conn, ctx, result)

    async def _produce(self, ctx: JobContext, p: JobParams) -> _Delivered:
        """Transcribe, cut cues, translate: a translation that fails leaves the others (and the transcript)."""
        transcript = await self._transcribe(ctx, p, until=70.0 if p.translate_to else 88.0)
        if not transcript.segments:
            raise JobFailure(Code.NO_SPEECH, "no speech was found in the audio")
        await ctx.checkpoint(72 if p.translate_to else 89, "building cues", force=True)
        source = tracks.transcribed(transcript, fps=p.fps)
        delivered = _Delivered(transcript=transcript, tracks=[source], failed=[])
        targets = [t for t in p.translate_to if t != source.language]
        if targets:
            await self._translate_all(ctx, p, delivered, targets)
        return delivered

    async def _translate_all(
        self, ctx: JobContext, p: JobParams, delivered: _Delivered, targets: list[str]
    ) -> None:
        source = delivered.tracks[0]
        translator = GeminiTranslator(GeminiConfig.from_settings(self.settings))
        try:
            for k, target in enumerate(targets):
                await ctx.checkpoint(75 + 15 * k / len(targets), f"translating to {target}", force=True)
                try:
                    cues = await translate_track(
                        translator,
                        source.cues,
                        source=source.language,
                        target=target,
                        media_end_ms=int(delivered.transcript.duration_s * 1000),
                        fps=p.fps or 25.0,
                    )
                except CaptionsError as e:
                    log.warning("captions.translation_failed", target=target, code=e.code, reason=e.message)
                    delivered.failed.append({"language": target, "code": e.code, "message": e.message})
                    continue
                delivered.tracks.append(
                    tracks.translated(
                        cues, language=target, duration_s=delivered.transcript.duration_s, fps=p.fps
                    )
                )
        finally:
            await translator.aclose()

    async def _succeed(self, conn: asyncpg.Connection, ctx: JobContext, result: dict[str, Any]) -> None:
        await succeed_job(conn, ctx.job.id, producer=PRODUCER, result=result)

    # -- speech to text -----------------------------------------------------------------------------------

    async def _transcribe(self, ctx: JobContext, p: JobParams, *, until: float) -> Transcript:
        await ctx.checkpoint(1, "extracting audio", force=True)
        transcriber = await self.transcriber()
        async with scratch_dir(self.settings.tmp_dir) as scratch:
            path = await self.objects.get_file(p.storage_key, scratch / "source")
            await ctx.checkpoint(5, "transcribing", force=True)
            language = None if p.language == "auto" else p.language
            async with self._model_lock:  # one model, one decoder at a time
                return await self._in_thread(
                    ctx,
                    lambda progress, cancelled: transcriber.transcribe(
                        path, language=language, progress=progress, cancelled=cancelled
                    ),
                    low=5.0,
                    high=until,
                    stage="transcribing",
                )

    async def transcriber(self) -> Transcriber:
        """The process's whisper model, loaded (and, the first time, assembled and checked) on first use."""
        if self._transcriber is None:
            async with self._model_lock:
                if self._transcriber is None:
                    self._transcriber = await asyncio.to_thread(self._load)
        return self._transcriber

    def _load(self) -> Transcriber:
        s = self.settings
        path = model_dir(model_path=s.whisper_model_path, cache_dir=s.whisper_cache_dir)
        model = load_whisper(path, threads=s.whisper_threads, compute_type=s.whisper_compute_type)
        return Transcriber(model, SttOptions.from_settings(s))

    async def _in_thread(
        self,
        ctx: JobContext,
        work: Callable[[Callable[[float], None], Callable[[], bool]], T],
        *,
        low: float,
        high: float,
        stage: str,
    ) -> T:
        """Run CPU work in a thread; its percent goes to the job's progress, a cancel reaches it between steps."""
        done = [0.0]

        async def tick() -> None:
            await ctx.checkpoint(low + (high - low) * done[0] / 100, stage)

        return await ctx.in_thread(
            lambda: work(lambda pct: done.__setitem__(0, pct), ctx.cancel.is_set),
            tick=tick,
            interval_s=self.settings.job_progress_interval_s,
        )


__all__ = [
    "PRODUCER",
    "CaptionJobs",
    "ErrorCode",
    "JobParams",
    "publish_files",
    "track_ref",
    "tracks_changed",
]
