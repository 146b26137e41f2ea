"""Run long jobs from the ``jobs`` table under a lease, instead of inside a message handler.

Why: RabbitMQ closes the channel of a consumer that holds a message longer than its ``consumer_timeout``
(30 min by default), and a download or a transcode can take hours. A job row is claimed with
``FOR UPDATE SKIP LOCKED`` and a lease (``job_runs``), renewed in the background while the handler runs. A worker
that dies stops renewing; when its lease expires another worker claims the job again (``attempts`` + 1, stage
``resuming``). After ``max_attempts`` claims the job fails with ``internal.error`` so a poison job cannot take
down every worker. A job ends exactly once: the final transaction locks the job and checks that this worker
still holds the lease (``JobContext.transaction``).

The handler gets a ``JobContext``: the job, its attempt number, a progress reporter, and ``cancel`` — a
``threading.Event`` (so worker threads can poll it) set when the user asks to cancel, the lease is lost, or the
process shuts down. ``checkpoint`` turns those into exceptions: ``JobStopped`` (hand the job back) or
``JobFailure(job.canceled)``. Whatever the handler raises, the runner decides the ending:

- returns → ``succeeded`` (unless the handler already ended the job in its own final transaction);
- lease lost → nothing (the job belongs to another worker now);
- cancel requested → ``canceled`` with ``job.canceled``;
- shutdown (``stop()``) or ``JobStopped`` → handed back: ``queued``, lease released, attempt given back;
- ``JobFailure`` → ``failed`` with its code;
- the database out of reach (``DATABASE_UNAVAILABLE``: too many clients, not accepting connections, a connection
  lost) → retried after ``retry_delays_s`` or, when none are given, after ``DATABASE_RETRY_DELAYS_S`` (until
  ``max_attempts``): a database restart or a full connection table is no reason to fail a user's job;
- anything else → retried after ``retry_delays_s`` (if given, until ``max_attempts``), then ``failed`` with
  ``unexpected_error_code``.

``on_failure(conn, job, failure)`` runs in the transaction that fails or cancels a job, so a service can record
its own consequences (a stream in ``error``, a ``*.failed`` event) atomically with the job's end.
A paid job (``common.credits``) is claimed only while its credit hold is granted, and the transaction that ends
it also writes its settle (``common.jobs.update_job``), so a runner needs nothing credit-specific.
New queued jobs and cancel requests wake runners through ``LISTEN/NOTIFY`` (a trigger on ``jobs``, see
``sql/0002_job_runs.sql``); a short poll covers a lost notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import asyncpg
from structlog.contextvars import bound_contextvars

from .bus.base import Bus, Delivery
from .bus.router import Router
from .db import PoolListener, check_ident
from .events.jobs import JobCancelRequested
from .jobs import (
    ErrorCode,
    InvalidTransition,
    Job,
    JobFailure,
    JobStatus,
    ProgressReporter,
    get_job,
    request_cancel,
    update_job,
)
from .logging import get_logger
from .settings import ServiceSettings

log = get_logger(__name__)

#: errors that say the database could not be reached just now, not that the job is wrong
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
)
#: back-off before retrying a job the database failed, when the runner has no ``retry_delays_s`` of its own
DATABASE_RETRY_DELAYS_S = (2.0, 10.0)

T = TypeVar("T")

__all__ = [
    "JobContext",
    "JobHandler",
    "JobStopped",
    "LeaseLost",
    "LeasedJobRunner",
    "OnFailure",
    "cancel_router",
    "channel_for",
    "claim_job",
    "holds_lease",
    "job_attempts",
    "release_lease",
    "renew_lease",
]


class JobStopped(Exception):
    """The worker shuts down or lost the lease: stop the work and hand the job back instead of ending it."""


class LeaseLost(JobStopped):
    """Another worker owns the job now: this one must not change it."""


def channel_for(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which ``jobs`` changes of ``schema`` are announced."""
    return f"jobs_{check_ident(schema)}"


# -- the lease (SQL) -----------------------------------------------------------------------------------------


async def claim_job(
    conn: asyncpg.Connection,
    *,
    kinds: Sequence[str],
    worker: str,
    lease_s: float,
    exclude: Sequence[uuid.UUID] = (),
) -> tuple[uuid.UUID, int] | None:
    """Lease the oldest runnable job of ``kinds``: queued, or running under an expired lease (its worker died).

    A paid job (one with a ``credit_holds`` row, ``common.credits``) is runnable only while its hold is granted.

    ``exclude``: jobs the caller still runs itself. A lease that expired while the database was unreachable must
    not be claimed again by the same worker: both runs would hold the lease under one worker id, and the final
    transaction's check could not tell them apart.

    Returns ``(job_id, attempt)``; the caller's transaction holds the job row locked until it commits.
    The lease is re-checked by the upsert itself: a row locked after another worker's claim committed passes
    the first query's re-check with the lease row of the old snapshot, so only the upsert sees the truth.
    """
    skipped: list[uuid.UUID] = list(exclude)
    while True:
        r = await conn.fetchrow(
            "SELECT j.id FROM jobs j LEFT JOIN job_runs r ON r.job_id = j.id"
            " WHERE j.kind = ANY($1::text[]) AND j.status IN ('queued', 'running')"
            " AND (r.lease_until IS NULL OR r.lease_until < now()) AND NOT (j.id = ANY($2::uuid[]))"
            # a paid job is funded only while its hold is granted (common.credits); other jobs have no hold
            " AND NOT EXISTS (SELECT 1 FROM credit_holds h WHERE h.job_id = j.id AND h.status <> 'granted')"
            " ORDER BY j.created_at LIMIT 1 FOR UPDATE OF j SKIP LOCKED",
            list(kinds),
            skipped,
        )
        if r is None:
            return None
        attempts = await conn.fetchval(
            "INSERT INTO job_runs (job_id, worker, lease_until, attempts, claimed_at)"
            " VALUES ($1, $2, now() + make_interval(secs => $3), 1, now())"
            " ON CONFLICT (job_id) DO UPDATE SET worker = $2, lease_until = now() + make_interval(secs => $3),"
            " attempts = job_runs.attempts + 1, claimed_at = now() WHERE job_runs.lease_until < now()"
            " RETURNING attempts",
            r["id"],
            worker,
            lease_s,
        )
        if attempts is not None:
            return r["id"], int(attempts)
        skipped.append(r["id"])  # claimed by another worker a moment ago


async def renew_lease(
    conn: asyncpg.Connection, *, job_id: uuid.UUID, worker: str, lease_s: float
) -> tuple[bool, bool]:
    """Extend the lease: ``(still held, cancel requested)``."""
    r = await conn.fetchrow(
        "UPDATE job_runs r SET lease_until = now() + make_interval(secs => $3) FROM jobs j"
        " WHERE r.job_id = $1 AND r.worker = $2 AND j.id = r.job_id RETURNING j.cancel_requested",
        job_id,
        worker,
        lease_s,
    )
    if r is None:
        return False, False
    return True, bool(r["cancel_requested"])


async def holds_lease(conn: asyncpg.Connection, *, job_id: uuid.UUID, worker: str) -> bool:
    """Whether ``worker`` still holds the job; locks the job row for the rest of the transaction.

    The job row is locked before the lease is read (the order ``claim_job`` uses), so a worker ending a job and
    another claiming it cannot deadlock, and the claim waits for — then sees — the ending.
    """
    if await conn.fetchval("SELECT true FROM jobs WHERE id = $1 FOR UPDATE", job_id) is None:
        return False
    found = await conn.fetchval("SELECT true FROM job_runs WHERE job_id = $1 AND worker = $2", job_id, worker)
    return bool(found)


async def release_lease(
    conn: asyncpg.Connection,
    *,
    job_id: uuid.UUID,
    worker: str,
    delay_s: float = 0.0,
    give_back_attempt: bool = False,
) -> None:
    """End this worker's lease: claimable at once, or after ``delay_s`` (a retry's back-off)."""
    await conn.execute(
        "UPDATE job_runs SET lease_until = now() + make_interval(secs => $3) - interval '1 millisecond',"
        " attempts = greatest(0, attempts - $4) WHERE job_id = $1 AND worker = $2",
        job_id,
        worker,
        max(0.0, delay_s),
        1 if give_back_attempt else 0,
    )


async def job_attempts(conn: asyncpg.Connection, *, job_id: uuid.UUID) -> int:
    """How many claims of a job counted as attempts."""
    return int(
        await conn.fetchval("SELECT coalesce(max(attempts), 0) FROM job_runs WHERE job_id = $1", job_id)
    )


# -- the runner ----------------------------------------------------------------------------------------------


@dataclass(eq=False)
class JobContext:
    """What a job handler gets: the job, its attempt, progress, and the signals to stop."""

    job: Job
    attempt: int
    worker: str
    pool: asyncpg.Pool
    reporter: ProgressReporter
    #: set on cancel request, lost lease or shutdown; a plain ``threading.Event`` so worker threads can poll it
    cancel: threading.Event = field(default_factory=threading.Event)
    lease_lost: bool = False
    cancel_requested: bool = False
    shutting_down: bool = False

    @property
    def stopping(self) -> bool:
        """The job must be handed back (shutdown) or dropped (lease lost), not ended."""
        return self.lease_lost or self.shutting_down

    def raise_if_stopped(self) -> None:
        """``LeaseLost``/``JobStopped`` when the work must stop without ending the job."""
        if self.lease_lost:
            raise LeaseLost(f"job {self.job.id}: the lease was lost")
        if self.shutting_down:
            raise JobStopped(f"job {self.job.id}: the worker is shutting down")

    async def checkpoint(self, percent: float, stage: str | None = None, *, force: bool = False) -> None:
        """Record progress (throttled unless ``force``); raises when the work must stop or was canceled."""
        self.raise_if_stopped()
        if self.cancel_requested:
            raise JobFailure(ErrorCode.CANCELED, "canceled by the user")
        try:
            await self.reporter.update(percent, stage, force=force)
        except JobFailure:
            self.cancel_requested = True
            self.cancel.set()
            raise
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, TimeoutError) as exc:
            # progress is best-effort: a database blip must not fail the job. Who owns the job is decided by
            # the lease (renewed in the background) and proved again in the job's final transaction.
            log.warning("job.progress_not_recorded", job_id=str(self.job.id), error=type(exc).__name__)

    async def in_thread(
        self, work: Callable[[], T], *, tick: Callable[[], Awaitable[None]], interval_s: float
    ) -> T:
        """Run CPU-bound ``work`` in a thread, awaiting ``tick()`` (progress: a ``checkpoint``) every ``interval_s``.

        Whatever stops the wait (a checkpoint's cancel, a lost lease, the task being cancelled) sets ``cancel``,
        which the work polls, and waits for the thread to return: no thread outlives its job.
        """
        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=interval_s)
                await tick()
        finally:
            if not task.done():
                self.cancel.set()
                await asyncio.wait({task})
                task.exception()  # retrieved: the error that stops us is the one raised above
        return task.result()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A transaction in which this worker provably holds the job (for the job's final writes)."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await holds_lease(conn, job_id=self.job.id, worker=self.worker):
                self.lease_lost = True
                self.cancel.set()
                raise LeaseLost(f"job {self.job.id}: the lease was lost")
            yield conn


JobHandler = Callable[[JobContext], Awaitable[None]]
OnFailure = Callable[[asyncpg.Connection, Job, JobFailure], Awaitable[None]]


class LeasedJobRunner:
    """Claims runnable jobs of ``kinds`` and runs up to ``concurrency`` of them at once in this process."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        bus: Bus | None,
        kinds: Sequence[str],
        handler: JobHandler,
        producer: str,
        schema: str | None = None,
        concurrency: int = 1,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        poll_interval_s: float = 1.0,
        progress_interval_s: float = 0.5,
        retry_delays_s: Sequence[float] = (),
        unexpected_error_code: str = ErrorCode.INTERNAL,
        on_failure: OnFailure | None = None,
        worker_id: str | None = None,
        name: str = "jobs",
    ) -> None:
        if not kinds:
            raise ValueError("a runner needs at least one job kind")
        self.pool, self.bus, self.kinds, self.handler = pool, bus, tuple(kinds), handler
        self.producer, self.schema = producer, schema
        self.concurrency = max(1, concurrency)
        self.lease_s, self.max_attempts = lease_s, max(1, max_attempts)
        self.poll_interval_s, self.progress_interval_s = poll_interval_s, progress_interval_s
        self.retry_delays_s = tuple(retry_delays_s)
        self.unexpected_error_code = unexpected_error_code
        self.on_failure = on_failure
        self.name = name
        self.worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._runs: dict[uuid.UUID, tuple[JobContext, asyncio.Task[None]]] = {}
        self._stopping = False
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._listener: PoolListener | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def running(self) -> list[uuid.UUID]:
        """Ids of the jobs this process runs now."""
        return list(self._runs)

    async def start(self) -> None:
        """Start claiming jobs in the background."""
        if self.schema is None:
            async with self.pool.acquire() as conn:
                self.schema = str(await conn.fetchval("SELECT current_schema()"))
        self._loop_task = asyncio.create_task(self._loop(), name=f"{self.name}-runner")

    async def stop(self, timeout_s: float = 20.0) -> None:
        """Stop claiming; running jobs get the stop signal and are handed back (``queued``) for another worker."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for ctx, _ in self._runs.values():
            ctx.shutting_down = True
            ctx.cancel.set()
        tasks = [t for _, t in self._runs.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._unlisten()

    def wake(self) -> None:
        """Look for work now (a job was just queued by this process)."""
        self._wake.set()

    def cancel_local(self, job_id: uuid.UUID) -> None:
        """Signal a job this process runs that its cancel was requested (the DB flag is the durable cancel)."""
        entry = self._runs.get(job_id)
        if entry is not None:
            entry[0].cancel_requested = True
            entry[0].cancel.set()

    # -- claiming ----------------------------------------------------------------------------------------

    async def _listen(self) -> None:
        if self.schema is None:
            return
        if self._listener is None:
            self._listener = PoolListener(self.pool, channel_for(self.schema), self._notified)
        await self._listener.ensure()

    async def _unlisten(self) -> None:
        if self._listener is not None:
            await self._listener.close()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        what, _, arg = payload.partition(" ")
        if what == "cancel":
            with contextlib.suppress(ValueError):
                self.cancel_local(uuid.UUID(arg))
        elif arg in self.kinds:
            self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            claimed: tuple[JobContext, int] | None = None
            try:
                await self._listen()
                if len(self._runs) < self.concurrency:
                    claimed = await self.claim_one()
            except Exception as exc:  # the loop must outlive any database outage, or no job is claimed again
                log.warning("jobrunner.claim_failed", error=repr(exc))
                await self._unlisten()
            if claimed is not None:
                ctx, _ = claimed
                task = asyncio.create_task(self._execute(ctx), name=f"{self.name}-job-{ctx.job.id}")
                self._runs[ctx.job.id] = (ctx, task)
                task.add_done_callback(functools.partial(self._done, ctx.job.id))
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)

    def _done(self, job_id: uuid.UUID, _task: object = None) -> None:
        self._runs.pop(job_id, None)
        self._wake.set()

    async def claim_one(self) -> tuple[JobContext, int] | None:
        """Lease one runnable job and mark it ``running``: its context and attempt, or None when idle."""
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                claimed = await claim_job(
                    conn, kinds=self.kinds, worker=self.worker, lease_s=self.lease_s, exclude=list(self._runs)
                )
                if claimed is None:
                    return None
                job_id, attempt = claimed
                if attempt > self.max_attempts:
                    # a job that killed its worker every time must not kill the next one too
                    await self._end(
                        conn,
                        job_id,
                        JobFailure(
                            ErrorCode.INTERNAL, f"the job was interrupted {attempt - 1} times; giving up"
                        ),
                    )
                    continue
                job = await update_job(
                    conn,
                    job_id,
                    producer=self.producer,
                    status=JobStatus.RUNNING,
                    stage="starting" if attempt == 1 else "resuming",
                )
            reporter = ProgressReporter(
                self.pool, self.bus, job_id, producer=self.producer, min_interval_s=self.progress_interval_s
            )
            ctx = JobContext(job=job, attempt=attempt, worker=self.worker, pool=self.pool, reporter=reporter)
            if job.cancel_requested:
                ctx.cancel_requested = True
                ctx.cancel.set()
            return ctx, attempt

    # -- running -----------------------------------------------------------------------------------------

    async def _execute(self, ctx: JobContext) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(ctx), name=f"{self.name}-lease-{ctx.job.id}")
        with bound_contextvars(job_id=str(ctx.job.id)):
            try:
                await self._run(ctx, heartbeat)
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat

    async def _run(self, ctx: JobContext, heartbeat: asyncio.Task[None]) -> None:
        async def stop_heartbeat() -> None:
            # before any ending: a renewal after a release would keep the job from the next worker
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

        try:
            if ctx.cancel_requested:
                raise JobFailure(ErrorCode.CANCELED, "canceled by the user")
            await self.handler(ctx)
        except asyncio.CancelledError:
            await stop_heartbeat()
            await asyncio.shield(self._hand_back(ctx, give_back_attempt=True))
            raise
        except Exception as exc:
            await stop_heartbeat()
            await self._after_error(ctx, exc)
            return
        await stop_heartbeat()
        await self._succeed(ctx)

    async def _after_error(self, ctx: JobContext, exc: Exception) -> None:
        # a stop signal (shutdown) looks like a cancel to the work it interrupted: only a user's request counts
        canceled = ctx.cancel_requested or (
            isinstance(exc, JobFailure) and exc.code == ErrorCode.CANCELED and not ctx.shutting_down
        )
        if ctx.lease_lost or isinstance(exc, LeaseLost):
            log.warning("jobrunner.lease_lost", kind=ctx.job.kind, error=repr(exc))
        elif canceled:
            await self._end_owned(ctx, JobFailure(ErrorCode.CANCELED, "canceled by the user"))
        elif ctx.shutting_down or isinstance(exc, JobStopped):
            await self._hand_back(ctx, give_back_attempt=True)
        elif isinstance(exc, JobFailure):
            await self._end_owned(ctx, exc)
        elif (delays := self._retry_delays(exc)) and ctx.attempt < self.max_attempts:
            delay = delays[min(ctx.attempt, len(delays)) - 1]
            log.warning(
                "jobrunner.retry", kind=ctx.job.kind, attempt=ctx.attempt, delay_s=delay, error=repr(exc)
            )
            await self._hand_back(ctx, delay_s=delay, stage="retrying")
        else:
            log.error(
                "jobrunner.job_crashed", kind=ctx.job.kind, attempt=ctx.attempt, error=repr(exc), exc_info=exc
            )
            await self._end_owned(ctx, JobFailure(self.unexpected_error_code, "an internal error occurred"))

    def _retry_delays(self, exc: Exception) -> tuple[float, ...]:
        """The back-off before an unexpected error's retries (empty: fail at once)."""
        if self.retry_delays_s or not isinstance(exc, DATABASE_UNAVAILABLE):
            return self.retry_delays_s
        return DATABASE_RETRY_DELAYS_S

    async def _heartbeat(self, ctx: JobContext) -> None:
        interval = max(0.1, self.lease_s / 3)
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.pool.acquire() as conn:
                    held, cancel = await renew_lease(
                        conn, job_id=ctx.job.id, worker=self.worker, lease_s=self.lease_s
                    )
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("jobrunner.lease_renew_failed", error=repr(exc))
                if time.monotonic() - last_ok < self.lease_s:
                    continue
                held, cancel = False, False  # unrenewed past its end: another worker may own the job now
            if not held:
                log.warning("jobrunner.lease_lost", job_id=str(ctx.job.id))
                ctx.lease_lost = True
                ctx.cancel.set()
                return
            last_ok = time.monotonic()
            if cancel and not ctx.cancel_requested:
                ctx.cancel_requested = True
                ctx.cancel.set()

    # -- endings -----------------------------------------------------------------------------------------

    async def _succeed(self, ctx: JobContext) -> None:
        try:
            async with ctx.transaction() as conn:
                job = await get_job(conn, ctx.job.id)
                if job is not None and not job.terminal:
                    await update_job(
                        conn, ctx.job.id, producer=self.producer, status=JobStatus.SUCCEEDED, stage="done"
                    )
        except LeaseLost:
            log.warning("jobrunner.lease_lost_at_end", job_id=str(ctx.job.id))

    async def _end(self, conn: asyncpg.Connection, job_id: uuid.UUID, failure: JobFailure) -> None:
        status = JobStatus.CANCELED if failure.code == ErrorCode.CANCELED else JobStatus.FAILED
        try:
            job = await update_job(
                conn, job_id, producer=self.producer, status=status, error=failure, stage=str(status)
            )
        except InvalidTransition:
            return
        log.info(
            "jobrunner.job_ended",
            kind=job.kind,
            status=str(status),
            code=failure.code,
            message=failure.message,
        )
        if self.on_failure is not None:
            await self.on_failure(conn, job, failure)

    async def _end_owned(self, ctx: JobContext, failure: JobFailure) -> None:
        try:
            async with ctx.transaction() as conn:
                await self._end(conn, ctx.job.id, failure)
        except LeaseLost:
            log.warning("jobrunner.lease_lost_at_end", job_id=str(ctx.job.id))

    async def _hand_back(
        self,
        ctx: JobContext,
        *,
        delay_s: float = 0.0,
        give_back_attempt: bool = False,
        stage: str = "requeued",
    ) -> None:
        """Put the job back in the queue unless another worker already owns it."""
        try:
            async with ctx.transaction() as conn:
                with contextlib.suppress(InvalidTransition):
                    await update_job(
                        conn, ctx.job.id, producer=self.producer, status=JobStatus.QUEUED, stage=stage
                    )
                await release_lease(
                    conn,
                    job_id=ctx.job.id,
                    worker=self.worker,
                    delay_s=delay_s,
                    give_back_attempt=give_back_attempt,
                )
        except LeaseLost:
            return
        except Exception as exc:  # the lease expires by itself; another worker takes the job then
            log.warning("jobrunner.hand_back_failed", error=repr(exc))

    # -- construction from settings --------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        settings: ServiceSettings,
        *,
        pool: asyncpg.Pool,
        bus: Bus | None,
        kinds: Sequence[str],
        handler: JobHandler,
        producer: str | None = None,
        concurrency: int | None = None,
        unexpected_error_code: str = ErrorCode.INTERNAL,
        on_failure: OnFailure | None = None,
        worker_id: str | None = None,
        name: str | None = None,
    ) -> LeasedJobRunner:
        """A runner configured by the ``JOB_*`` settings (concurrency, lease, attempts, poll, progress, retry
        delays) on the service's schema; ``producer`` and ``name`` default to the service."""
        return cls(
            pool=pool,
            bus=bus,
            kinds=kinds,
            handler=handler,
            producer=producer or settings.service,
            schema=settings.schema,
            concurrency=settings.job_concurrency if concurrency is None else concurrency,
            lease_s=settings.job_lease_s,
            max_attempts=settings.job_max_attempts,
            poll_interval_s=settings.job_poll_interval_s,
            progress_interval_s=settings.job_progress_interval_s,
            retry_delays_s=[float(d) for d in settings.job_retry_delays_s],
            unexpected_error_code=unexpected_error_code,
            on_failure=on_failure,
            worker_id=worker_id,
            name=name or settings.service,
        )


class LocalCanceller(Protocol):
    """What runs jobs in this process and can signal one of them at once."""

    def cancel_local(self, job_id: uuid.UUID) -> None:
        """Signal a job this process runs that its cancel was requested."""


def cancel_router(*, kinds: Collection[str], producer: str, runner: LocalCanceller | None = None) -> Router:
    """``job.cancel_requested.v1`` for this service's ``kinds``: a queued job is canceled at once, a running one
    at its next checkpoint (at once when ``runner`` runs it in this process). Another owner's request is ignored."""
    r = Router()

    @r.on(JobCancelRequested)
    async def on_cancel_requested(
        conn: asyncpg.Connection, event: JobCancelRequested, delivery: Delivery
    ) -> None:
        if event.kind not in kinds:
            return
        job = await get_job(conn, event.job_id)
        if job is None or job.owner_id != event.owner_id or job.kind not in kinds:
            return
        await request_cancel(conn, event.job_id, producer=producer)
        if runner is not None:
            runner.cancel_local(event.job_id)

    return r
