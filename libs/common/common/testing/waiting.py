"""Polling helpers: wait for an observable condition instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

__all__ = ["wait_for"]

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
