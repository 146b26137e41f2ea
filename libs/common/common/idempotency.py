"""``Idempotency-Key`` on a POST: a retried request gets the first answer instead of doing the work again.

A route takes part with one argument of its route table entry (``common.openapi.Route``)::

    Route("POST", "/api/v1/renders", create_render, body=RenderRequest, response=RenderView, status=202,
          idempotent=True)

which documents the header and the 409 codes and wraps the handler in :func:`guard`. Then, per user and key:

- the first request runs; a 2xx answer (status, body, ``Location``) is kept for 24 h with the request's hash
  (method, route, path parameters, body: ``common.http.BodyDigest``; a multipart body part by part, hashed while
  the handler streams it, never held in memory);
- a retry with the same hash gets that answer again, with ``Idempotent-Replayed: true``, and nothing runs;
- the same key with another request is 409 ``idempotency.key_reused``; while the first still runs, 409
  ``idempotency.in_progress`` (with ``Retry-After``);
- an error answer (4xx, 5xx, a dropped connection) keeps nothing: the key is free again, so a client that got a 503
  retries with the same key. A holder that died is detected by its lease (renewed while it runs) running out.

Keys live in the service's own schema (``idempotency_keys``, a common migration every schema gets) and are swept
after they expire. A handler reading a multipart body must read it through ``common.http.form_parts`` and
``part_chunks`` (or ``form_field``), which feed the hash. Limit: a crash after the handler committed and before its
answer is recorded (a few milliseconds) leaves the key to be taken over when the lease ends, and the retry runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
from aiohttp import web

from .auth import require_user
from .errors import CommonCode
from .http import BODY_DIGEST, BodyDigest, Problem, drain_form
from .logging import get_logger
from .service import POOL, SETTINGS

__all__ = ["HEADER", "REPLAYED_HEADER", "guard", "idempotent", "sweep"]

log = get_logger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # visible ASCII, as Stripe's and the IETF draft's keys are
#: the answer's headers a replay repeats
_KEPT_HEADERS = ("Content-Type", "Location")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def idempotent(handler: Handler) -> Handler:
    """``handler`` behind :func:`guard` (``Route(..., idempotent=True)`` does this)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        return await guard(request, handler)

    wrapped.__name__, wrapped.__doc__ = handler.__name__, handler.__doc__
    return wrapped


async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run ``handler`` once per (user, ``Idempotency-Key``); without the header it just runs."""
    key = request.headers.get(HEADER)
    if key is None:
        return await handler(request)
    if not _KEY.match(key):
        raise Problem(
            400, CommonCode.IDEMPOTENCY_KEY_INVALID, f"{HEADER} must be 1 to 255 visible ASCII characters"
        )
    owner = (await require_user(request)).user_id
    pool, settings = request.app[POOL], request.app[SETTINGS]
    digest = BodyDigest(request)
    streamed = request.content_type.startswith("multipart/")
    if not streamed:
        digest.update(_canonical(await request.read()))  # kept by aiohttp: the handler reads the same bytes
    token = uuid.uuid4()
    async with pool.acquire() as conn:
        claimed = await _claim(
            conn, owner, key, token, lease_s=settings.idempotency_lease_s, ttl_s=settings.idempotency_ttl_s
        )
        if not claimed:
            row = await conn.fetchrow(
                "SELECT status, request_hash, headers, body FROM idempotency_keys WHERE owner_id = $1 AND key = $2",
                owner,
                key,
            )
    if not claimed:
        return await _repeat(request, row, digest, streamed)
    return await _first(request, handler, digest, streamed, owner=owner, key=key, token=token)


async def _first(
    request: web.Request,
    handler: Handler,
    digest: BodyDigest,
    streamed: bool,
    *,
    owner: uuid.UUID,
    key: str,
    token: uuid.UUID,
) -> web.StreamResponse:
    pool, settings = request.app[POOL], request.app[SETTINGS]
    renewer = asyncio.create_task(_renew(pool, owner, key, token, settings.idempotency_lease_s))
    context = BODY_DIGEST.set(digest)
    kept = False
    try:
        resp = await handler(request)
        if 200 <= resp.status < 300 and isinstance(resp, web.Response) and isinstance(resp.body, bytes):
            if streamed:
                await drain_form(request)  # what the handler did not read belongs to the request too
            headers = {h: resp.headers[h] for h in _KEPT_HEADERS if h in resp.headers}
            async with pool.acquire() as conn:
                await conn.execute(
                    "UPDATE idempotency_keys SET status = $4, request_hash = $5, headers = $6, body = $7"
                    " WHERE owner_id = $1 AND key = $2 AND token = $3",
                    owner,
                    key,
                    token,
                    resp.status,
                    digest.hexdigest(),
                    headers,
                    resp.body,
                )
            kept = True
        return resp
    finally:
        BODY_DIGEST.reset(context)
        renewer.cancel()
        if not kept:  # an error, a cancel, an answer that cannot be kept: the key is free for a retry
            await asyncio.shield(_release(pool, owner, key, token))


async def _repeat(
    request: web.Request, row: asyncpg.Record | None, digest: BodyDigest, streamed: bool
) -> web.Response:
    if row is None or row["status"] is None:  # running (or let go this very moment)
        raise Problem(
            409,
            CommonCode.IDEMPOTENCY_IN_PROGRESS,
            "a request with this Idempotency-Key is still being processed; retry later",
            headers={"Retry-After": "1"},
        )
    if streamed:
        context = BODY_DIGEST.set(digest)
        try:
            await drain_form(request)
        finally:
            BODY_DIGEST.reset(context)
    if digest.hexdigest() != row["request_hash"]:
        raise Problem(
            409,
            CommonCode.IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was used with another request; use a new key for a new request",
        )
    headers = {**(row["headers"] or {}), REPLAYED_HEADER: "true"}
    return web.Response(status=row["status"], body=row["body"], headers=headers)


def _canonical(raw: bytes) -> bytes:
    """A JSON body with sorted keys and no spacing (a retry may serialise it differently); other bytes as they are."""
    try:
        return msgspec.json.encode(msgspec.json.decode(raw), order="sorted")
    except (msgspec.DecodeError, RecursionError):
        return raw


async def _claim(
    conn: asyncpg.Connection, owner: uuid.UUID, key: str, token: uuid.UUID, *, lease_s: float, ttl_s: float
) -> bool:
    """Hold the key: a new one, an expired one, or one whose holder's lease ran out (it died) is taken."""
    got = await conn.fetchval(
        """
        INSERT INTO idempotency_keys AS k (owner_id, key, token, locked_until, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4), now() + make_interval(secs => $5))
        ON CONFLICT (owner_id, key) DO UPDATE
            SET token = EXCLUDED.token, locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at,
                created_at = now(), request_hash = NULL, status = NULL, headers = NULL, body = NULL
            WHERE k.expires_at <= now() OR (k.status IS NULL AND k.locked_until <= now())
        RETURNING token
        """,
        owner,
        key,
        token,
        lease_s,
        ttl_s,
    )
    return got == token


async def _renew(pool: asyncpg.Pool, owner: uuid.UUID, key: str, token: uuid.UUID, lease_s: float) -> None:
    """Extend the lease every third of it while the first request runs (an upload may take an hour)."""
    while True:
        await asyncio.sleep(lease_s / 3)
        with contextlib.suppress(Exception):  # the database is away: the lease may lapse, and that is safe
            await pool.execute(
                "UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $4)"
                " WHERE owner_id = $1 AND key = $2 AND token = $3",
                owner,
                key,
                token,
                lease_s,
            )


async def _release(pool: asyncpg.Pool, owner: uuid.UUID, key: str, token: uuid.UUID) -> None:
    try:
        await pool.execute(
            "DELETE FROM idempotency_keys WHERE owner_id = $1 AND key = $2 AND token = $3 AND status IS NULL",
            owner,
            key,
            token,
        )
    except Exception as exc:  # the database is away: the lease runs out and frees the key
        log.warning("idempotency.release_failed", error=repr(exc))


async def sweep(pool: asyncpg.Pool) -> int:
    """Delete expired keys; returns how many."""
    result: str = await pool.execute("DELETE FROM idempotency_keys WHERE expires_at <= now()")
    return int(result.rsplit(" ", 1)[-1])
