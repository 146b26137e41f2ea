"""Polling helpers: wait for an observable condition instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar, overload

__all__ = ["PeakSampler", "wait_for"]

T = TypeVar("T")


@overload
async def wait_for(
    predicate: Callable[[], Awaitable[T]], timeout: float = ..., *, interval: float = ..., message: str = ...
) -> T: ...
@overload
async def wait_for(
    predicate: Callable[[], T], timeout: float = ..., *, interval: float = ..., message: str = ...
) -> T: ...
async def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    *,
    interval: float = 0.01,
    message: str = "",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy and return that; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"condition not met within {timeout}s: {what} (last value: {value!r})")
        await asyncio.sleep(interval)


class PeakSampler:
    """``async with PeakSampler(measure) as s: ...``: ``s.peak`` is the highest ``measure()`` seen meanwhile, sampled
    every ``interval_s`` (0: at every turn of the event loop), starting from ``start``."""

    def __init__(self, measure: Callable[[], float], *, interval_s: float = 0.0, start: float = 0.0) -> None:
        self.measure, self.interval_s, self.peak = measure, interval_s, start
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.measure())
            await asyncio.sleep(self.interval_s)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
