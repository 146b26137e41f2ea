"""The paying side of the credits saga (ARCHITECTURE §5), written once for every paid service.

A paid request calls ``request_paid_job`` in its own transaction: the job is created ``queued`` with stage
``awaiting_credits``, with its ``credit_holds`` row and ``credits.hold_requested.v1`` in the outbox. The job runner
never claims it until billing's ``credits.hold_granted.v1`` marks the hold granted (``claim_job`` reads the row);
the grant wakes the runners at once. ``credits.hold_rejected.v1`` fails the job with billing's code
(``credits.insufficient``) without running it; a hold that billing releases by expiry before the job ends fails it
with ``credits.hold_expired``.

The settle is not sent by this module's callers: ``common.jobs.update_job`` writes ``credits.settle_requested.v1``
in the transaction that ends a paid job (``common.credit_holds.settle_ended_job``), guarded by the hold row's
transition, so it goes out exactly once whoever ends the job and whenever the worker dies. A success captures what
the job reported with ``record_usage`` (at most the hold), or the whole hold if it reported nothing; a failure or a
cancel captures 0. The handlers below are plain transactional functions ``(conn, event, delivery)`` that run
inside the caller's inbox transaction (``credits_router(on_failure=)``); each ignores a hold_ref that is not this schema's
(every paid service's queue receives every ``credits.*`` answer) and every duplicate or late answer.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from enum import StrEnum
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from . import credit_holds, outbox
from .bus.base import Delivery
from .bus.router import Router
from .credit_holds import CreditHold, HoldStatus
from .events.billing import (
    CreditsCaptured,
    CreditsHoldGranted,
    CreditsHoldRejected,
    CreditsHoldRequested,
    CreditsReleased,
)
from .events.jobs import JobSubject
from .http import Problem
from .jobrunner import JobContext, JobHandler, LeasedJobRunner, OnFailure, channel_for
from .jobs import Job, JobFailure, JobStatus, create_job, get_job, update_job
from .logging import get_logger
from .openapi import Api, add_api
from .runtime import JOB_RUNNER, job_worker
from .service import HTTP_CLIENT, SETTINGS, build_app
from .settings import ServiceSettings

log = get_logger(__name__)

__all__ = [
    "AWAITING_CREDITS",
    "FUNDED",
    "PRICES",
    "CreditCode",
    "CreditHold",
    "HoldStatus",
    "PriceList",
    "PricesUnavailable",
    "UnknownPrice",
    "build_paid_app",
    "credits_router",
    "get_hold",
    "on_captured",
    "on_hold_granted",
    "on_hold_rejected",
    "on_released",
    "price_list",
    "record_usage",
    "request_paid_job",
    "use_credits",
]

#: the stage of a paid job until billing answers its hold
AWAITING_CREDITS = "awaiting_credits"
#: the stage of a paid job whose hold was granted, until a runner claims it
FUNDED = "funded"


class CreditCode(StrEnum):
    """Error codes of the paying side (a rejected hold fails its job with billing's own code instead)."""

    INSUFFICIENT = "credits.insufficient"  # billing's usual rejection, listed for callers that test for it
    HOLD_EXPIRED = "credits.hold_expired"
    PRICES_UNAVAILABLE = "credits.prices_unavailable"
    UNKNOWN_PRICE = "credits.unknown_price"


# -- requesting ------------------------------------------------------------------------------------------------


async def request_paid_job(
    conn: asyncpg.Connection,
    *,
    kind: str,
    owner_id: uuid.UUID,
    params: Mapping[str, Any],
    amount: int,
    reason: str,
    producer: str,
    ttl_s: int = 3600,
    account_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
    correlation_id: str = "",
    subject: JobSubject | None = None,
) -> Job:
    """Create a paid job awaiting its credits and ask billing to hold ``amount``, in the caller's transaction.

    ``account_id`` defaults to the owner (an account id is its user id). ``ttl_s`` is how long billing keeps the
    hold: make it cover the wait in the queue and the run (a job whose hold expires first fails). The hold_ref is
    ``<producer>:<job id>``.
    """
    if amount <= 0:
        raise ValueError("a paid job must cost a positive number of credits")
    job = await create_job(
        conn,
        kind=kind,
        owner_id=owner_id,
        producer=producer,
        params=params,
        stage=AWAITING_CREDITS,
        job_id=job_id,
        correlation_id=correlation_id,
        subject=subject,
    )
    hold = await credit_holds.insert(
        conn,
        job_id=job.id,
        hold_ref=f"{producer}:{job.id}",
        account_id=account_id or owner_id,
        producer=producer,
        amount=amount,
        reason=reason,
    )
    await outbox.add(
        conn,
        CreditsHoldRequested(
            hold_ref=hold.hold_ref,
            account_id=hold.account_id,
            amount=amount,
            reason=reason,
            ttl_s=ttl_s,
            producer=producer,
            correlation_id=correlation_id or str(job.id),
        ),
    )
    return job


async def record_usage(conn: asyncpg.Connection, *, job_id: uuid.UUID, used: int) -> None:
    """Record what a paid job used, in a transaction of your own (e.g. the one that writes the job's result)."""
    await credit_holds.record_usage(conn, job_id=job_id, used=used)


async def use_credits(ctx: JobContext, used: int) -> None:
    """From a job function: the job used ``used`` credits (0 ≤ used ≤ its hold); its success captures that much.

    Lease-checked. Call it again to correct it; a job that never calls it captures its whole hold on success.
    """
    async with ctx.transaction() as conn:
        await credit_holds.record_usage(conn, job_id=ctx.job.id, used=used)


async def get_hold(conn: asyncpg.Connection, job_id: uuid.UUID) -> CreditHold | None:
    """The credit hold of a job (None for a job that is not paid)."""
    return await credit_holds.get(conn, job_id=job_id)


# -- billing's answers (run inside the caller's inbox transaction) -----------------------------------------------


async def _transition(
    conn: asyncpg.Connection,
    event: CreditsHoldGranted | CreditsHoldRejected | CreditsCaptured | CreditsReleased,
    *,
    to: HoldStatus,
    allowed_from: Collection[HoldStatus],
    captured: int | None = None,
    code: str | None = None,
) -> tuple[CreditHold, Job] | None:
    """Apply billing's answer to this schema's hold: ``(hold before, job)``, or None when nothing changed.

    Locks in ``update_job``'s order (job, then hold). None for another service's hold (every paid service hears
    every answer), an answer naming another account, and a duplicate or late answer (its transition is not allowed).
    """
    job_id = await conn.fetchval("SELECT job_id FROM credit_holds WHERE hold_ref = $1", event.hold_ref)
    if job_id is None:
        return None
    job = await get_job(conn, job_id, for_update=True)
    hold = await credit_holds.get(conn, hold_ref=event.hold_ref, for_update=True)
    if job is None or hold is None:
        return None
    if hold.account_id != event.account_id:
        log.warning(
            "credits.answer_account_mismatch", hold_ref=hold.hold_ref, account_id=str(event.account_id)
        )
        return None
    changed = await credit_holds.transition(
        conn, hold_ref=hold.hold_ref, to=to, allowed_from=allowed_from, captured=captured, code=code
    )
    if changed is None:
        log.debug("credits.answer_ignored", type=event.type, hold_ref=hold.hold_ref, status=str(hold.status))
        return None
    return hold, job


async def _fail_waiting_job(
    conn: asyncpg.Connection,
    job: Job,
    failure: JobFailure,
    *,
    producer: str,
    correlation_id: str,
    on_failure: OnFailure | None,
) -> None:
    """Fail a job that has not ended, with the service's ``on_failure`` consequences; a running job's work is
    also told to stop (its worker's cancel signal)."""
    if job.terminal:
        return
    if job.status == JobStatus.RUNNING:
        await conn.execute("UPDATE jobs SET cancel_requested = true WHERE id = $1", job.id)
    failed = await update_job(
        conn,
        job.id,
        producer=producer,
        status=JobStatus.FAILED,
        stage="failed",
        error=failure,
        correlation_id=correlation_id,
    )
    if on_failure is not None:
        await on_failure(conn, failed, failure)


async def on_hold_granted(conn: asyncpg.Connection, event: CreditsHoldGranted, delivery: Delivery) -> None:
    """The hold is placed: the job becomes claimable now, and the runners are woken.

    A grant for a job that ended first (canceled while awaiting) changes nothing here: its settle of 0 is
    already on its way, and billing releases the hold with it.
    """
    done = await _transition(conn, event, to=HoldStatus.GRANTED, allowed_from={HoldStatus.REQUESTED})
    if done is None:
        return
    hold, job = done
    if job.status != JobStatus.QUEUED or job.stage != AWAITING_CREDITS:
        return
    job = await update_job(conn, job.id, producer=hold.producer, stage=FUNDED, emit=False)
    await outbox.add(conn, job.to_event(producer=hold.producer, correlation_id=event.correlation_id))
    schema = await conn.fetchval("SELECT current_schema()")
    await conn.execute("SELECT pg_notify($1, $2)", channel_for(schema), f"queued {job.kind}")


async def on_hold_rejected(
    conn: asyncpg.Connection,
    event: CreditsHoldRejected,
    delivery: Delivery,
    *,
    on_failure: OnFailure | None = None,
) -> None:
    """Billing refused the hold: the job fails with billing's code, without running."""
    done = await _transition(
        conn,
        event,
        to=HoldStatus.REJECTED,
        allowed_from={HoldStatus.REQUESTED, HoldStatus.SETTLING},
        code=event.code,
    )
    if done is None:
        return
    hold, job = done
    await _fail_waiting_job(
        conn,
        job,
        JobFailure(event.code, event.message or "billing refused to hold the credits for this job"),
        producer=hold.producer,
        correlation_id=event.correlation_id,
        on_failure=on_failure,
    )


async def on_captured(conn: asyncpg.Connection, event: CreditsCaptured, delivery: Delivery) -> None:
    """Billing captured the settle's amount (its release of the rest may come before or after)."""
    await _transition(
        conn,
        event,
        to=HoldStatus.CAPTURED,
        allowed_from={HoldStatus.SETTLING, HoldStatus.RELEASED},
        captured=event.amount,
    )


async def on_released(
    conn: asyncpg.Connection,
    event: CreditsReleased,
    delivery: Delivery,
    *,
    on_failure: OnFailure | None = None,
) -> None:
    """Billing released (the rest of) a hold: after a settle, or by expiry (which fails a job not ended yet)."""
    if event.reason != "expired":
        await _transition(conn, event, to=HoldStatus.RELEASED, allowed_from={HoldStatus.SETTLING})
        return
    done = await _transition(
        conn,
        event,
        to=HoldStatus.EXPIRED,
        allowed_from={HoldStatus.REQUESTED, HoldStatus.GRANTED, HoldStatus.SETTLING},
    )
    if done is None:
        return
    hold, job = done
    if hold.status == HoldStatus.SETTLING:
        # the hold expired before billing saw the settle: billing captures nothing after expiry
        log.warning("credits.expired_before_settle", hold_ref=hold.hold_ref, capture=hold.capture)
        return
    await _fail_waiting_job(
        conn,
        job,
        JobFailure(
            CreditCode.HOLD_EXPIRED, "the credit hold expired before the job ended; nothing was charged"
        ),
        producer=hold.producer,
        correlation_id=event.correlation_id,
        on_failure=on_failure,
    )


def credits_router(*, on_failure: OnFailure | None = None) -> Router:
    """Billing's answers with their transactional handlers: ``router.include(credits_router(...))`` in a paid service.

    ``on_failure``: the hook the service gives its job runner (``(conn, job, failure)``: a ``*.failed`` event, a
    row in ``error``); it also runs when a rejection or an expiry fails a job, in that transaction.
    """
    r = Router()

    @r.on(CreditsHoldRejected)
    async def rejected(conn: asyncpg.Connection, event: CreditsHoldRejected, delivery: Delivery) -> None:
        await on_hold_rejected(conn, event, delivery, on_failure=on_failure)

    @r.on(CreditsReleased)
    async def released(conn: asyncpg.Connection, event: CreditsReleased, delivery: Delivery) -> None:
        await on_released(conn, event, delivery, on_failure=on_failure)

    r.add(CreditsHoldGranted, on_hold_granted)
    r.add(CreditsCaptured, on_captured)
    return r


# -- prices ------------------------------------------------------------------------------------------------------


class PricesUnavailable(Problem):
    """Billing's price list cannot be read now: a paid request cannot be priced (503, retry later)."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, CreditCode.PRICES_UNAVAILABLE, detail, headers={"Retry-After": "5"})


class UnknownPrice(Problem):
    """Billing's price list has no such price: a deployment error, not a user's."""

    def __init__(self, name: str) -> None:
        super().__init__(503, CreditCode.UNKNOWN_PRICE, f"billing has no price named {name!r}")


class PriceList:
    """Billing's price list (``GET /api/v1/billing/prices``), fetched over HTTP and cached for ``ttl_s``.

    Prices are never hard-coded in a paid service: billing's ``PRICES`` setting is the one place they are set.
    When billing cannot be reached and the cache is older than ``ttl_s``, ``PricesUnavailable`` (503) is raised:
    a request is never priced from a guess.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        billing_url: str,
        *,
        ttl_s: float = 60.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.session, self.url = session, billing_url.rstrip("/") + "/api/v1/billing/prices"
        self.ttl_s, self.timeout_s = ttl_s, timeout_s
        self._prices: dict[str, int] = {}
        self._fetched_at = -math.inf
        self._lock = asyncio.Lock()

    async def prices(self) -> dict[str, int]:
        """Every price, in credits per unit (cached)."""
        if time.monotonic() - self._fetched_at < self.ttl_s:
            return self._prices
        async with self._lock:
            if time.monotonic() - self._fetched_at >= self.ttl_s:
                self._prices = await self._fetch()
                self._fetched_at = time.monotonic()
        return self._prices

    async def _fetch(self) -> dict[str, int]:
        try:
            async with self.session.get(
                self.url, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            ) as resp:
                if resp.status != 200:
                    raise PricesUnavailable(f"billing answered {resp.status} for its price list")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("credits.prices_unreachable", url=self.url, error=repr(exc))
            raise PricesUnavailable("billing's price list cannot be read now; try again shortly") from exc
        prices = body.get("prices") if isinstance(body, dict) else None
        if not isinstance(prices, dict) or not all(isinstance(v, int) for v in prices.values()):
            raise PricesUnavailable("billing's price list is malformed")
        return {str(k): int(v) for k, v in prices.items()}

    async def price(self, name: str) -> int:
        """The price of one unit of ``name`` (e.g. ``captions_per_minute``), in credits."""
        prices = await self.prices()
        if name not in prices:
            raise UnknownPrice(name)
        return prices[name]

    async def cost(self, name: str, units: float = 1.0) -> int:
        """What ``units`` of ``name`` cost: billing's units are started ones, so ``units`` rounds up (at least 1)."""
        return await self.price(name) * max(1, math.ceil(units))


#: where a paid service's api app keeps billing's price list (``price_list``; a request reads ``app[PRICES]``)
PRICES: web.AppKey[PriceList] = web.AppKey("prices", PriceList)


def price_list(key: web.AppKey[PriceList] = PRICES) -> Callable[[web.Application], AsyncIterator[None]]:
    """A paid service's ``cleanup_ctx`` (api role): billing's price list at ``BILLING_URL``, read at most every
    ``PRICE_CACHE_S``, stored under ``key``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        app[key] = PriceList(app[HTTP_CLIENT], settings.billing_url, ttl_s=settings.price_cache_s)
        yield

    return ctx


def build_paid_app(
    settings: ServiceSettings,
    *,
    role: str,
    api: Api,
    kinds: Iterable[str],
    jobs: Callable[[web.Application], tuple[JobHandler, OnFailure]],
    router: Callable[[web.Application, LeasedJobRunner, OnFailure], Router],
    **overrides: Any,
) -> web.Application:
    """A paid service's app (``build_app``): the api role serves ``api`` with billing's price list under ``PRICES``;
    the worker role runs the jobs of ``kinds`` (a ``StrEnum``'s values will do) under ``JOB_RUNNER`` and consumes
    the service queue (``job_worker``)."""
    app = build_app(settings, role=role, **overrides)
    if role == "api":
        add_api(app, api)
        app.cleanup_ctx.append(price_list())
    else:
        worker = job_worker(JOB_RUNNER, kinds=[str(k) for k in kinds], jobs=jobs, router=router)
        app.cleanup_ctx.append(worker)
    return app
