"""The webhooks' SQL: registered endpoints, their deliveries (one per event and endpoint) and every attempt."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from common.db import inserted
from common.pagination import fetch_newest_first


class WebhookFields(msgspec.Struct, kw_only=True):
    """An endpoint as its owner is shown it (``models.WebhookView``): its record but the owner, secret and update time."""

    id: uuid.UUID
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_success_at: datetime | None
    created_at: datetime


class WebhookRecord(WebhookFields, kw_only=True):
    """A registered webhook endpoint."""

    owner_id: uuid.UUID
    secret: str
    updated_at: datetime


class AttemptRecord(msgspec.Struct, kw_only=True):
    """One HTTP attempt of a delivery (shown as it is: ``models.DeliveryAttemptView``)."""

    attempt: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    next_retry_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class DeliveryRecord:
    """One event to deliver to one endpoint, with its attempts."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    body: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptRecord] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class DueDelivery:
    """A claimed delivery with what the dispatcher needs to send it."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    body: str
    attempts: int
    created_at: datetime
    url: str
    secret: str
    enabled: bool


_WEBHOOK_COLS = (
    "id, owner_id, url, events, secret, enabled, disabled_reason, disabled_at, consecutive_failures,"
    " failing_since, last_success_at, created_at, updated_at"
)
_DELIVERY_COLS = (
    "id, webhook_id, event_id, event_type, body, status, attempts, next_attempt_at, last_status, last_error,"
    " created_at, delivered_at"
)


def _webhook(r: Mapping[str, Any]) -> WebhookRecord:
    return WebhookRecord(**dict(r))


# -- endpoints ------------------------------------------------------------------------------------------------


async def create_webhook(
    conn: asyncpg.Connection,
    *,
    webhook_id: uuid.UUID,
    owner_id: uuid.UUID,
    url: str,
    events: Sequence[str],
    secret: str,
) -> WebhookRecord:
    """Register an endpoint."""
    r = await conn.fetchrow(
        f"INSERT INTO webhooks (id, owner_id, url, events, secret) VALUES ($1, $2, $3, $4, $5)"
        f" RETURNING {_WEBHOOK_COLS}",
        webhook_id,
        owner_id,
        url,
        list(events),
        secret,
    )
    return _webhook(r)


async def count_webhooks(conn: asyncpg.Connection, *, owner_id: uuid.UUID, lock: bool = False) -> int:
    """How many endpoints a user has; ``lock`` serialises a user's concurrent creations until commit."""
    if lock:
        # without it, two concurrent POSTs both count below the cap and both insert
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('webhooks:' || $1::uuid::text))", owner_id)
    n: int = await conn.fetchval("SELECT count(*) FROM webhooks WHERE owner_id = $1", owner_id)
    return n


async def list_webhooks(conn: asyncpg.Connection, *, owner_id: uuid.UUID) -> list[WebhookRecord]:
    """A user's endpoints, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_WEBHOOK_COLS} FROM webhooks WHERE owner_id = $1 ORDER BY created_at, id", owner_id
    )
    return [_webhook(r) for r in rows]


async def get_webhook(
    conn: asyncpg.Connection, *, webhook_id: uuid.UUID, owner_id: uuid.UUID
) -> WebhookRecord | None:
    """An endpoint of this owner, or None."""
    r = await conn.fetchrow(
        f"SELECT {_WEBHOOK_COLS} FROM webhooks WHERE id = $1 AND owner_id = $2", webhook_id, owner_id
    )
    return _webhook(r) if r else None


async def delete_webhook(conn: asyncpg.Connection, *, webhook_id: uuid.UUID, owner_id: uuid.UUID) -> bool:
    """Delete an endpoint and its delivery log; False when this owner has no such endpoint."""
    res: str = await conn.execute(
        "DELETE FROM webhooks WHERE id = $1 AND owner_id = $2", webhook_id, owner_id
    )
    return res.endswith(" 1")


async def enable_webhook(
    conn: asyncpg.Connection, *, webhook_id: uuid.UUID, owner_id: uuid.UUID
) -> WebhookRecord | None:
    """Re-enable a disabled endpoint (its failure streak starts over)."""
    r = await conn.fetchrow(
        "UPDATE webhooks SET enabled = true, disabled_reason = NULL, disabled_at = NULL, consecutive_failures = 0,"
        f" failing_since = NULL, updated_at = now() WHERE id = $1 AND owner_id = $2 RETURNING {_WEBHOOK_COLS}",
        webhook_id,
        owner_id,
    )
    return _webhook(r) if r else None


async def subscribed_webhooks(
    conn: asyncpg.Connection, *, owner_id: uuid.UUID, event_type: str
) -> list[WebhookRecord]:
    """The owner's enabled endpoints subscribed to ``event_type``."""
    rows = await conn.fetch(
        f"SELECT {_WEBHOOK_COLS} FROM webhooks WHERE owner_id = $1 AND enabled AND $2 = ANY(events)",
        owner_id,
        event_type,
    )
    return [_webhook(r) for r in rows]


# -- deliveries -----------------------------------------------------------------------------------------------


async def add_delivery(
    conn: asyncpg.Connection,
    *,
    delivery_id: uuid.UUID,
    webhook_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    body: str,
) -> bool:
    """Queue an event for an endpoint, due now; False when it was already queued (idempotent per event)."""
    return await inserted(
        conn,
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, body, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING true",
        delivery_id,
        webhook_id,
        event_id,
        event_type,
        body,
    )


async def claim_due_deliveries(conn: asyncpg.Connection, *, limit: int, lease_s: float) -> list[DueDelivery]:
    """Lease up to ``limit`` due deliveries to this dispatcher.

    ``FOR UPDATE SKIP LOCKED`` keeps concurrent dispatchers apart; pushing ``next_attempt_at`` out by the lease
    means a dispatcher that dies mid-request hands its deliveries back when the lease runs out.
    """
    rows = await conn.fetch(
        "WITH due AS ("
        "  SELECT d.id FROM webhook_deliveries d"
        "  WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
        "  ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED"
        ") UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => $2)"
        " FROM due, webhooks w WHERE d.id = due.id AND w.id = d.webhook_id"
        " RETURNING d.id, d.webhook_id, d.event_id, d.event_type, d.body, d.attempts, d.created_at,"
        " w.url, w.secret, w.enabled",
        limit,
        lease_s,
    )
    return [DueDelivery(**dict(r)) for r in rows]


async def next_due_in(conn: asyncpg.Connection) -> float | None:
    """Seconds until the next pending delivery is due (≤ 0: now), or None when nothing is pending."""
    v = await conn.fetchval(
        "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM webhook_deliveries WHERE status = 'pending'"
    )
    return float(v) if v is not None else None


async def lock_webhook(conn: asyncpg.Connection, *, webhook_id: uuid.UUID) -> bool:
    """Lock an endpoint's row for this transaction; False when it was deleted.

    Taken before touching its deliveries, so the dispatcher locks in the same order as ``DELETE FROM webhooks``
    (endpoint, then its deliveries by cascade) and the two can never deadlock.
    """
    found = await conn.fetchval("SELECT true FROM webhooks WHERE id = $1 FOR NO KEY UPDATE", webhook_id)
    return bool(found)


async def record_attempt(
    conn: asyncpg.Connection, *, delivery_id: uuid.UUID, attempt: AttemptRecord, outcome: str
) -> None:
    """Log an attempt and move the delivery: ``delivered``, ``pending`` (retry at ``next_retry_at``) or ``failed``."""
    await conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code, latency_ms, error,"
        " next_retry_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id, attempt) DO NOTHING",
        delivery_id,
        *msgspec.structs.astuple(attempt),  # the columns in AttemptRecord's field order
    )
    await conn.execute(
        "UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_at = $4, last_status = $5,"
        " last_error = $6, delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END"
        " WHERE id = $1",
        delivery_id,
        outcome,
        attempt.attempt,
        attempt.next_retry_at,
        attempt.status_code,
        attempt.error,
    )


async def cancel_delivery(conn: asyncpg.Connection, *, delivery_id: uuid.UUID, reason: str) -> None:
    """Stop a delivery without another attempt (its endpoint was disabled)."""
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'canceled', next_attempt_at = NULL, last_error = $2"
        " WHERE id = $1 AND status = 'pending'",
        delivery_id,
        reason,
    )


async def note_endpoint_success(conn: asyncpg.Connection, *, webhook_id: uuid.UUID) -> None:
    """A 2xx: the endpoint's failure streak ends."""
    await conn.execute(
        "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = now(),"
        " updated_at = now() WHERE id = $1",
        webhook_id,
    )


async def note_endpoint_failure(
    conn: asyncpg.Connection, *, webhook_id: uuid.UUID, disable_after_s: float, disable_after_failures: int
) -> WebhookRecord | None:
    """Count a failed attempt; disable the endpoint (and cancel its pending deliveries) once it failed too long.

    Returns the endpoint when this call disabled it.
    """
    r = await conn.fetchrow(
        "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1,"
        " failing_since = coalesce(failing_since, now()), updated_at = now()"
        " WHERE id = $1 AND enabled RETURNING consecutive_failures, failing_since,"
        " extract(epoch FROM now() - failing_since) AS failing_for_s",
        webhook_id,
    )
    if r is None:
        return None
    by_count = disable_after_failures > 0 and r["consecutive_failures"] >= disable_after_failures
    by_time = float(r["failing_for_s"]) >= disable_after_s
    if not (by_count or by_time):
        return None
    reason = (
        f"disabled after {r['consecutive_failures']} consecutive failed attempts"
        if by_count
        else f"disabled after failing continuously since {r['failing_since'].isoformat()}"
    )
    disabled = await conn.fetchrow(
        f"UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_at = now(), updated_at = now()"
        f" WHERE id = $1 RETURNING {_WEBHOOK_COLS}",
        webhook_id,
        reason,
    )
    await conn.execute(
        "UPDATE webhook_deliveries SET status = 'canceled', next_attempt_at = NULL,"
        " last_error = coalesce(last_error || '; ', '') || 'endpoint disabled'"
        " WHERE webhook_id = $1 AND status = 'pending'",
        webhook_id,
    )
    return _webhook(disabled) if disabled else None


async def purge_deliveries(conn: asyncpg.Connection, *, older_than_s: float) -> int:
    """Delete finished deliveries (and their attempts) older than the retention; returns how many."""
    res: str = await conn.execute(
        "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < now() - make_interval(secs => $1)",
        older_than_s,
    )
    return int(res.split()[-1])


async def list_deliveries(
    conn: asyncpg.Connection,
    *,
    webhook_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[DeliveryRecord]:
    """An endpoint's deliveries, newest first, after the keyset position ``before``, each with every attempt."""
    query = f"SELECT {_DELIVERY_COLS} FROM webhook_deliveries WHERE webhook_id = $1"
    rows = await fetch_newest_first(conn, query, webhook_id, limit=limit, after=before)
    return await _with_attempts(conn, rows)


async def redeliver(
    conn: asyncpg.Connection, *, delivery_id: uuid.UUID, webhook_id: uuid.UUID
) -> DeliveryRecord | str:
    """Queue a finished delivery (delivered, failed or canceled) of this endpoint for one more attempt, due now.

    Returns the delivery, or why not: ``not_found``, or ``pending`` (it is already due or in flight: a second
    attempt beside the dispatcher's lease would send it twice). Its attempts are numbered on; the retry window
    still counts from the event, so a redelivery of an old event that fails is not retried again.
    """
    row = await conn.fetchrow(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now()"
        f" WHERE id = $1 AND webhook_id = $2 AND status <> 'pending' RETURNING {_DELIVERY_COLS}",
        delivery_id,
        webhook_id,
    )
    if row is None:
        exists = await conn.fetchval(
            "SELECT true FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2", delivery_id, webhook_id
        )
        return "pending" if exists else "not_found"
    (delivery,) = await _with_attempts(conn, [row])
    return delivery


async def _with_attempts(conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> list[DeliveryRecord]:
    """Delivery rows as records, each with its attempts."""
    ids = [r["id"] for r in rows]
    attempts: dict[uuid.UUID, list[AttemptRecord]] = {i: [] for i in ids}
    if ids:
        for a in await conn.fetch(
            "SELECT delivery_id, attempt, started_at, status_code, latency_ms, error, next_retry_at"
            " FROM webhook_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY delivery_id, attempt",
            ids,
        ):
            d = dict(a)
            attempts[d.pop("delivery_id")].append(AttemptRecord(**d))
    return [DeliveryRecord(**dict(r), attempt_log=attempts[r["id"]]) for r in rows]
