"""The worker's job runner: import and search jobs, run under a lease by ``common.jobrunner.LeasedJobRunner``.

Why a lease and not a bus message per job: a download can take longer than RabbitMQ's consumer timeout, and
a lease survives a killed worker by itself (see ``common.jobrunner``). This module holds only what is ingest's:
what an import and a search do, and what a failed import announces. A job ends exactly once: its final
transaction runs in ``JobContext.transaction`` (which checks the lease), and the video it produces is unique per
import (``source_ref``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg

from common import outbox
from common.addresses import AddressPolicy
from common.bus import Bus
from common.errors import public_message
from common.events.ingest import VideoIngestFailed
from common.jobrunner import JobContext, JobStopped, LeasedJobRunner
from common.jobs import Job, JobFailure, JobStatus, update_job
from common.logging import get_logger
from common.storage import ObjectStore

from . import fetch, netguard, search, store
from .config import IngestSettings
from .originals import Originals, import_video_id
from .tmpfiles import workspace

log = get_logger(__name__)

PRODUCER = "ingest"
KINDS = ("import", "search")
#: (target, limit, proxy_url) -> yt-dlp's flat-playlist info dict; tests replace only this network call
SearchFn = Callable[[str, int, str | None], dict[str, Any]]


def default_search(target: str, limit: int, proxy: str | None) -> dict[str, Any]:
    """The real platform search through yt-dlp."""
    return fetch.ytdlp_search(target, limit, proxy=proxy)


def policy_of(settings: IngestSettings) -> AddressPolicy:
    """The SSRF address policy from settings."""
    return AddressPolicy.of(
        allow_private=settings.import_allow_private, allowed_hosts=settings.import_allowed_hosts
    )


async def _succeeded(conn: asyncpg.Connection, ctx: JobContext, **result: Any) -> None:
    """End the job ``succeeded`` at stage ``done`` with ``result`` (in the caller's transaction)."""
    await update_job(
        conn, ctx.job.id, producer=PRODUCER, status=JobStatus.SUCCEEDED, stage="done", result=result
    )


class JobRunner:
    """Runs up to ``job_concurrency`` import/search jobs at once in this process."""

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
        self.originals = Originals.of(settings, pool=pool, objects=store)
        self.policy = policy_of(settings)
        self.fmt = settings.import_format if fetch.has_ffmpeg() else fetch.FORMAT_WITHOUT_FFMPEG
        self.leased = LeasedJobRunner.from_settings(
            settings,
            pool=pool,
            bus=bus,
            kinds=KINDS,
            handler=self._run,
            producer=PRODUCER,
            on_failure=self._on_failure,
        )

    @property
    def worker(self) -> str:
        """This process's lease holder id."""
        return self.leased.worker

    async def start(self) -> None:
        """Start claiming jobs."""
        await self.leased.start()

    async def stop(self, timeout_s: float = 20.0) -> None:
        """Stop claiming; running jobs stop at their next checkpoint and go back to the queue."""
        await self.leased.stop(timeout_s=timeout_s)

    def wake(self) -> None:
        """Look for work now (a job was just queued in this process)."""
        self.leased.wake()

    def cancel_local(self, job_id: uuid.UUID) -> None:
        """Stop a job this process runs at its next chunk (the DB flag is the durable cancel)."""
        self.leased.cancel_local(job_id)

    async def _run(self, ctx: JobContext) -> None:
        if ctx.job.kind == "import":
            await self._run_import(ctx)
        else:
            await self._run_search(ctx)

    # -- imports --------------------------------------------------------------------------------------------

    async def _run_import(self, ctx: JobContext) -> None:
        async with self.pool.acquire() as conn:
            imp = await store.IMPORTS.for_job(conn, job_id=ctx.job.id)
        assert imp is not None, "an import job without its import row"
        await ctx.checkpoint(0, "resolving", force=True)
        await netguard.check_url(imp["url"], self.policy)
        self.settings.scratch_dir.mkdir(parents=True, exist_ok=True)
        async with (
            workspace(self.settings.scratch_dir, f"import-{ctx.job.id}") as ws,
            netguard.GuardProxy(self.policy) as proxy,
        ):
            downloaded = await self._download(ctx, imp["url"], ws, proxy)
            await ctx.checkpoint(90, "probing", force=True)
            # the same on every attempt of the job: a retry rewrites the same object
            video_id = import_video_id(imp["id"])
            video = await self.originals.keep(
                downloaded.path,
                video_id=video_id,
                owner_id=imp["owner_id"],
                source="import",
                title=imp["title"] or downloaded.title,
                source_url=imp["url"],
                source_ref=f"import:{imp['id']}",
                allow_audio_only=imp["allow_audio_only"],
                uploader=downloaded.uploader,
                platform=downloaded.platform,
            )
        # no inline clean-up when this fails: the job's next attempt rewrites the same object, else the sweep
        # deletes it (a worker that lost the lease must not delete what the new owner of the job stores)
        async with ctx.transaction() as conn:
            inserted = await store.insert_video(conn, video=video)
            if inserted is None:
                # an earlier attempt of this import already registered its video: end with that one
                inserted = await store.video_by_source_ref(conn, source_ref=f"import:{imp['id']}")
                assert inserted is not None
            else:
                await outbox.add(conn, inserted.ingested(correlation_id=imp["request_id"] or ""))
            await store.set_import_video(conn, import_id=imp["id"], video_id=inserted.id)
            await _succeeded(conn, ctx, video_id=str(inserted.id), import_id=str(imp["id"]))
        log.info("ingest.import_succeeded", video_id=str(video.id), url=imp["url"])

    async def _download(
        self,
        ctx: JobContext,
        url: str,
        ws: Any,
        proxy: netguard.GuardProxy,
    ) -> fetch.Downloaded:
        loop = asyncio.get_running_loop()
        latest: dict[str, int | None] = {"done": 0, "total": None}

        def on_progress(done: int, total: int | None) -> None:
            # runs in yt-dlp's thread: hand the numbers to the event loop
            loop.call_soon_threadsafe(latest.update, {"done": done, "total": total})

        await ctx.checkpoint(0, "downloading", force=True)
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
                cancel=ctx.cancel,
                refusals=proxy.refusals,
            )
        )
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.25)
                done, total = latest["done"] or 0, latest["total"]
                pct = min(89.0, 89.0 * done / total) if total else 0.0
                if ctx.stopping or ctx.cancel.is_set():
                    ctx.cancel.set()  # yt-dlp stops at its next chunk
                    continue
                # canceled by the user: ``checkpoint`` set the signal yt-dlp checks; the thread ends the job
                with contextlib.suppress(JobFailure):
                    await ctx.checkpoint(pct, "downloading")
        finally:
            if not task.done():
                ctx.cancel.set()
                # the thread writes into the workspace: it must end before the workspace is removed
                await asyncio.shield(asyncio.wait({task}))
        if ctx.stopping and task.exception() is not None:
            raise JobStopped()
        return task.result()

    # -- searches -------------------------------------------------------------------------------------------

    async def _run_search(self, ctx: JobContext) -> None:
        async with self.pool.acquire() as conn:
            s = await store.SEARCHES.for_job(conn, job_id=ctx.job.id)
        assert s is not None, "a search job without its search row"
        await ctx.checkpoint(5, "searching", force=True)
        async with netguard.GuardProxy(self.policy) as proxy:
            info = await asyncio.to_thread(self.search_fn, s["target"], s["max_results"], proxy.url)
        await ctx.checkpoint(80, "storing", force=True)
        results = search.parse_results(info, s["platform"], s["max_results"])
        async with ctx.transaction() as conn:
            await store.replace_search_results(conn, search_id=s["id"], results=results)
            await _succeeded(conn, ctx, search_id=str(s["id"]), count=len(results))
        log.info("ingest.search_succeeded", search_id=str(s["id"]), count=len(results))

    # -- endings --------------------------------------------------------------------------------------------

    async def _on_failure(self, conn: asyncpg.Connection, job: Job, failure: JobFailure) -> None:
        """A failed or canceled import also says so as ``video.ingest_failed.v1`` (same transaction as the job's
        end), with the command's request id as correlation id: a requester always gets an answer."""
        if job.kind != "import" or job.status not in (JobStatus.FAILED, JobStatus.CANCELED):
            return
        imp = await store.IMPORTS.for_job(conn, job_id=job.id)
        await outbox.add(
            conn,
            VideoIngestFailed(
                owner_id=job.owner_id,
                job_id=job.id,
                source_url=imp["url"] if imp else "",
                code=failure.code,
                message=public_message(failure.message),
                producer=PRODUCER,
                correlation_id=(imp["request_id"] if imp else None) or "",
            ),
        )
