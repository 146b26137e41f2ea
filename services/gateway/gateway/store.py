"""The gateway's SQL: users, refresh tokens, revocations and the jobs read model. Keyword-only functions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg
import msgspec

from common.events.base import Event
from common.events.jobs import JobProgress
from common.jobs import Job
from common.outbox import add as outbox_add
from common.pagination import fetch_newest_first

Pool: TypeAlias = asyncpg.Pool
Connection: TypeAlias = asyncpg.Connection

TERMINAL_STATUSES = ("succeeded", "failed", "canceled")


class User(msgspec.Struct, kw_only=True, frozen=True):
    """An account."""

    id: uuid.UUID
    email: str
    password_hash: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """The account as the API shows it (never the hash)."""
        return {"id": str(self.id), "email": self.email, "created_at": self.created_at.isoformat()}


class RefreshToken(msgspec.Struct, kw_only=True, frozen=True):
    """A stored refresh token (its hash only)."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    used_at: datetime | None
    family_revoked: bool


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Connection]:
    """A connection with an open transaction."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn


async def add_event(conn: Connection, *, event: Event) -> None:
    """Write ``event`` to the outbox in the caller's transaction."""
    await outbox_add(conn, event)


# --- users -----------------------------------------------------------------------------------------------


def _user(r: asyncpg.Record) -> User:
    return User(id=r["id"], email=r["email"], password_hash=r["password_hash"], created_at=r["created_at"])


async def insert_user(conn: Connection, *, user_id: uuid.UUID, email: str, password_hash: str) -> User | None:
    """Create an account; None when the email is taken (case-insensitively)."""
    r = await conn.fetchrow(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT (lower(email)) DO NOTHING RETURNING id, email, password_hash, created_at",
        user_id,
        email,
        password_hash,
    )
    return _user(r) if r else None


async def user_by_email(conn: Connection, *, email: str) -> User | None:
    """The account with this email (case-insensitive)."""
    r = await conn.fetchrow(
        "SELECT id, email, password_hash, created_at FROM users WHERE lower(email) = lower($1)", email
    )
    return _user(r) if r else None


async def user_by_id(conn: Connection, *, user_id: uuid.UUID) -> User | None:
    """The account with this id."""
    r = await conn.fetchrow("SELECT id, email, password_hash, created_at FROM users WHERE id = $1", user_id)
    return _user(r) if r else None


async def set_password_hash(conn: Connection, *, user_id: uuid.UUID, password_hash: str) -> None:
    """Store a re-computed hash (after the cost parameters were raised)."""
    await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", user_id, password_hash
    )


# --- refresh tokens ----------------------------------------------------------------------------------------


async def insert_refresh_token(
    conn: Connection,
    *,
    token_id: uuid.UUID,
    family_id: uuid.UUID,
    user_id: uuid.UUID,
    token_hash: bytes,
    expires_at: datetime,
) -> None:
    """Store a new refresh token (by hash)."""
    await conn.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        token_id,
        family_id,
        user_id,
        token_hash,
        expires_at,
    )


async def refresh_token_for_update(conn: Connection, *, token_hash: bytes) -> RefreshToken | None:
    """The refresh token with this hash, row-locked so two concurrent rotations cannot both succeed."""
    r = await conn.fetchrow(
        "SELECT t.id, t.family_id, t.user_id, t.expires_at, t.used_at,"
        " EXISTS (SELECT 1 FROM revocations v WHERE v.kind = 'family' AND v.value = t.family_id::text)"
        "   AS family_revoked"
        " FROM refresh_tokens t WHERE t.token_hash = $1 FOR UPDATE OF t",
        token_hash,
    )
    if r is None:
        return None
    return RefreshToken(
        id=r["id"],
        family_id=r["family_id"],
        user_id=r["user_id"],
        expires_at=r["expires_at"],
        used_at=r["used_at"],
        family_revoked=r["family_revoked"],
    )


async def mark_refresh_token_used(conn: Connection, *, token_id: uuid.UUID, replaced_by: uuid.UUID) -> None:
    """Spend a refresh token."""
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = now(), replaced_by = $2 WHERE id = $1", token_id, replaced_by
    )


async def refresh_token_owner(conn: Connection, *, token_hash: bytes) -> tuple[uuid.UUID, uuid.UUID] | None:
    """``(user_id, family_id)`` of a refresh token, whatever its state."""
    r = await conn.fetchrow("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = $1", token_hash)
    return (r["user_id"], r["family_id"]) if r else None


# --- revocations ---------------------------------------------------------------------------------------------


async def revoke(
    conn: Connection, *, kind: str, value: str, user_id: uuid.UUID, reason: str, expires_at: datetime
) -> None:
    """Record a revocation (idempotent; the later expiry wins)."""
    await conn.execute(
        "INSERT INTO revocations (kind, value, user_id, reason, expires_at) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (kind, value) DO UPDATE SET expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at)",
        kind,
        value,
        user_id,
        reason,
        expires_at,
    )


async def is_revoked(pool: Pool, *, jti: str, sid: str) -> bool:
    """Whether the access token ``jti`` or its session (refresh family) ``sid`` was revoked."""
    async with pool.acquire() as conn:
        found = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM revocations WHERE (kind = 'token' AND value = $1)"
            " OR (kind = 'family' AND value = $2))",
            jti,
            sid,
        )
    return bool(found)


async def purge_expired(pool: Pool) -> tuple[int, int]:
    """Delete revocations and refresh tokens nothing can use any more; return the counts."""
    async with pool.acquire() as conn:
        a = await conn.execute("DELETE FROM revocations WHERE expires_at < now()")
        b = await conn.execute("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'")
    return int(a.split()[-1]), int(b.split()[-1])


# --- API keys ---------------------------------------------------------------------------------------------------

_KEY_COLS = "id, user_id, name, prefix, scope, created_at, last_used_at, revoked_at"


class ApiKey(msgspec.Struct, kw_only=True, frozen=True):
    """A stored API key (its hash only; ``email`` is the owner's, filled where the key authenticates)."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    email: str = ""


def _api_key(r: asyncpg.Record) -> ApiKey:
    return ApiKey(**{k: r[k] for k in r.keys()})  # noqa: SIM118 (a Record is not a dict)


async def insert_api_key(
    conn: Connection,
    *,
    key_id: uuid.UUID,
    user_id: uuid.UUID,
    name: str,
    prefix: str,
    key_hash: bytes,
    scope: str,
    max_active: int,
) -> ApiKey | None:
    """Store a new key unless the user already has ``max_active`` unrevoked keys (then None).

    The user's row is locked first, so two concurrent creations cannot both pass the count.
    """
    await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
    active = await conn.fetchval(
        "SELECT count(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL", user_id
    )
    if active >= max_active:
        return None
    r = await conn.fetchrow(
        "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scope) VALUES ($1, $2, $3, $4, $5, $6)"
        f" RETURNING {_KEY_COLS}",
        key_id,
        user_id,
        name,
        prefix,
        key_hash,
        scope,
    )
    return _api_key(r)


async def list_api_keys(pool: Pool, *, user_id: uuid.UUID) -> list[ApiKey]:
    """The user's unrevoked keys, newest first."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {_KEY_COLS} FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL"
            " ORDER BY created_at DESC, id",
            user_id,
        )
    return [_api_key(r) for r in rows]


async def revoke_api_key(pool: Pool, *, user_id: uuid.UUID, key_id: uuid.UUID) -> bool:
    """Revoke one of the user's keys (a revoked key keeps its first revocation time); False if not theirs."""
    async with pool.acquire() as conn:
        status = await conn.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 AND user_id = $2",
            key_id,
            user_id,
        )
    return bool(status.endswith(" 1"))


async def api_key_by_hash(pool: Pool, *, key_hash: bytes, touch_after_s: float) -> ApiKey | None:
    """The key with this hash (revoked or not) and its owner's email, or None; marks an unrevoked one used.

    ``last_used_at`` is written at most once per ``touch_after_s`` per key (a script making 100 requests a
    minute would otherwise write a row 100 times a minute for a value shown to the minute).
    """
    async with pool.acquire() as conn:
        r = await conn.fetchrow(
            f"SELECT {', '.join('k.' + c for c in _KEY_COLS.split(', '))}, u.email"
            " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
            key_hash,
        )
        if r is None or r["revoked_at"] is not None:
            return _api_key(r) if r else None
        if (
            r["last_used_at"] is None
            or (datetime.now(UTC) - r["last_used_at"]).total_seconds() >= touch_after_s
        ):
            await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", r["id"])
    return _api_key(r)


async def api_key_revoked(pool: Pool, *, key_id: uuid.UUID) -> bool:
    """Whether the key is revoked (or gone with its user)."""
    async with pool.acquire() as conn:
        active = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1 AND revoked_at IS NULL)", key_id
        )
    return not active


# --- jobs read model ---------------------------------------------------------------------------------------------

_JOB_COLS = (
    "id, kind, owner_id, status, progress, stage, error, result, params, seq, cancel_requested, created_at,"
    " updated_at, subject"
)


def _job(r: asyncpg.Record) -> Job:
    return Job(**dict(r))


async def apply_job_snapshot(conn: Connection, snapshot: JobProgress) -> bool:
    """Upsert a job snapshot unless the job already ended or the snapshot is older and not an ending one."""
    row = await conn.fetchval(
        "INSERT INTO jobs (id, kind, owner_id, status, progress, stage, error, result, seq, created_at, updated_at,"
        " subject) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, now()), COALESCE($11, now()), $12)"
        " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, progress = EXCLUDED.progress,"
        "   stage = EXCLUDED.stage, error = EXCLUDED.error, result = EXCLUDED.result, seq = EXCLUDED.seq,"
        "   updated_at = EXCLUDED.updated_at, subject = COALESCE(EXCLUDED.subject, jobs.subject)"
        # snapshots may be handled out of order (concurrent consumers): an ended job never changes again, and
        # an ending snapshot wins over any running one whatever its seq; otherwise the newest seq wins
        " WHERE jobs.owner_id = EXCLUDED.owner_id AND jobs.status NOT IN ('succeeded', 'failed', 'canceled')"
        "   AND (jobs.seq < EXCLUDED.seq OR EXCLUDED.status IN ('succeeded', 'failed', 'canceled'))"
        " RETURNING true",
        snapshot.job_id,
        snapshot.kind,
        snapshot.owner_id,
        snapshot.status,
        max(0.0, min(100.0, snapshot.percent)),
        snapshot.stage,
        msgspec.to_builtins(snapshot.error) if snapshot.error else None,
        snapshot.result,
        snapshot.seq,
        snapshot.created_at,
        snapshot.updated_at,
        msgspec.to_builtins(snapshot.subject) if snapshot.subject else None,
    )
    return bool(row)


async def list_jobs(
    conn: Connection,
    *,
    owner_id: uuid.UUID,
    statuses: Sequence[str] = (),
    kinds: Sequence[str] = (),
    limit: int = 20,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[Job]:
    """The owner's jobs, newest first, optionally filtered, after a keyset cursor."""
    where = ["owner_id = $1"]
    args: list[Any] = [owner_id]
    if statuses:
        args.append(list(statuses))
        where.append(f"status = ANY(${len(args)}::text[])")
    if kinds:
        args.append(list(kinds))
        where.append(f"kind = ANY(${len(args)}::text[])")
    query = f"SELECT {_JOB_COLS} FROM jobs WHERE {' AND '.join(where)}"
    return [_job(r) for r in await fetch_newest_first(conn, query, *args, limit=limit, after=before)]


async def owned_job(
    conn: Connection, *, owner_id: uuid.UUID, job_id: uuid.UUID, for_update: bool = False
) -> Job | None:
    """A job if ``owner_id`` owns it."""
    r = await conn.fetchrow(
        f"SELECT {_JOB_COLS} FROM jobs WHERE id = $1 AND owner_id = $2"
        + (" FOR UPDATE" if for_update else ""),
        job_id,
        owner_id,
    )
    return _job(r) if r else None


async def mark_cancel_requested(conn: Connection, *, job_id: uuid.UUID) -> Job:
    """Flag a job as having a cancel request in flight."""
    r = await conn.fetchrow(
        f"UPDATE jobs SET cancel_requested = true WHERE id = $1 RETURNING {_JOB_COLS}", job_id
    )
    return _job(r)
