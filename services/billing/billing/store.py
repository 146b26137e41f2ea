"""The only module with SQL: accounts, ledger entries, holds, orders and payments of the billing schema.

Lock order, everywhere: a hold row first, then its account row. Every change of ``accounts.balance``
is one statement together with the ledger entry that explains it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from common.db import inserted

from .models import Account, Entry, Hold, Order

Conn: TypeAlias = asyncpg.Connection
UniqueViolation = asyncpg.UniqueViolationError

_ENTRY_COLS = "seq, id, account_id, kind, amount, balance_after, reference, memo, created_at"
_HOLD_COLS = (
    "hold_ref, account_id, amount, status, reason, reject_code, captured, refunded, settle_capture,"
    " expires_at, created_at, settled_at"
)
_ORDER_COLS = "order_id, account_id, credits, price, currency, status, payment_key, created_at, paid_at"


async def _row(conn: Conn, table: str, columns: str, key: str, value: Any, *, for_update: bool) -> Any:
    """The row of ``table`` whose ``key`` is ``value`` (None when there is none), optionally row-locked."""
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT {columns} FROM {table} WHERE {key} = $1{lock}", value)


def _found(r: Any, missing: str) -> Any:
    """The row a statement returned; ``LookupError(missing)`` when it returned none."""
    if r is None:
        raise LookupError(missing)
    return r


def _account(r: Mapping[str, Any]) -> Account:
    return Account(id=r["id"], balance=r["balance"], held=r["held"], email=r["email"])


def _entry(r: Mapping[str, Any]) -> Entry:
    return Entry(**dict(r))


def _hold(r: Mapping[str, Any]) -> Hold:
    return Hold(**dict(r))


def _order(r: Mapping[str, Any]) -> Order:
    return Order(**dict(r))


# --- accounts and ledger ------------------------------------------------------------------------------


async def ensure_account(conn: Conn, *, account_id: uuid.UUID, email: str = "") -> bool:
    """Create the account with a zero balance unless it exists; True when it was created."""
    return await inserted(
        conn,
        "INSERT INTO accounts (id, email) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING true",
        account_id,
        email,
    )


async def get_account(conn: Conn, *, account_id: uuid.UUID, for_update: bool = False) -> Account | None:
    """The account, optionally row-locked until the end of the transaction."""
    lock = " FOR UPDATE" if for_update else ""
    r = await conn.fetchrow(f"SELECT id, email, balance, held FROM accounts WHERE id = $1{lock}", account_id)
    return _account(r) if r else None


async def find_entry(conn: Conn, *, account_id: uuid.UUID, kind: str, reference: str) -> Entry | None:
    """The entry posted under this idempotency key, if any."""
    r = await conn.fetchrow(
        f"SELECT {_ENTRY_COLS} FROM ledger_entries WHERE account_id = $1 AND kind = $2 AND reference = $3",
        account_id,
        kind,
        reference,
    )
    return _entry(r) if r else None


async def post_entry(
    conn: Conn,
    *,
    account_id: uuid.UUID,
    kind: str,
    amount: int,
    reference: str,
    memo: str = "",
    release: int = 0,
) -> Entry:
    """Move the balance by ``amount`` (and lower ``held`` by ``release``) and write the entry, in one statement.

    The account's CHECK constraints refuse a negative balance or holds beyond it; the unique
    (account, kind, reference) index refuses a second posting of the same thing.
    """
    r = await conn.fetchrow(
        "WITH a AS ("
        "  UPDATE accounts SET balance = balance + $3, held = held - $6, updated_at = now()"
        "  WHERE id = $2 RETURNING balance)"
        " INSERT INTO ledger_entries (id, account_id, kind, amount, balance_after, reference, memo)"
        f" SELECT $1, $2, $4, $3, a.balance, $5, $7 FROM a RETURNING {_ENTRY_COLS}",
        uuid.uuid4(),
        account_id,
        amount,
        kind,
        reference,
        release,
        memo,
    )
    return _entry(_found(r, f"no account {account_id}"))


async def reserve(conn: Conn, *, account_id: uuid.UUID, amount: int) -> Account | None:
    """Add ``amount`` to ``held`` only if that many credits are available: None otherwise.

    One conditional UPDATE: the row lock serialises concurrent holds, and each re-checks the
    condition against the committed row, so two holds can never spend the same credit.
    """
    r = await conn.fetchrow(
        "UPDATE accounts SET held = held + $2, updated_at = now()"
        " WHERE id = $1 AND balance - held >= $2 RETURNING id, email, balance, held",
        account_id,
        amount,
    )
    return _account(r) if r else None


async def release(conn: Conn, *, account_id: uuid.UUID, amount: int) -> Account:
    """Lower ``held`` by ``amount`` (a hold's credits are free again)."""
    r = await conn.fetchrow(
        "UPDATE accounts SET held = held - $2, updated_at = now() WHERE id = $1 RETURNING id, email, balance, held",
        account_id,
        amount,
    )
    return _account(_found(r, f"no account {account_id}"))


async def ledger_page(
    conn: Conn, *, account_id: uuid.UUID, before_seq: int | None, limit: int
) -> list[Entry]:
    """Entries newest first, strictly older than ``before_seq`` when given."""
    rows = await conn.fetch(
        f"SELECT {_ENTRY_COLS} FROM ledger_entries WHERE account_id = $1 AND ($2::bigint IS NULL OR seq < $2)"
        " ORDER BY seq DESC LIMIT $3",
        account_id,
        before_seq,
        limit,
    )
    return [_entry(r) for r in rows]


# --- holds --------------------------------------------------------------------------------------------


async def insert_hold(
    conn: Conn,
    *,
    hold_ref: str,
    account_id: uuid.UUID,
    amount: int,
    reason: str,
    expires_at: datetime,
) -> bool:
    """Claim ``hold_ref`` as a new hold (status ``held``); False when the ref already has a row.

    A concurrent claim of the same ref waits on the primary key until the first commits.
    """
    return await inserted(
        conn,
        "INSERT INTO holds (hold_ref, account_id, amount, status, reason, expires_at)"
        " VALUES ($1, $2, $3, 'held', $4, $5) ON CONFLICT (hold_ref) DO NOTHING RETURNING true",
        hold_ref,
        account_id,
        amount,
        reason,
        expires_at,
    )


async def insert_settle_first(conn: Conn, *, hold_ref: str, account_id: uuid.UUID, capture: int) -> bool:
    """Record a settle whose hold has not arrived (status ``awaiting_hold``); False when the ref has a row."""
    return await inserted(
        conn,
        "INSERT INTO holds (hold_ref, account_id, status, settle_capture, settled_at)"
        " VALUES ($1, $2, 'awaiting_hold', $3, now()) ON CONFLICT (hold_ref) DO NOTHING RETURNING true",
        hold_ref,
        account_id,
        capture,
    )


async def get_hold(conn: Conn, *, hold_ref: str, for_update: bool = False) -> Hold | None:
    """The hold, optionally row-locked."""
    r = await _row(conn, "holds", _HOLD_COLS, "hold_ref", hold_ref, for_update=for_update)
    return _hold(r) if r else None


async def set_hold(
    conn: Conn,
    *,
    hold_ref: str,
    status: str,
    amount: int | None = None,
    reason: str | None = None,
    expires_at: datetime | None = None,
    captured: int | None = None,
    reject_code: str | None = None,
    settle_capture: int | None = None,
    settled: bool = False,
) -> Hold:
    """Move a hold to ``status``, setting the given fields (None keeps a field as it is)."""
    r = await conn.fetchrow(
        "UPDATE holds SET status = $2, amount = coalesce($3, amount), reason = coalesce($4, reason),"
        " expires_at = coalesce($5, expires_at), captured = coalesce($6, captured),"
        " reject_code = coalesce($7, reject_code), settle_capture = coalesce($8, settle_capture),"
        f" settled_at = CASE WHEN $9 THEN now() ELSE settled_at END WHERE hold_ref = $1 RETURNING {_HOLD_COLS}",
        hold_ref,
        status,
        amount,
        reason,
        expires_at,
        captured,
        reject_code,
        settle_capture,
        settled,
    )
    return _hold(_found(r, f"no hold {hold_ref!r}"))


async def add_refunded(conn: Conn, *, hold_ref: str, amount: int) -> Hold:
    """Count ``amount`` more credits of a captured hold as refunded (the CHECK keeps it ≤ captured)."""
    r = await conn.fetchrow(
        f"UPDATE holds SET refunded = refunded + $2 WHERE hold_ref = $1 RETURNING {_HOLD_COLS}",
        hold_ref,
        amount,
    )
    return _hold(_found(r, f"no hold {hold_ref!r}"))


async def due_holds(conn: Conn, *, now: datetime, limit: int) -> list[Hold]:
    """Open holds past their expiry, locked; rows another sweeper holds are skipped."""
    rows = await conn.fetch(
        f"SELECT {_HOLD_COLS} FROM holds WHERE status = 'held' AND expires_at <= $1"
        " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [_hold(r) for r in rows]


# --- orders and payments ------------------------------------------------------------------------------


async def insert_order(
    conn: Conn, *, order_id: str, account_id: uuid.UUID, credits: int, price: int, currency: str
) -> Order:
    """A new pending top-up order."""
    r = await conn.fetchrow(
        "INSERT INTO orders (order_id, account_id, credits, price, currency, status)"
        f" VALUES ($1, $2, $3, $4, $5, 'pending') RETURNING {_ORDER_COLS}",
        order_id,
        account_id,
        credits,
        price,
        currency,
    )
    assert r is not None
    return _order(r)


async def get_order(conn: Conn, *, order_id: str, for_update: bool = False) -> Order | None:
    """The order, optionally row-locked."""
    r = await _row(conn, "orders", _ORDER_COLS, "order_id", order_id, for_update=for_update)
    return _order(r) if r else None


async def set_order_status(
    conn: Conn, *, order_id: str, status: str, payment_key: str | None = None
) -> Order:
    """Move an order to ``status`` (``paid`` also records the payment key and time)."""
    r = await conn.fetchrow(
        "UPDATE orders SET status = $2, payment_key = coalesce($3, payment_key),"
        f" paid_at = CASE WHEN $2 = 'paid' THEN now() ELSE paid_at END WHERE order_id = $1 RETURNING {_ORDER_COLS}",
        order_id,
        status,
        payment_key,
    )
    return _order(_found(r, f"no order {order_id!r}"))


async def record_payment(
    conn: Conn, *, payment_key: str, status: str, order_id: str, amount: int, outcome: str
) -> bool:
    """Record one webhook delivery; False when this payment key already reported this status."""
    return await inserted(
        conn,
        "INSERT INTO payments (payment_key, status, order_id, amount, outcome) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (payment_key, status) DO NOTHING RETURNING true",
        payment_key,
        status,
        order_id,
        amount,
        outcome,
    )


async def lock_payment_key(conn: Conn, *, payment_key: str) -> None:
    """Serialize notifications of one payment key until the transaction ends (they may name different orders)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('payment:' || $1, 0))", payment_key)


async def payment_key_used_elsewhere(conn: Conn, *, payment_key: str, order_id: str) -> bool:
    """Whether an earlier notification of this payment key named another order."""
    used: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM payments WHERE payment_key = $1 AND order_id <> $2)",
        payment_key,
        order_id,
    )
    return used


async def payment_outcome(conn: Conn, *, payment_key: str, status: str) -> str | None:
    """What was done with an earlier delivery of this payment key and status."""
    outcome: str | None = await conn.fetchval(
        "SELECT outcome FROM payments WHERE payment_key = $1 AND status = $2", payment_key, status
    )
    return outcome


# --- invariants ---------------------------------------------------------------------------------------


async def invariant_violations(conn: Conn, *, account_id: uuid.UUID | None = None) -> list[str]:
    """Every broken money invariant, as readable lines (empty when the books are right)."""
    rows = await conn.fetch(
        """
        WITH l AS (
            SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id
        ), h AS (
            SELECT account_id, sum(amount) AS total FROM holds WHERE status = 'held' GROUP BY account_id
        ), chain AS (
            SELECT account_id, seq, balance_after,
                   sum(amount) OVER (PARTITION BY account_id ORDER BY seq) AS running
            FROM ledger_entries
        )
        SELECT 'account ' || a.id || ': balance ' || a.balance || ' <> sum(ledger) ' || coalesce(l.total, 0)
        FROM accounts a LEFT JOIN l ON l.account_id = a.id
        WHERE ($1::uuid IS NULL OR a.id = $1) AND a.balance <> coalesce(l.total, 0)
        UNION ALL
        SELECT 'account ' || a.id || ': held ' || a.held || ' <> open holds ' || coalesce(h.total, 0)
        FROM accounts a LEFT JOIN h ON h.account_id = a.id
        WHERE ($1::uuid IS NULL OR a.id = $1) AND a.held <> coalesce(h.total, 0)
        UNION ALL
        SELECT 'account ' || a.id || ': balance ' || a.balance || ', held ' || a.held || ' out of range'
        FROM accounts a
        WHERE ($1::uuid IS NULL OR a.id = $1) AND (a.balance < 0 OR a.held < 0 OR a.held > a.balance)
        UNION ALL
        SELECT 'entry ' || c.seq || ': balance_after ' || c.balance_after || ' <> running sum ' || c.running
        FROM chain c
        WHERE ($1::uuid IS NULL OR c.account_id = $1) AND c.balance_after <> c.running
        UNION ALL
        SELECT 'hold ' || x.hold_ref || ': captured ' || x.captured || ' <> ledger ' || coalesce(-e.amount, 0)
        FROM holds x LEFT JOIN ledger_entries e
             ON e.account_id = x.account_id AND e.kind = 'capture' AND e.reference = x.hold_ref
        WHERE ($1::uuid IS NULL OR x.account_id = $1) AND x.captured <> coalesce(-e.amount, 0)
        """,
        account_id,
    )
    return [r[0] for r in rows]


async def ledger_sum(conn: Conn, *, account_id: uuid.UUID) -> int:
    """The sum of an account's ledger entries."""
    total: int = await conn.fetchval(
        "SELECT coalesce(sum(amount), 0)::bigint FROM ledger_entries WHERE account_id = $1", account_id
    )
    return total


async def count_entries(conn: Conn, *, account_id: uuid.UUID, kind: str | None = None) -> int:
    """How many ledger entries an account has (of ``kind``)."""
    n: int = await conn.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE account_id = $1 AND ($2::text IS NULL OR kind = $2)",
        account_id,
        kind,
    )
    return n


async def holds_by_status(conn: Conn, *, account_id: uuid.UUID) -> dict[str, int]:
    """How many holds an account has in each status."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM holds WHERE account_id = $1 GROUP BY status", account_id
    )
    return {r["status"]: r["n"] for r in rows}
