"""Background tasks of a process: ``Periodic`` runs a function every few seconds and survives its errors.

```python
app.cleanup_ctx.append(periodic("hold_sweeper", settings.hold_sweep_interval_s, sweep_holds, run_at_start=True))
```

Every error of a round is logged (``periodic.failed``, with the task's name and traceback) and counted in
``reelforge_errors_total{service, where=<name>}``; the next round runs as planned. A loop that dies silently
(a background task whose exception nobody retrieves) is what this replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from .bus.router import Router
from .http import SERVICE_NAME
from .jobrunner import JobHandler, LeasedJobRunner, OnFailure
from .logging import get_logger
from .metrics import ERRORS

__all__ = ["JOB_RUNNER", "Periodic", "job_worker", "periodic"]

log = get_logger(__name__)

#: where ``job_worker`` keeps a worker's job runner (one per process)
JOB_RUNNER: web.AppKey[LeasedJobRunner] = web.AppKey("job_runner", LeasedJobRunner)

#: one round; may return how many seconds until it wants the next one (less than the interval: work is waiting)
Round = Callable[[], Awaitable[object]]


class Periodic:
    """Runs ``fn`` every ``interval_s`` seconds in a background task, from ``start()`` until ``stop()``.

    ``run_at_start``: the first round runs at once instead of after one interval. ``wake()`` runs the next round
    now. A round returning a number waits that long (at most ``interval_s``) before the next one.
    """

    def __init__(
        self,
        name: str,
        interval_s: float,
        fn: Round,
        *,
        service: str,
        run_at_start: bool = False,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: interval_s must be positive, got {interval_s}")
        self.name, self.interval_s, self.fn, self.service = name, interval_s, fn, service
        self.run_at_start = run_at_start
        self.rounds = 0  # rounds finished, failed ones included
        self.failures = 0  # rounds that raised
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the rounds in the background."""
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=f"periodic-{self.name}")

    def wake(self) -> None:
        """Run the next round now (e.g. work was just queued in this process)."""
        self._wake.set()

    async def stop(self, *, grace_s: float = 0.0) -> None:
        """Stop: a round in progress may finish within ``grace_s``, then it is cancelled."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        if grace_s > 0:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout=grace_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run_once(self) -> float | None:
        """One round; an error is logged and counted, never raised. Returns the round's requested wait."""
        try:
            result = await self.fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures += 1
            ERRORS.labels(self.service, self.name).inc()
            log.warning(
                "periodic.failed", task=self.name, error=repr(exc), failures=self.failures, exc_info=exc
            )
            return None
        finally:
            self.rounds += 1
        return float(result) if isinstance(result, int | float) and not isinstance(result, bool) else None

    async def _loop(self) -> None:
        wait = 0.0 if self.run_at_start else self.interval_s
        while not self._stopping:
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                if self._stopping:
                    return
            self._wake.clear()
            requested = await self.run_once()
            wait = self.interval_s if requested is None else max(0.0, min(self.interval_s, requested))


def periodic(
    name: str,
    interval_s: float,
    fn: Callable[[web.Application], Awaitable[object]],
    *,
    run_at_start: bool = False,
    key: web.AppKey[Periodic] | None = None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` running ``fn(app)`` every ``interval_s`` (see ``Periodic``), stopped before the resources
    it uses close (append it after them). ``key``: also store the ``Periodic`` on the app (tests, ``wake()``)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async def round_() -> object:
            return await fn(app)

        task = Periodic(name, interval_s, round_, service=app[SERVICE_NAME], run_at_start=run_at_start)
        if key is not None:
            app[key] = task
        task.start()
        yield
        await task.stop()

    return ctx


def job_worker(
    key: web.AppKey[LeasedJobRunner],
    *,
    kinds: Sequence[str],
    jobs: Callable[[web.Application], tuple[JobHandler, OnFailure]],
    router: Callable[[web.Application, LeasedJobRunner, OnFailure], Router],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A worker's ``cleanup_ctx``: a ``LeasedJobRunner`` for ``kinds`` (the ``JOB_*`` settings, producer = the
    service) running ``jobs(app)``'s handler with its failure hook, and the service queue consumed by
    ``router(app, runner, on_failure)``; the runner is stored under ``key`` and stopped (jobs handed back) on exit."""

    from .service import (  # common.service runs Periodic tasks: imported here, not at the top
        BUS,
        POOL,
        SETTINGS,
    )

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        handler, on_failure = jobs(app)
        runner = LeasedJobRunner.from_settings(
            settings, pool=app[POOL], bus=app[BUS], kinds=kinds, handler=handler, on_failure=on_failure
        )
        app[key] = runner
        await router(app, runner, on_failure).subscribe(app[BUS], queue=settings.queue, pool=app[POOL])
        await runner.start()
        yield
        await runner.stop(timeout_s=max(1.0, settings.shutdown_timeout_s - 5))

    return ctx
