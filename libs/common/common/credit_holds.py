"""The ``credit_holds`` table (``sql/0003_credit_holds.sql``): one row per paid job, and the settle its end sends.

This module is the SQL under ``common.credits`` and the hook ``common.jobs.update_job`` calls when a job ends, so
that the ``credits.settle_requested.v1`` of a paid job is written in the very transaction that ends the job,
guarded by the row's ``requested|granted → settling`` transition: whoever ends the job (the runner's final
transaction, a handler's own, a cancel, the attempts cap) sends the settle, and only the first end can.
It imports nothing of ``common.jobs`` (which imports it).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum

import asyncpg
import msgspec

from . import outbox
from .events.billing import CreditsSettleRequested
from .logging import get_logger

log = get_logger(__name__)


class HoldStatus(StrEnum):
    """Where a paid job's hold is, as this service knows it (billing's own ``holds`` row is the truth of money)."""

    REQUESTED = "requested"  # credits.hold_requested is in the outbox; no answer yet
    GRANTED = "granted"  # billing reserved the credits: the job may run
    REJECTED = "rejected"  # billing refused (its code in ``code``): the job failed without running
    EXPIRED = "expired"  # billing released the hold by itself before the job ended
    SETTLING = "settling"  # the job ended: credits.settle_requested {capture} is in the outbox
    CAPTURED = "captured"  # billing captured ``captured`` credits (and released the rest)
    RELEASED = "released"  # billing released the whole hold (the job failed or was canceled)


#: statuses in which the hold still awaits its settle
OPEN = frozenset({HoldStatus.REQUESTED, HoldStatus.GRANTED})


class CreditHold(msgspec.Struct, kw_only=True):
    """A row of ``credit_holds``."""

    job_id: uuid.UUID
    hold_ref: str
    account_id: uuid.UUID
    producer: str
    amount: int
    reason: str
    status: HoldStatus
    used: int | None
    capture: int | None
    captured: int
    code: str | None
    created_at: datetime
    updated_at: datetime


_COLS = "job_id, hold_ref, account_id, producer, amount, reason, status, used, capture, captured, code, created_at, updated_at"


async def insert(
    conn: asyncpg.Connection,
    *,
    job_id: uuid.UUID,
    hold_ref: str,
    account_id: uuid.UUID,
    producer: str,
    amount: int,
    reason: str,
) -> CreditHold:
    """The ``requested`` hold of a new paid job."""
    r = await conn.fetchrow(
        "INSERT INTO credit_holds (job_id, hold_ref, account_id, producer, amount, reason)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLS}",
        job_id,
        hold_ref,
        account_id,
        producer,
        amount,
        reason,
    )
    return msgspec.convert(dict(r), CreditHold)


async def get(
    conn: asyncpg.Connection,
    *,
    job_id: uuid.UUID | None = None,
    hold_ref: str | None = None,
    for_update: bool = False,
) -> CreditHold | None:
    """A hold by its job or its ref (optionally locked: lock the job row first, as ``update_job`` does)."""
    if (job_id is None) == (hold_ref is None):
        raise ValueError("give exactly one of job_id and hold_ref")
    where, arg = ("job_id = $1", job_id) if job_id is not None else ("hold_ref = $1", hold_ref)
    r = await conn.fetchrow(
        f"SELECT {_COLS} FROM credit_holds WHERE {where}" + (" FOR UPDATE" if for_update else ""), arg
    )
    return msgspec.convert(dict(r), CreditHold) if r else None


async def transition(
    conn: asyncpg.Connection,
    *,
    hold_ref: str,
    to: HoldStatus,
    allowed_from: Collection[HoldStatus],
    captured: int | None = None,
    code: str | None = None,
) -> CreditHold | None:
    """Move the hold to ``to`` if it is in one of ``allowed_from``; the row after, or None (nothing changed)."""
    r = await conn.fetchrow(
        "UPDATE credit_holds SET status = $2, captured = coalesce($4, captured), code = coalesce($5, code),"
        f" updated_at = now() WHERE hold_ref = $1 AND status = ANY($3::text[]) RETURNING {_COLS}",
        hold_ref,
        str(to),
        [str(s) for s in allowed_from],
        captured,
        code,
    )
    return msgspec.convert(dict(r), CreditHold) if r else None


async def record_usage(conn: asyncpg.Connection, *, job_id: uuid.UUID, used: int) -> None:
    """Record what a paid job used (0 ≤ used ≤ its hold); its success settles with this instead of the hold."""
    row = await conn.fetchrow("SELECT amount FROM credit_holds WHERE job_id = $1", job_id)
    if row is None:
        raise ValueError(f"job {job_id} is not a paid job (no credit hold)")
    if not 0 <= used <= row["amount"]:
        raise ValueError(f"job {job_id} cannot use {used} credits of a hold of {row['amount']}")
    await conn.execute(
        "UPDATE credit_holds SET used = $2, updated_at = now() WHERE job_id = $1", job_id, used
    )


async def settle_ended_job(
    conn: asyncpg.Connection,
    *,
    job_id: uuid.UUID,
    succeeded: bool,
    producer: str,
    correlation_id: str = "",
) -> CreditsSettleRequested | None:
    """Write the settle of a paid job that is ending in this transaction; None when there is none to send.

    Exactly once: only the ``requested|granted → settling`` transition writes it. A success captures what the job
    reported using (``record_usage``), else its whole hold; any other end captures 0. A job canceled before
    billing answered settles with 0 at once: billing keeps a settle that comes before its hold and applies it
    when the hold arrives (the late grant is released at once).
    """
    r = await conn.fetchrow(
        "UPDATE credit_holds SET status = 'settling',"
        " capture = CASE WHEN $2 AND status = 'granted' THEN coalesce(used, amount) ELSE 0 END,"
        " updated_at = now() WHERE job_id = $1 AND status IN ('requested', 'granted')"
        " RETURNING hold_ref, account_id, capture",
        job_id,
        succeeded,
    )
    if r is None:
        return None
    event = CreditsSettleRequested(
        hold_ref=r["hold_ref"],
        account_id=r["account_id"],
        capture=r["capture"],
        producer=producer,
        correlation_id=correlation_id or str(job_id),
    )
    await outbox.add(conn, event)
    log.info("credits.settle_requested", hold_ref=event.hold_ref, capture=event.capture)
    return event
