"""The render job: wait for the sources → fetch them → compose and encode (PyAV, in a thread) → publish.

The output is written under a key named by the render (``renders/<render_id>/short.mp4``) before the final
transaction, so a job taken over from a killed worker overwrites rather than duplicates it; the final transaction
(lease-checked) records the output and the credits used and writes ``render.completed.v1``, all at once, so
exactly one completion is announced. A render that fails or is canceled after the write (its final transaction
failed) has that object deleted by its failure hook, so no output outlives a render that did not succeed. Each run
works in its own scratch directory, removed whatever happens; the next attempt at the same render removes a killed
worker's, the periodic sweep (``sweep_scratch``) any other orphan.
"""

from __future__ import annotations

import asyncio
import functools
import math
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path

import asyncpg
import msgspec

from common import credits, outbox
from common.events.render import RenderCompleted, RenderFailed
from common.jobrunner import JobContext
from common.jobs import ErrorCode, Job, JobFailure, get_job, succeed_job
from common.jobs import JobParams as BaseParams
from common.logging import get_logger
from common.storage import ObjectNotFound, ObjectStore

from . import ranking, store
from .compose import RenderResult, RenderSpec, render_short
from .config import RenderSettings
from .errors import Canceled, RenderError
from .models import ImportStatus, Project, VideoRef
from .overlays import attribution

log = get_logger(__name__)
PRODUCER = "render"
OUTPUT_NAME = "short.mp4"
#: the job's percent at the start of each stage (composing and encoding share the compose thread's range)
STAGES = {"fetching sources": 0.0, "preparing": 20.0, "composing": 35.0, "encoding": 38.0, "publishing": 96.0}


class JobParams(BaseParams, kw_only=True, frozen=True):
    """What a render job was asked (``jobs.params``); the project as it was is in the render's row."""

    render_id: uuid.UUID
    project_id: uuid.UUID
    price_per_second: int = 1  # credits per started output second, from billing's list when it was asked


def output_key(render_id: uuid.UUID) -> str:
    """Where a render's MP4 is stored."""
    return f"renders/{render_id}/{OUTPUT_NAME}"


def description(project: Project) -> str:
    """The rendered video's description: one line a source, ``#1 @uploader · platform · <url>`` (the clip's title
    where it has no attribution: the owner's own upload)."""
    lines = []
    for item in sorted(project.items, key=lambda i: i.rank):
        credit = " · ".join(
            p for p in (attribution(item.uploader, item.platform), item.source_url or "") if p
        )
        lines.append(f"#{item.rank} {credit or item.title}".rstrip())
    return "\n".join(lines)


class RenderJobs:
    """The worker's job function and its failure hook."""

    def __init__(self, *, settings: RenderSettings, pool: asyncpg.Pool, objects: ObjectStore) -> None:
        self.settings, self.pool, self.objects = settings, pool, objects

    async def run(self, ctx: JobContext) -> None:
        """Run one render."""
        p = JobParams.of(ctx.job)
        async with self.pool.acquire() as conn:
            render = await store.get_render(conn, render_id=p.render_id)
        if render is None:
            raise JobFailure(ErrorCode.INTERNAL, "the render's record is missing")
        project = msgspec.convert(render.spec, Project)
        scratch = await asyncio.to_thread(_fresh_scratch, self.settings.scratch_dir, p.render_id)
        try:
            videos = await self._sources(ctx, project)
            # the render credits each clip as ingest found it (the project's snapshot may predate the imports)
            project = msgspec.structs.replace(project, items=ranking.credited(project.items, videos))
            paths = await self._fetch(ctx, project, videos, scratch)
            result = await self._compose(ctx, ranking.spec_for(project, paths), scratch / OUTPUT_NAME)
            await ctx.checkpoint(STAGES["publishing"], "publishing", force=True)
            await self._publish(ctx, p, project, result)
        except Canceled as e:
            ctx.raise_if_stopped()
            raise JobFailure(ErrorCode.CANCELED, "canceled by the user") from e
        except RenderError as e:
            raise JobFailure(e.code, e.message) from e
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)

    async def on_failure(self, conn: asyncpg.Connection, job: Job, failure: JobFailure) -> None:
        """A failed or canceled render says so on the bus (its hold is settled at 0 by the same transaction) and
        leaves no output: one stored before the failure (absent is fine) is deleted."""
        p = JobParams.of(job)
        await self.objects.delete(output_key(p.render_id))
        await outbox.add(
            conn,
            RenderFailed(
                render_id=p.render_id,
                project_id=p.project_id,
                owner_id=job.owner_id,
                code=failure.code,
                message=failure.message,
                producer=PRODUCER,
                correlation_id=str(p.render_id),
            ),
        )

    # -- stages ------------------------------------------------------------------------------------------------

    async def _sources(self, ctx: JobContext, project: Project) -> dict[uuid.UUID, VideoRef]:
        """Wait until every item's video is in the library (imports answered, ``video.ingested`` seen)."""
        deadline = time.monotonic() + self.settings.source_wait_s
        await ctx.checkpoint(STAGES["fetching sources"], "fetching sources", force=True)
        while True:
            ready = await self._ready_sources(project)
            if len(ready) == len(project.items):
                return ready
            if time.monotonic() > deadline:
                raise JobFailure(
                    ErrorCode.SOURCE_UNAVAILABLE,
                    f"{len(project.items) - len(ready)} of {len(project.items)} clips did not reach the library"
                    f" within {self.settings.source_wait_s:g} s",
                )
            await ctx.checkpoint(10.0 * len(ready) / len(project.items), "fetching sources")
            await asyncio.sleep(self.settings.source_poll_s)

    async def _ready_sources(self, project: Project) -> dict[uuid.UUID, VideoRef]:
        async with self.pool.acquire() as conn:
            imports = await store.get_imports(
                conn, request_ids=[i.request_id for i in project.items if i.request_id]
            )
            wanted: dict[uuid.UUID, uuid.UUID] = {}
            for item in project.items:
                ref = imports.get(item.request_id or "")
                if item.video_id is None and ref is not None and ref.status == ImportStatus.FAILED:
                    reason = (ref.error or {}).get("message", "the import failed")
                    raise JobFailure(
                        ErrorCode.SOURCE_UNAVAILABLE, f"clip #{item.rank} ({item.source_url}): {reason}"
                    )
                video_id = item.video_id or (ref.video_id if ref is not None else None)
                if video_id is not None:
                    wanted[item.id] = video_id
            videos = await store.get_videos(conn, video_ids=list(wanted.values()))
        return {
            item_id: videos[v]
            for item_id, v in wanted.items()
            if v in videos and videos[v].owner_id == project.owner_id
        }

    async def _fetch(
        self, ctx: JobContext, project: Project, videos: dict[uuid.UUID, VideoRef], scratch: Path
    ) -> dict[uuid.UUID, Path]:
        paths: dict[uuid.UUID, Path] = {}
        for k, item in enumerate(project.items):
            ref = videos[item.id]
            try:
                paths[item.id] = await self.objects.get_file(ref.storage_key, scratch / f"clip-{item.rank}")
            except ObjectNotFound as e:
                raise JobFailure(ErrorCode.SOURCE_UNAVAILABLE, f"clip #{item.rank}'s video is gone") from e
            await ctx.checkpoint(10.0 + 10.0 * (k + 1) / len(project.items), "fetching sources")
        return paths

    async def _compose(self, ctx: JobContext, spec: RenderSpec, out: Path) -> RenderResult:
        """``render_short`` in a thread; its stages and percent become the job's progress, a cancel reaches it."""
        await ctx.checkpoint(STAGES["preparing"], "preparing", force=True)
        updates: deque[tuple[float, str]] = deque()  # appended by the thread, taken here (thread-safe ends)
        shown = ["preparing"]

        async def tick() -> None:
            shown[0] = await _report(ctx, updates, shown[0])

        return await ctx.in_thread(
            functools.partial(
                render_short,
                spec,
                out,
                progress=lambda pct, stage: updates.append((pct, stage)),
                cancel=ctx.cancel,
            ),
            tick=tick,
            interval_s=self.settings.job_progress_interval_s,
        )

    async def _publish(self, ctx: JobContext, p: JobParams, project: Project, result: RenderResult) -> None:
        key = output_key(p.render_id)
        await self.objects.put_file(key, result.path, content_type="video/mp4")
        if self.settings.fault_pause_after_output_s > 0:
            # fault injection for crash tests (FAULT_PAUSE_AFTER_OUTPUT_S): the moment issue 14 item 4 names
            log.warning(
                "render.fault_pause_after_output",
                render_id=str(p.render_id),
                seconds=self.settings.fault_pause_after_output_s,
            )
            await asyncio.sleep(self.settings.fault_pause_after_output_s)
        seconds = ranking.billable_seconds(result.duration_s)
        used = p.price_per_second * max(1, math.ceil(seconds - 1e-6))
        async with ctx.transaction() as conn:
            # a cancel asked while the output was being stored wins (the job's row is locked from here to the
            # commit, so a cancel either lands before and the failure hook deletes the object, or after the end)
            job = await get_job(conn, ctx.job.id, for_update=True)
            if job is None or job.cancel_requested:
                raise JobFailure(ErrorCode.CANCELED, "canceled by the user")
            await store.set_render_output(conn, render_id=p.render_id, output_key=key, duration_s=seconds)
            hold = await credits.get_hold(conn, ctx.job.id)
            used = min(used, hold.amount) if hold is not None else used
            await credits.record_usage(conn, job_id=ctx.job.id, used=used)
            await outbox.add(
                conn,
                RenderCompleted(
                    render_id=p.render_id,
                    project_id=p.project_id,
                    owner_id=ctx.job.owner_id,
                    storage_key=key,
                    duration_s=seconds,
                    title=project.title,
                    description=description(project),
                    producer=PRODUCER,
                    correlation_id=str(p.render_id),
                ),
            )
            await succeed_job(
                conn,
                ctx.job.id,
                producer=PRODUCER,
                result={
                    "render_id": str(p.render_id),
                    "storage_key": key,
                    "duration_s": seconds,
                    "credits_used": used,
                    "loudness_lufs": round(result.loudness.integrated_lufs, 2),
                },
            )


async def _report(ctx: JobContext, updates: deque[tuple[float, str]], shown: str) -> str:
    """Every stage the compose thread entered since the last look (each is recorded), then its latest percent."""
    last: tuple[float, str] | None = None
    while updates:
        last = updates.popleft()
        if last[1] != shown:
            shown = last[1]
            await ctx.checkpoint(*_progress(*last), force=True)
    if last is not None:
        await ctx.checkpoint(*_progress(*last))
    return shown


def _progress(pct: float, stage: str) -> tuple[float, str]:
    """The job's percent and stage for the compose thread's ``(percent, stage)``."""
    if stage == "preparing":
        return STAGES["preparing"] + (STAGES["composing"] - STAGES["preparing"]) * pct / 100, "preparing"
    if stage == "composing":
        return STAGES["composing"], "composing"
    return STAGES["encoding"] + (STAGES["publishing"] - STAGES["encoding"]) * pct / 100, "encoding"


def _fresh_scratch(root: Path, render_id: uuid.UUID) -> Path:
    """A new scratch directory for this attempt at ``render_id``; an earlier attempt's (a killed worker's, on this
    host) goes first: the job's lease says no other attempt runs now."""
    for old in root.glob(f"{render_id}.*"):
        shutil.rmtree(old, True)
    scratch = root / f"{render_id}.{uuid.uuid4().hex[:8]}"
    scratch.mkdir(parents=True)
    return scratch


async def sweep_scratch(
    pool: asyncpg.Pool, root: Path, *, running: Callable[[], list[uuid.UUID]], max_age_s: float
) -> int:
    """Remove scratch directories no render of this process uses: their job ended (or is unknown), or they are
    older than ``max_age_s`` (a killed worker's). The number removed."""
    entries = await asyncio.to_thread(lambda: list(root.iterdir()) if root.is_dir() else [])
    now, removed = time.time(), 0
    for path in entries:
        try:
            job_id = uuid.UUID(path.name.split(".", 1)[0])
        except ValueError:
            job_id = None
        if job_id is not None and job_id in running():
            continue
        async with pool.acquire() as conn:
            job = await get_job(conn, job_id) if job_id is not None else None
        try:
            old = now - path.stat().st_mtime > max_age_s
        except FileNotFoundError:
            continue
        if job is None or job.terminal or old:
            await asyncio.to_thread(shutil.rmtree, path, True)
            removed += 1
    if removed:
        log.info("render.scratch_swept", removed=removed)
    return removed


__all__ = ["PRODUCER", "JobParams", "RenderJobs", "output_key", "sweep_scratch"]
