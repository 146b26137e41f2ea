"""What a process depends on and whether each dependency answers: readiness, degradation, outages.

Every dependency (Postgres, RabbitMQ, storage, the gateway's Redis) has a check, and is either *critical* (the
process cannot serve without it: ``/readyz`` answers 503 while it is down) or not (the process serves in a degraded
way: the outbox buffers events while RabbitMQ is away, the rate limiter falls back to in-process counting while Redis
is). Its state is fed by the checks (``/readyz``, and a probe every ``health_probe_interval_s``, every second while
something is down) and by the requests that find it down (``mark_down``). A change of state is logged once
(``dependency.down`` when an outage starts, ``dependency.up`` with its duration when it ends, not per request or
per probe) and shown in metrics: ``reelforge_dependency_up{service, dependency}`` (1/0),
``reelforge_dependency_outages_total`` and ``reelforge_dependency_unavailable_total`` (answers refused with 503
because of it).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .logging import get_logger
from .metrics import DEPENDENCY_OUTAGES, DEPENDENCY_UNAVAILABLE, DEPENDENCY_UP

log = get_logger(__name__)

Check = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 3.0
#: ``scheme://user:password@`` in a URL (a DSN inside an error message): the password is never logged
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]*@")


def describe(exc: BaseException) -> str:
    """An error for the log: its type and message, a URL's password masked, at most 500 characters."""
    return _URL_PASSWORD.sub(r"\1***@", f"{type(exc).__name__}: {exc}")[:500]


@dataclass
class _State:
    check: Check
    critical: bool
    down_since: float | None = None  # monotonic
    down_at: datetime | None = None
    error: str = ""  # the error's type: what a public answer may say
    outages: int = 0


class Dependencies:
    """The dependencies of one process and their state (one per app, ``common.http.DEPENDENCIES``)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._deps: dict[str, _State] = {}

    def add(self, name: str, check: Check, *, critical: bool = True) -> None:
        """Register ``name``'s check; ``critical``: the process cannot serve while it fails."""
        self._deps[name] = _State(check=check, critical=critical)
        DEPENDENCY_UP.labels(self.service, name).set(1)

    @property
    def names(self) -> list[str]:
        """The registered dependencies."""
        return list(self._deps)

    def is_down(self, name: str) -> bool:
        """Whether ``name`` is known to be down."""
        state = self._deps.get(name)
        return state is not None and state.down_since is not None

    @property
    def any_down(self) -> bool:
        """Whether some dependency is down."""
        return any(s.down_since is not None for s in self._deps.values())

    def mark_down(self, name: str, exc: BaseException) -> None:
        """``name`` failed (a check, or a request that used it): an outage starts unless one is under way."""
        state = self._deps.get(name)
        if state is None:  # a dependency nobody registered a check for: the next probe round ends the outage
            state = self._deps[name] = _State(check=_unchecked, critical=False)
        if state.down_since is not None:
            return
        state.down_since, state.down_at = time.monotonic(), datetime.now(UTC)
        state.error, state.outages = type(exc).__name__, state.outages + 1
        DEPENDENCY_UP.labels(self.service, name).set(0)
        DEPENDENCY_OUTAGES.labels(self.service, name).inc()
        log.warning("dependency.down", dependency=name, critical=state.critical, error=describe(exc))

    def mark_up(self, name: str) -> None:
        """``name`` answers: an outage under way ends."""
        state = self._deps.get(name)
        if state is None or state.down_since is None:
            return
        lasted = time.monotonic() - state.down_since
        state.down_since, state.down_at, state.error = None, None, ""
        DEPENDENCY_UP.labels(self.service, name).set(1)
        log.info("dependency.up", dependency=name, outage_s=round(lasted, 3))

    def count_refusal(self, name: str) -> None:
        """A request was answered 503 because ``name`` is down."""
        DEPENDENCY_UNAVAILABLE.labels(self.service, name).inc()

    async def check_all(self) -> dict[str, bool]:
        """Run every check (at most ``CHECK_TIMEOUT_S`` each, concurrently) and record the outcome."""

        async def run(name: str, state: _State) -> bool:
            try:
                await asyncio.wait_for(state.check(), timeout=CHECK_TIMEOUT_S)
            except Exception as exc:
                self.mark_down(name, exc)
                return False
            self.mark_up(name)
            return True

        names = list(self._deps)
        results = await asyncio.gather(*(run(n, self._deps[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def probe(self) -> float | None:
        """One probe round (``common.runtime.Periodic``): every second while something is down."""
        await self.check_all()
        return 1.0 if self.any_down else None

    def ready(self) -> bool:
        """No critical dependency is down."""
        return not any(s.critical and s.down_since is not None for s in self._deps.values())

    def summary(self) -> dict[str, str]:
        """``{name: "ok" | "error: <type>"}`` (no host, port or credentials: ``/readyz`` may be public)."""
        return {n: "ok" if s.down_since is None else f"error: {s.error}" for n, s in self._deps.items()}

    def detail(self) -> dict[str, dict[str, Any]]:
        """Per dependency: ``status`` (up/down), ``critical``, ``down_since`` (ISO time), ``error``, ``outages``."""
        return {
            n: {
                "status": "up" if s.down_since is None else "down",
                "critical": s.critical,
                "down_since": s.down_at.isoformat() if s.down_at else None,
                "error": s.error or None,
                "outages": s.outages,
            }
            for n, s in self._deps.items()
        }


async def _unchecked() -> None:
    return None
