"""The ``transcode`` job: a ``src`` stream copy or a first low rung (playable) → the ladder, poster, sprite, DASH
(ready).

It orchestrates the PyAV work (in a thread), the object store and the stream's rows. Crash safety: each
rendition is written to a local scratch directory and uploaded under its final keys only when complete, then
recorded complete in the database; a job taken over after a crash skips what is complete and redoes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from common.jobrunner import JobContext
from common.logging import get_logger
from common.metrics import ENCODE_SPEED
from common.storage import ObjectNotFound, ObjectStore

from .. import store
from ..config import StreamingSettings
from ..store import StreamRecord
from .audio import encode_audio_only
from .encode import LadderResult, transcode_ladder
from .errors import MEDIA_UNREADABLE, MediaError
from .ladder import EncoderSettings, Rung, plan_ladder
from .lifecycle import JOB_KIND, PRODUCER, Target, become_playable, become_ready
from .output import RenditionOutput
from .probe import SourceInfo, probe
from .publish import Publisher
from .remux import remux_copy
from .thumbnails import plan_thumbnails

log = get_logger(__name__)


@dataclass
class _Progress:
    done: int = 0


@dataclass
class _Attempt:
    """One run of a transcode job: its source, what the stream already has, what this run produced."""

    ctx: JobContext
    target: Target
    work: Path
    src: Path
    info: SourceInfo
    stream: StreamRecord
    done: set[str]
    started: float
    results: list[LadderResult] = field(default_factory=list)

    @property
    def processing(self) -> bool:
        """The stream is not playable yet."""
        return self.stream.status == "processing"

    def log_playable(self, via: str) -> None:
        """How long it took to become playable, and how."""
        log.info(
            "transcode.playable",
            video_id=str(self.target.video_id),
            via=via,
            seconds=round(time.monotonic() - self.started, 3),
        )


class Transcoder:
    """Runs a transcode job's steps: probe, copy first, early rung, ladder, DASH, ready."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        objects: ObjectStore,
        settings: StreamingSettings,
        encoder: EncoderSettings,
    ) -> None:
        self.pool, self.objects, self.settings, self.encoder = pool, objects, settings, encoder
        self.publisher = Publisher(pool=pool, objects=objects, gop_s=settings.streaming_gop_s)

    async def run(self, ctx: JobContext, target: Target, work: Path) -> None:
        """Every step, each skipped when an earlier attempt (or the source) makes it unnecessary."""
        attempt = await self._prepare(ctx, target, work)
        if attempt.info.has_video:
            await self._video(attempt)
        else:
            await self._audio_only(attempt)
        await become_ready(ctx, self.publisher, target, attempt.info)
        elapsed = time.monotonic() - attempt.started
        ENCODE_SPEED.labels(PRODUCER, JOB_KIND).set(attempt.info.duration_s / max(elapsed, 1e-6))
        log.info(
            "transcode.ready",
            video_id=str(target.video_id),
            seconds=round(elapsed, 3),
            realtime_factor=round(attempt.info.duration_s / max(elapsed, 1e-6), 2),
        )

    async def _video(self, a: _Attempt) -> None:
        """Copy first or an early rung (playable), then the ladder (and DASH)."""
        if self._copies_first(a):
            await self._copy_first(a)
        ladder = plan_ladder(a.info, max_short_side=self.settings.streaming_max_short_side)
        if self._early_rung_first(a, ladder):
            await self._early_rung(a, ladder[-1])
        await self._ladder(a, ladder)
        if self.settings.streaming_dash:
            await a.ctx.checkpoint(99.0, "packaging", force=True)
            produced = [o for r in a.results for o in r.renditions]
            await self.publisher.dash(a.target.video_id, a.work, produced)

    async def _audio_only(self, a: _Attempt) -> None:
        """An audio-only source: one AAC rendition, listed as the master's only variant (no DASH, no poster)."""
        if "audio" in a.done:
            return
        await a.ctx.checkpoint(0.0, "transcoding", force=True)
        out = await asyncio.to_thread(
            encode_audio_only, a.src, a.work, info=a.info, settings=self.encoder, stop=a.ctx.cancel
        )
        await self._publish(a, [out], playable_once=True)
        a.log_playable("audio")

    async def _prepare(self, ctx: JobContext, target: Target, work: Path) -> _Attempt:
        """Fetch and probe the original; read what the stream already has."""
        started = time.monotonic()
        await ctx.checkpoint(0.0, "probing", force=True)
        src = work / "source"
        try:
            await self.objects.get_file(target.storage_key, src)
        except ObjectNotFound as e:
            raise MediaError(MEDIA_UNREADABLE, "the original file is missing") from e
        info = await asyncio.to_thread(probe, src, max_fps=self.settings.streaming_max_fps)
        vid = target.video_id
        async with self.pool.acquire() as conn:
            await store.update_probe(conn, video_id=vid, info=info)
            done = await store.completed_rendition_names(conn, video_id=vid)
            stream = await store.get_stream(conn, video_id=vid)
        assert stream is not None
        return _Attempt(
            ctx=ctx, target=target, work=work, src=src, info=info, stream=stream, done=done, started=started
        )

    def _copies_first(self, a: _Attempt) -> bool:
        return self.settings.streaming_copy_first and a.info.copyable and "src" not in a.done and a.processing

    async def _copy_first(self, a: _Attempt) -> None:
        """Stream copy: playable in about the time it takes to remux."""
        await a.ctx.checkpoint(0.0, "remuxing", force=True)
        video, audio = await asyncio.to_thread(
            remux_copy, a.src, a.work, info=a.info, gop_s=self.settings.streaming_gop_s
        )
        await self._publish(a, [video] + ([audio] if audio is not None else []), playable_once=True)
        a.log_playable("copy")

    def _early_rung_first(self, a: _Attempt, ladder: Sequence[Rung]) -> bool:
        """Not copyable: a first pass for the lowest rung (and the audio) alone makes the stream playable long
        before the whole ladder is (one extra decode; see docs/streaming.md "Progressive publish")."""
        return (
            self.settings.streaming_early_rung
            and len(ladder) > 1
            and not any(r.name in a.done for r in ladder)
            and a.processing
            and not (self.settings.streaming_copy_first and a.info.copyable)
        )

    async def _early_rung(self, a: _Attempt, first: Rung) -> None:
        encode_audio = a.info.has_audio and "audio" not in a.done
        early = await self._encode(a, a.work, [first], encode_audio, False, share=(0.0, 25.0))
        await self._publish(a, early.renditions, playable_once=True)
        a.log_playable(first.name)
        a.results.append(early)

    async def _ladder(self, a: _Attempt, ladder: Sequence[Rung]) -> None:
        """The ladder, the encoded audio, the poster and the sprite: one decode of the source."""
        rungs = [r for r in ladder if r.name not in a.done]
        encode_audio = a.info.has_audio and "audio" not in a.done
        need_thumbs = a.stream.poster_key is None
        if not (rungs or encode_audio or need_thumbs):
            return
        share = (25.0, 100.0) if a.results else (0.0, 100.0)
        result = await self._encode(a, a.work / "ladder", rungs, encode_audio, need_thumbs, share=share)
        await self._publish(a, result.renditions, playable_once=False)
        if result.poster and result.sprite and result.thumbnails_vtt is not None:
            await self.publisher.thumbnails(a.target.video_id, result)
        a.results.append(result)

    async def _publish(self, a: _Attempt, outs: Sequence[RenditionOutput], *, playable_once: bool) -> None:
        """Upload and record each rendition; the master is rewritten once for all of them or after each."""
        for out in outs:
            await self.publisher.rendition(a.target.video_id, out)
            a.done.add(out.name)
            if not playable_once:
                await become_playable(a.ctx, self.publisher, a.target)
        if playable_once:
            await become_playable(a.ctx, self.publisher, a.target, audio_only=not a.info.has_video)

    async def _encode(
        self,
        a: _Attempt,
        work: Path,
        rungs: Sequence[Rung],
        encode_audio: bool,
        need_thumbs: bool,
        *,
        share: tuple[float, float] = (0.0, 100.0),
    ) -> LadderResult:
        """Run one decode pass in a thread, publishing progress (frames done / total) within ``share`` percent.

        The thread polls ``ctx.cancel`` at every packet: a cancel, a lost lease or a shutdown stops it there.
        """
        progress = _Progress()
        total = max(1, a.info.total_frames * max(1, len(rungs)))
        lo, hi = share

        def on_progress(n: int) -> None:
            progress.done = n

        task = asyncio.create_task(
            asyncio.to_thread(
                transcode_ladder,
                a.src,
                work,
                info=a.info,
                rungs=rungs,
                encode_audio=encode_audio,
                thumbnails=plan_thumbnails(a.info) if need_thumbs else None,
                settings=self.encoder,
                progress=on_progress,
                stop=a.ctx.cancel,
            )
        )
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.5)
                await a.ctx.checkpoint(lo + (hi - lo) * progress.done / total, "transcoding")
        except BaseException:
            a.ctx.cancel.set()
            with contextlib.suppress(BaseException):
                await task  # the thread stops at its next frame; never leave it writing into a deleted dir
            raise
        return task.result()
