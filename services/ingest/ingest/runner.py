"""The worker's job runner: claims queued import/search jobs from Postgres under a lease and runs them.

Why a lease and not a bus message per job: a download can take longer than RabbitMQ's consumer timeout, and
a lease survives a killed worker by itself. A job is claimed with ``FOR UPDATE SKIP LOCKED``; its lease is
renewed while it runs; when a worker dies the lease expires and another worker takes the job over. A job
ends exactly once: its final transaction checks that this worker still holds the lease, and the video it
produces is unique per import (``source_ref``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from structlog.contextvars import bound_contextvars

from common import outbox
from common.bus import Bus
from common.events.ingest import VideoIngestFailed
from common.jobs import (
    ErrorCode,
    InvalidTransition,
    JobFailure,
    JobStatus,
    ProgressReporter,
    get_job,
    update_job,
)
from common.logging import get_logger
from common.storage import ObjectStore

from . import fetch, netguard, pipeline, search, store
from .config import IngestSettings
from .media import Limits
from .tmpfiles import workspace

log = get_logger(__name__)

PRODUCER = "ingest"
KINDS = ("import", "search")
#: (target, limit, proxy_url) -> yt-dlp's flat-playlist info dict; tests replace only this network call
SearchFn = Callable[[str, int, str | None], dict[str, Any]]


def default_search(target: str, limit: int, proxy: str | None) -> dict[str, Any]:
    """The real platform search through yt-dlp."""
    return fetch.ytdlp_search(target, limit, proxy=proxy)


class _Stopped(Exception):
    """The worker is shutting down or lost the lease: hand the job back instead of ending it."""


@dataclass
class _Run:
    job_id: uuid.UUID
    cancel: threading.Event = field(default_factory=threading.Event)
    lease_lost: bool = False


def limits_of(settings: IngestSettings) -> Limits:
    """The media limits from settings."""
    return Limits(
        max_duration_s=settings.max_duration_s,
        max_dimension=settings.max_dimension,
        min_dimension=settings.min_dimension,
    )


def policy_of(settings: IngestSettings) -> netguard.AddressPolicy:
    """The SSRF address policy from settings."""
    return netguard.AddressPolicy.of(
        allow_private=settings.import_allow_private, allowed_hosts=settings.import_allowed_hosts
    )


class JobRunner:
    """Runs up to ``job_concurrency`` jobs at once in this process."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        bus: Bus,
        store: ObjectStore,
        settings: IngestSettings,
        search_fn: SearchFn | None = None,
    ) -> None:
        self.pool, self.bus, self.store, self.settings = pool, bus, store, settings
        self.search_fn = search_fn or default_search
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.limits = limits_of(settings)
        self.policy = policy_of(settings)
        self.fmt = settings.import_format if fetch.has_ffmpeg() else fetch.FORMAT_WITHOUT_FFMPEG
        self._runs: dict[uuid.UUID, tuple[_Run, asyncio.Task[None]]] = {}
        self._stopping = False
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start claiming jobs."""
        self._loop_task = asyncio.create_task(self._loop(), name="ingest-job-runner")

    async def stop(self, timeout_s: float = 20.0) -> None:
        """Stop claiming; running jobs stop at their next checkpoint and go back to the queue."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for run, _ in self._runs.values():
            run.cancel.set()
        tasks = [t for _, t in self._runs.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def wake(self) -> None:
        """Look for work now (a job was just queued in this process)."""
        self._wake.set()

    def cancel_local(self, job_id: uuid.UUID) -> None:
        """Stop a job this process runs at its next chunk (the DB flag is the durable cancel)."""
        entry = self._runs.get(job_id)
        if entry is not None:
            entry[0].cancel.set()

    async def _loop(self) -> None:
        while not self._stopping:
            claimed = None
            if len(self._runs) < self.settings.job_concurrency:
                try:
                    claimed = await self.claim_one()
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("ingest.claim_failed", error=repr(exc))
            if claimed is not None:
                run = _Run(claimed)
                task = asyncio.create_task(self._execute(run), name=f"ingest-job-{claimed}")
                self._runs[claimed] = (run, task)
                task.add_done_callback(functools.partial(self._done, claimed))
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.job_poll_interval_s)

    def _done(self, job_id: uuid.UUID, _task: object = None) -> None:
        self._runs.pop(job_id, None)
        self._wake.set()

    async def claim_one(self) -> uuid.UUID | None:
        """Lease one runnable job and mark it running; its id, or None when there is nothing to do."""
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                claimed = await store.claim_job(
                    conn, kinds=KINDS, worker=self.worker, lease_s=self.settings.job_lease_s
                )
                if claimed is None:
                    return None
                job_id, attempt = claimed
                if attempt > self.settings.job_max_attempts:
                    # a job that killed its worker every time must not kill the next one too
                    await self._fail(
                        conn,
                        job_id,
                        JobFailure(
                            ErrorCode.INTERNAL, f"the job was interrupted {attempt - 1} times; giving up"
                        ),
                    )
                    continue
                await update_job(
                    conn,
                    job_id,
                    producer=PRODUCER,
                    status=JobStatus.RUNNING,
                    stage="starting" if attempt == 1 else "resuming",
                )
                return job_id

    async def _execute(self, run: _Run) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(run))
        with bound_contextvars(job_id=str(run.job_id)):
            try:
                async with self.pool.acquire() as conn:
                    job = await get_job(conn, run.job_id)
                assert job is not None
                if job.kind == "import":
                    await self._run_import(run)
                else:
                    await self._run_search(run)
            except _Stopped:
                await self._hand_back(run)
            except JobFailure as failure:
                if failure.code == ErrorCode.CANCELED and (self._stopping or run.lease_lost):
                    await self._hand_back(run)
                else:
                    await self._end_failed(run, failure)
            except asyncio.CancelledError:
                await asyncio.shield(self._hand_back(run))
                raise
            except Exception as exc:
                log.exception("ingest.job_crashed", error=repr(exc))
                await self._end_failed(run, JobFailure(ErrorCode.INTERNAL, "an internal error occurred"))
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat

    async def _heartbeat(self, run: _Run) -> None:
        interval = max(0.2, self.settings.job_lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.pool.acquire() as conn:
                    ok = await store.renew_lease(
                        conn, job_id=run.job_id, worker=self.worker, lease_s=self.settings.job_lease_s
                    )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("ingest.lease_renew_failed", error=repr(exc))
                continue
            if not ok:
                log.warning("ingest.lease_lost", job_id=str(run.job_id))
                run.lease_lost = True
                run.cancel.set()
                return

    def _reporter(self, run: _Run) -> ProgressReporter:
        return ProgressReporter(
            self.pool,
            self.bus,
            run.job_id,
            producer=PRODUCER,
            min_interval_s=self.settings.progress_interval_s,
        )

    async def _checkpoint(self, run: _Run, reporter: ProgressReporter, percent: float, stage: str) -> None:
        if self._stopping or run.lease_lost:
            raise _Stopped()
        try:
            await reporter.update(percent, stage, force=True)
        except JobFailure:
            run.cancel.set()
            raise

    # -- imports --------------------------------------------------------------------------------------------

    async def _run_import(self, run: _Run) -> None:
        async with self.pool.acquire() as conn:
            imp = await store.import_for_job(conn, job_id=run.job_id)
        assert imp is not None, "an import job without its import row"
        reporter = self._reporter(run)
        await self._checkpoint(run, reporter, 0, "resolving")
        await netguard.check_url(imp["url"], self.policy)
        self.settings.ingest_tmp.mkdir(parents=True, exist_ok=True)
        async with (
            workspace(self.settings.ingest_tmp, f"import-{run.job_id}") as ws,
            netguard.GuardProxy(self.policy) as proxy,
        ):
            downloaded = await self._download(run, reporter, imp["url"], ws, proxy)
            await self._checkpoint(run, reporter, 90, "probing")
            video_id = uuid.uuid4()
            video = await pipeline.store_original(
                self.store,
                downloaded.path,
                video_id=video_id,
                owner_id=imp["owner_id"],
                limits=self.limits,
                source="import",
                title=imp["title"] or downloaded.title,
                source_url=imp["url"],
                source_ref=f"import:{imp['id']}",
                allow_audio_only=imp["allow_audio_only"],
            )
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if not await store.holds_lease(conn, job_id=run.job_id, worker=self.worker):
                    raise _Stopped()
                inserted = await store.insert_video(conn, video=video)
                if inserted is None:
                    # an earlier attempt of this import already registered its video: end with that one
                    existing = await store.video_by_source_ref(conn, source_ref=f"import:{imp['id']}")
                    assert existing is not None
                    await pipeline.discard_original(self.store, video_id)
                    inserted = existing
                else:
                    await outbox.add(conn, inserted.ingested())
                await store.set_import_video(conn, import_id=imp["id"], video_id=inserted.id)
                await update_job(
                    conn,
                    run.job_id,
                    producer=PRODUCER,
                    status=JobStatus.SUCCEEDED,
                    stage="done",
                    result={"video_id": str(inserted.id), "import_id": str(imp["id"])},
                )
        except BaseException:
            await pipeline.discard_original(self.store, video_id)
            raise
        log.info("ingest.import_succeeded", video_id=str(video.id), url=imp["url"])

    async def _download(
        self,
        run: _Run,
        reporter: ProgressReporter,
        url: str,
        ws: Any,
        proxy: netguard.GuardProxy,
    ) -> fetch.Downloaded:
        loop = asyncio.get_running_loop()
        latest: dict[str, int | None] = {"done": 0, "total": None}

        def on_progress(done: int, total: int | None) -> None:
            # runs in yt-dlp's thread: hand the numbers to the event loop
            loop.call_soon_threadsafe(latest.update, {"done": done, "total": total})

        await self._checkpoint(run, reporter, 0, "downloading")
        task = asyncio.ensure_future(
            asyncio.to_thread(
                fetch.download,
                url,
                ws,
                proxy=proxy.url,
                fmt=self.fmt,
                max_bytes=self.settings.import_max_bytes,
                max_duration_s=self.settings.max_duration_s,
                socket_timeout=self.settings.import_socket_timeout_s,
                on_progress=on_progress,
                cancel=run.cancel,
                refusals=proxy.refusals,
            )
        )
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.25)
                done, total = latest["done"] or 0, latest["total"]
                pct = min(89.0, 89.0 * done / total) if total else 0.0
                if self._stopping or run.lease_lost:
                    run.cancel.set()
                    continue
                try:
                    await reporter.update(pct, "downloading")
                except JobFailure:
                    run.cancel.set()  # canceled by the user: let yt-dlp stop at its next chunk
        finally:
            if not task.done():
                run.cancel.set()
                # the thread writes into the workspace: it must end before the workspace is removed
                await asyncio.shield(asyncio.wait({task}))
        if (self._stopping or run.lease_lost) and task.exception() is not None:
            raise _Stopped()
        return task.result()

    # -- searches -------------------------------------------------------------------------------------------

    async def _run_search(self, run: _Run) -> None:
        async with self.pool.acquire() as conn:
            s = await store.search_for_job(conn, job_id=run.job_id)
        assert s is not None, "a search job without its search row"
        reporter = self._reporter(run)
        await self._checkpoint(run, reporter, 5, "searching")
        async with netguard.GuardProxy(self.policy) as proxy:
            info = await asyncio.to_thread(self.search_fn, s["target"], s["max_results"], proxy.url)
        await self._checkpoint(run, reporter, 80, "storing")
        results = search.parse_results(info, s["platform"], s["max_results"])
        async with self.pool.acquire() as conn, conn.transaction():
            if not await store.holds_lease(conn, job_id=run.job_id, worker=self.worker):
                raise _Stopped()
            await store.replace_search_results(conn, search_id=s["id"], results=results)
            await update_job(
                conn,
                run.job_id,
                producer=PRODUCER,
                status=JobStatus.SUCCEEDED,
                stage="done",
                result={"search_id": str(s["id"]), "count": len(results)},
            )
        log.info("ingest.search_succeeded", search_id=str(s["id"]), count=len(results))

    # -- endings --------------------------------------------------------------------------------------------

    async def _fail(self, conn: asyncpg.Connection, job_id: uuid.UUID, failure: JobFailure) -> None:
        status = JobStatus.CANCELED if failure.code == ErrorCode.CANCELED else JobStatus.FAILED
        try:
            job = await update_job(
                conn, job_id, producer=PRODUCER, status=status, error=failure, stage=str(status)
            )
        except InvalidTransition:
            return
        if job.kind == "import" and status == JobStatus.FAILED:
            imp = await store.import_for_job(conn, job_id=job_id)
            await outbox.add(
                conn,
                VideoIngestFailed(
                    owner_id=job.owner_id,
                    job_id=job_id,
                    source_url=imp["url"] if imp else "",
                    code=failure.code,
                    message=failure.message,
                    producer=PRODUCER,
                ),
            )

    async def _end_failed(self, run: _Run, failure: JobFailure) -> None:
        log.info("ingest.job_failed", code=failure.code, message=failure.message)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await store.holds_lease(conn, job_id=run.job_id, worker=self.worker):
                return
            await self._fail(conn, run.job_id, failure)

    async def _hand_back(self, run: _Run) -> None:
        """Put the job back in the queue (shutdown) unless another worker already owns it."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if not await store.holds_lease(conn, job_id=run.job_id, worker=self.worker):
                    return
                with contextlib.suppress(InvalidTransition):
                    await update_job(
                        conn, run.job_id, producer=PRODUCER, status=JobStatus.QUEUED, stage="requeued"
                    )
                await store.release_lease(conn, job_id=run.job_id, worker=self.worker)
        except Exception as exc:  # the lease expires by itself; another worker takes the job then
            log.warning("ingest.hand_back_failed", error=repr(exc))
