"""Job functions: a single paid analysis, and a batch's paid chunks. JobContext → transcript → cache or engine → store.

Every analysis ends in one lease-checked transaction (``JobContext.transaction``) that ends its row, records the
credits its job used (``credits.record_usage``: the price for an analysed video, 0 for a cached one) and writes its
events, so an item ends exactly once whichever worker dies when. A chunk job holds the credits of its items; its
success captures what its items were charged and billing releases the rest.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from prometheus_client import Counter

from common import credits, jobs, outbox
from common.bus.base import Bus
from common.events.analysis import AnalysisCompleted, AnalysisFailed
from common.jobrunner import JobContext, JobStopped
from common.jobs import ErrorCode, Job, JobFailure, JobStatus, get_job, update_job
from common.logging import get_logger
from common.storage import ObjectNotFound, ObjectStore

from . import store
from .config import AnalysisSettings
from .engines import Analyzer, cache_key, memo_key
from .models import (
    THROUGHPUT_WINDOW_S,
    AnalysisErrorCode,
    AnalysisRecord,
    AnalysisResult,
    BatchState,
    ItemState,
    JobKind,
    batch_pace,
    progress_stage,
)
from .quota import HostBackoff, QuotaParked
from .sources import PRODUCER, Found, TranscriptFinder

log = get_logger(__name__)
ANALYSES = Counter("analysis_items_total", "Analyses ended, by state and engine", ["state", "engine"])
CACHE_HITS = Counter(
    "analysis_cache_hits_total",
    "Analyses answered from the content cache, by lookup: page_memo (a URL seen before, its page not read again)"
    " or content (the transcript's hash)",
    ["lookup"],
)
for _lookup in ("page_memo", "content"):  # every series is scraped from the start, at 0
    CACHE_HITS.labels(_lookup)


class JobParams(jobs.JobParams, kw_only=True, frozen=True):
    """What an analysis or chunk job was asked (``jobs.params``)."""

    price: int  # credits per analysed video, priced when requested
    analysis_id: uuid.UUID | None = None  # a single analysis
    batch_id: uuid.UUID | None = None  # a chunk


@dataclass
class Outcome:
    """How one analysis ended (before it is stored)."""

    state: ItemState
    result: AnalysisResult | None = None
    error: JobFailure | None = None
    cache_key: str | None = None
    credits: int = 0
    memo: tuple[str, store.PageMemo] | None = None  # what the URL's page gave (remembered when the item ends)


def transcript_key(analysis_id: uuid.UUID) -> str:
    """Where the transcript an analysis used is kept."""
    return f"analysis/{analysis_id}/transcript.json"


async def end_batch_job(
    conn: asyncpg.Connection,
    job_id: uuid.UUID,
    *,
    status: JobStatus,
    result: dict[str, Any] | None = None,
    error: dict[str, str] | None = None,
) -> None:
    """End a batch's job (its progress in the job model), unless it has ended."""
    job = await get_job(conn, job_id, for_update=True)
    if job is not None and not job.terminal:
        await update_job(
            conn, job_id, producer=PRODUCER, status=status, stage=str(status), result=result, error=error
        )


class AnalysisJobs:
    """The worker's job functions."""

    def __init__(
        self,
        *,
        settings: AnalysisSettings,
        pool: asyncpg.Pool,
        objects: ObjectStore,
        analyzer: Analyzer,
        bus: Bus | None = None,
        hosts: HostBackoff | None = None,
    ) -> None:
        self.settings, self.pool, self.objects, self.analyzer, self.bus = (
            settings,
            pool,
            objects,
            analyzer,
            bus,
        )
        self.finder = TranscriptFinder(settings=settings, pool=pool, objects=objects, hosts=hosts)
        self.on_unpark: Callable[[], Awaitable[None]] | None = None  # the governor forgets a parked day
        self._progress_at: dict[uuid.UUID, float] = {}

    async def run(self, ctx: JobContext) -> None:
        """Run one job of either kind."""
        if ctx.job.kind == JobKind.BATCH_CHUNK:
            await self._chunk(ctx, JobParams.of(ctx.job))
        else:
            await self._single(ctx, JobParams.of(ctx.job))

    async def on_failure(self, conn: asyncpg.Connection, job: Job, failure: JobFailure) -> None:
        """A failed or canceled job ends its analyses with its code (a rejected hold: ``credits.insufficient``)."""
        p = JobParams.of(job)
        if p.analysis_id is not None:
            state = ItemState.CANCELED if failure.code == ErrorCode.CANCELED else ItemState.FAILED
            ended = await store.finish_item(
                conn,
                analysis_id=p.analysis_id,
                state=state,
                error={"code": failure.code, "message": failure.message},
            )
            if ended is not None:
                await self._announce(conn, ended)
            return
        state = ItemState.CANCELED if failure.code == ErrorCode.CANCELED else ItemState.FAILED
        await store.end_items(conn, job_id=job.id, state=state, code=failure.code, message=failure.message)
        if p.batch_id is not None:
            await self._finish_batch_if_done(conn, p.batch_id)

    # -- one analysis -------------------------------------------------------------------------------------------

    async def _single(self, ctx: JobContext, p: JobParams) -> None:
        assert p.analysis_id is not None
        async with self.pool.acquire() as conn:
            item = await store.start_item(conn, analysis_id=p.analysis_id)
        if item is None:
            return  # it ended already (a cancel raced the claim)
        try:
            outcome = await self.analyse(ctx, item, price=p.price)
        except QuotaParked as exc:
            raise JobFailure(AnalysisErrorCode.QUOTA_PARKED, str(exc)) from exc
        if outcome.error is not None:
            raise outcome.error
        async with ctx.transaction() as conn:
            ended = await self._store(conn, item, outcome)
            await credits.record_usage(conn, job_id=ctx.job.id, used=outcome.credits)
            result = {
                "analysis_id": str(item.id),
                "state": outcome.state.value,
                "credits_used": outcome.credits,
            }
            await update_job(
                conn, ctx.job.id, producer=PRODUCER, status=JobStatus.SUCCEEDED, stage="done", result=result
            )
            if ended is not None:
                await self._announce(conn, ended)

    async def analyse(
        self, ctx: JobContext, item: AnalysisRecord, *, price: int, in_chunk: bool = False
    ) -> Outcome:
        """Page memo, or transcript → cache or engine. A user-caused failure is an ``Outcome``; ``QuotaParked``
        propagates."""
        try:
            remembered = await self._remembered(item)
            if remembered is not None:
                return remembered
            found = await self.finder.find(ctx, item)
            transcript = found.transcript
            if not transcript.segments:
                raise JobFailure(AnalysisErrorCode.TRANSCRIPT_EMPTY, "the transcript has no text to analyse")
            origin = await self._keep_transcript(item, found)
            key = cache_key(
                source_id=found.source_id, transcript=transcript, analyzer=self.analyzer, options=item.options
            )
            async with self.pool.acquire() as conn:
                hit = await store.cached_result(conn, cache_key=key)
            memo = self._memo_of(item, origin, source_id=found.source_id, key=key)
            if hit is not None:
                CACHE_HITS.labels("content").inc()
                return Outcome(
                    ItemState.CACHED, msgspec.convert(hit, AnalysisResult), cache_key=key, memo=memo
                )
            # a chunk's items share its job, whose progress is the batch's (batch_progress): only a single analysis
            # records this stage at once (a throttled checkpoint still sees a cancel or a lost lease)
            await ctx.checkpoint(50, "analysing", force=not in_chunk)
            result = await self.analyzer.analyze(transcript, item.options, duration_s=found.duration_s)
            return Outcome(ItemState.SUCCEEDED, result, cache_key=key, credits=price, memo=memo)
        except JobFailure as exc:
            if exc.code == ErrorCode.CANCELED:
                raise
            return Outcome(ItemState.FAILED, error=exc)

    def _memo_key(self, item: AnalysisRecord) -> str | None:
        if item.video_id is not None or not item.url or self.settings.page_memo_ttl_s <= 0:
            return None
        return memo_key(url=item.url, analyzer=self.analyzer, options=item.options)

    def _memo_of(
        self, item: AnalysisRecord, origin: store.TranscriptOrigin, *, source_id: str, key: str
    ) -> tuple[str, store.PageMemo] | None:
        memo = self._memo_key(item)
        if memo is None:
            return None
        return memo, store.PageMemo(cache_key=key, source_id=source_id, **msgspec.structs.asdict(origin))

    async def _remembered(self, item: AnalysisRecord) -> Outcome | None:
        """A URL analysed before (its page read less than ``PAGE_MEMO_TTL_S`` ago): the cached result, the
        transcript copied to this analysis, without reading the page; None when there is no such memo."""
        key = self._memo_key(item)
        if key is None:
            return None
        async with self.pool.acquire() as conn:
            memo = await store.url_memo(conn, memo_key=key, max_age_s=self.settings.page_memo_ttl_s)
        if memo is None or memo.result is None:
            return None
        own_key = transcript_key(item.id)
        if memo.transcript_key != own_key:
            try:
                data = await self.objects.read_bytes(memo.transcript_key)
            except ObjectNotFound:
                return None  # that transcript is gone: read the page again
            await self.objects.put(own_key, data, content_type="application/json")
        async with self.pool.acquire() as conn:
            origin = msgspec.structs.replace(memo, transcript_key=own_key)
            await store.record_source(conn, analysis_id=item.id, origin=origin)
        CACHE_HITS.labels("page_memo").inc()
        return Outcome(
            ItemState.CACHED, msgspec.convert(memo.result, AnalysisResult), cache_key=memo.cache_key
        )

    async def _keep_transcript(self, item: AnalysisRecord, found: Found) -> store.TranscriptOrigin:
        """Store the transcript under the analysis's key and record where it came from."""
        origin = store.TranscriptOrigin(
            source=found.transcript.source.value,
            language=found.transcript.language,
            title=found.title,
            duration_s=found.duration_s,
            transcript_key=transcript_key(item.id),
        )
        await self.objects.put(
            origin.transcript_key, msgspec.json.encode(found.transcript), content_type="application/json"
        )
        async with self.pool.acquire() as conn:
            await store.record_source(conn, analysis_id=item.id, origin=origin)
        return origin

    async def _store(
        self, conn: asyncpg.Connection, item: AnalysisRecord, outcome: Outcome
    ) -> AnalysisRecord | None:
        """End the item's row (once) and keep a fresh result in the cache."""
        result = msgspec.to_builtins(outcome.result) if outcome.result is not None else None
        error = {"code": outcome.error.code, "message": outcome.error.message} if outcome.error else None
        ended = await store.finish_item(
            conn,
            analysis_id=item.id,
            state=outcome.state,
            result=result,
            error=error,
            cache_key=outcome.cache_key,
            credits=outcome.credits,
        )
        if ended is not None:
            engine = outcome.result.engine.value if outcome.result else "none"
            ANALYSES.labels(outcome.state.value, engine).inc()
            if outcome.state == ItemState.SUCCEEDED and outcome.cache_key and result is not None:
                await store.cache_result(conn, cache_key=outcome.cache_key, result=result)
            if outcome.memo is not None and outcome.state in (ItemState.SUCCEEDED, ItemState.CACHED):
                await store.remember_page(conn, memo_key=outcome.memo[0], memo=outcome.memo[1])
        return ended

    async def _announce(self, conn: asyncpg.Connection, item: AnalysisRecord) -> None:
        if item.state in (ItemState.SUCCEEDED, ItemState.CACHED):
            event: AnalysisCompleted | AnalysisFailed = AnalysisCompleted(
                analysis_id=item.id,
                video_id=item.video_id,
                owner_id=item.owner_id,
                source_url=item.url,
                producer=PRODUCER,
            )
        else:
            code, message = (item.error.code, item.error.message) if item.error else (ErrorCode.INTERNAL, "")
            event = AnalysisFailed(
                analysis_id=item.id, owner_id=item.owner_id, code=code, message=message, producer=PRODUCER
            )
        await outbox.add(conn, event)

    # -- a batch's chunk ----------------------------------------------------------------------------------------

    async def _chunk(self, ctx: JobContext, p: JobParams) -> None:
        assert p.batch_id is not None
        runner = _ChunkRun(self, ctx, p)
        await runner.run()
        async with ctx.transaction() as conn:
            used = await store.chunk_charged(conn, job_id=ctx.job.id)
            await credits.record_usage(conn, job_id=ctx.job.id, used=used)
            await update_job(
                conn,
                ctx.job.id,
                producer=PRODUCER,
                status=JobStatus.SUCCEEDED,
                stage="done",
                result={"batch_id": str(p.batch_id), "credits_used": used},
            )
            await self._finish_batch_if_done(conn, p.batch_id)

    async def _finish_batch_if_done(self, conn: asyncpg.Connection, batch_id: uuid.UUID) -> None:
        """The last chunk to end ends the batch (its job succeeds, or stays canceled)."""
        batch = await store.get_batch(conn, batch_id=batch_id, for_update=True)
        if batch is None:
            return
        counts = await store.batch_counts(conn, batch_id=batch_id)
        if counts[ItemState.QUEUED] or counts[ItemState.RUNNING]:
            return
        if batch.state in (BatchState.RUNNING, BatchState.PAUSED):
            await store.set_batch_state(
                conn,
                batch_id=batch_id,
                state=BatchState.DONE,
                allowed_from=[BatchState.RUNNING, BatchState.PAUSED],
            )
        await end_batch_job(
            conn,
            batch.job_id,
            status=JobStatus.SUCCEEDED,
            result={"batch_id": str(batch_id), "counts": counts},
        )

    async def batch_progress(self, batch_id: uuid.UUID, *, force: bool = False) -> None:
        """Push the batch job's progress (at most once a second per batch and process; best effort)."""
        now = time.monotonic()
        if not force and now - self._progress_at.get(batch_id, 0.0) < 1.0:
            return
        self._progress_at[batch_id] = now
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                batch = await store.get_batch(conn, batch_id=batch_id)
                if batch is None:
                    return
                # the job's row first: counts read under its lock never go back from one snapshot to the next
                job = await get_job(conn, batch.job_id, for_update=True)
                if job is None or job.terminal:
                    return
                counts = await store.batch_counts(conn, batch_id=batch_id)
                ended = batch.total - counts[ItemState.QUEUED] - counts[ItemState.RUNNING]
                recent = await store.finished_since(conn, batch_id=batch_id, seconds=THROUGHPUT_WINDOW_S)
                _, eta = batch_pace(
                    remaining=batch.total - ended,
                    ended_recently=recent,
                    running_s=(datetime.now(UTC) - batch.created_at).total_seconds(),
                )
                job = await update_job(
                    conn,
                    job.id,
                    producer=PRODUCER,
                    status=JobStatus.RUNNING,
                    progress=min(99.9, 100.0 * ended / max(1, batch.total)),
                    stage=progress_stage(ended=ended, total=batch.total, eta_s=eta),
                    emit=job.status != JobStatus.RUNNING,
                )
            if self.bus is not None:
                await self.bus.publish(job.to_event(producer=PRODUCER))
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("analysis.batch_progress_failed", batch_id=str(batch_id), error=repr(exc))


class _ChunkRun:
    """One run of a chunk job: its items through a bounded pool of tasks, while the batch is running."""

    def __init__(self, jobs: AnalysisJobs, ctx: JobContext, p: JobParams) -> None:
        self.jobs, self.ctx, self.p = jobs, ctx, p
        assert p.batch_id is not None
        self.batch_id: uuid.UUID = p.batch_id
        self.parked = False

    async def _batch_state(self) -> tuple[BatchState, datetime | None]:
        async with self.jobs.pool.acquire() as conn:
            batch = await store.get_batch(conn, batch_id=self.batch_id)
        if batch is None:
            return BatchState.CANCELED, None
        return batch.state, batch.parked_until

    async def _wait_while_held(self) -> BatchState:
        """Wait while the batch is paused or parked; its state once it is not."""
        while True:
            state, parked_until = await self._batch_state()
            now = datetime.now(UTC)
            if state == BatchState.PAUSED:
                await self.ctx.checkpoint(self.ctx.job.progress, "paused")
            elif parked_until is not None and parked_until > now:
                self.parked = True
                await self.ctx.checkpoint(self.ctx.job.progress, "waiting for the per-day quota")
            else:
                if self.parked and parked_until is None and self.jobs.on_unpark is not None:
                    await self.jobs.on_unpark()  # resumed by the user: try the model again now
                self.parked = False
                return state
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        """Run every item of the chunk that has not ended."""
        while True:
            state = await self._wait_while_held()
            if state in (BatchState.CANCELED, BatchState.DONE):
                async with self.ctx.transaction() as conn:
                    await store.end_items(
                        conn,
                        job_id=self.ctx.job.id,
                        state=ItemState.CANCELED,
                        code=ErrorCode.CANCELED,
                        message="the batch was canceled",
                    )
                return
            async with self.jobs.pool.acquire() as conn:
                items = await store.chunk_items(conn, job_id=self.ctx.job.id)
            if not items:
                return
            await self._run_items(items)

    async def _run_items(self, items: list[AnalysisRecord]) -> None:
        queue: asyncio.Queue[AnalysisRecord] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        stop = asyncio.Event()

        async def worker() -> None:
            while not stop.is_set() and not queue.empty():
                item = queue.get_nowait()
                if not await self._item(item):
                    stop.set()

        n = max(1, min(self.jobs.settings.batch_item_concurrency, len(items)))
        try:
            # one item's unexpected error (the database went away) stops its siblings: the chunk is retried whole
            async with asyncio.TaskGroup() as tasks:
                for _ in range(n):
                    tasks.create_task(worker())
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None
        self.ctx.raise_if_stopped()
        if self.ctx.cancel_requested:
            raise JobFailure(ErrorCode.CANCELED, "canceled by the user")

    async def _held(self) -> bool:
        state, parked_until = await self._batch_state()
        return state != BatchState.RUNNING or (parked_until is not None and parked_until > datetime.now(UTC))

    async def _item(self, item: AnalysisRecord) -> bool:
        """Run one item; False when the chunk must stop taking items (paused, parked, canceled, stopping)."""
        if self.ctx.stopping or await self._held():
            return False
        async with self.jobs.pool.acquire() as conn:
            started = await store.start_item(conn, analysis_id=item.id, job_id=self.ctx.job.id)
        if started is None:
            return True
        try:
            outcome = await self.jobs.analyse(self.ctx, started, price=self.p.price, in_chunk=True)
        except QuotaParked as exc:
            async with self.jobs.pool.acquire() as conn:
                await store.park_batch(conn, batch_id=self.batch_id, until=exc.until)
                await conn.execute(
                    "UPDATE analyses SET state = 'queued' WHERE id = $1 AND state = 'running'", item.id
                )
            log.warning("analysis.batch_parked", batch_id=str(self.batch_id), until=exc.until.isoformat())
            return False
        except (JobStopped, JobFailure):
            return False
        async with self.ctx.transaction() as conn:
            ended = await self.jobs._store(conn, started, outcome)
            if ended is not None:
                used = await store.chunk_charged(conn, job_id=self.ctx.job.id)
                await credits.record_usage(conn, job_id=self.ctx.job.id, used=used)
        await self.jobs.batch_progress(self.batch_id)
        return True
