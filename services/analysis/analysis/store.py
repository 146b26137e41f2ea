"""The only module with SQL: the analysis schema's videos read model, analyses, batches, requests, the cache and the
page memo.

Invariants: an analysis ends once — ``finish_item`` changes only a row that has not ended, and its callers hold
the row's job lease (``JobContext.transaction``), so a worker that lost its lease cannot end it twice. Items of a
chunk are run by the one worker that holds the chunk job's lease; a re-claimed chunk first puts its ``running``
items back to ``queued`` (their worker died). A request row is inserted once per request id (``ON CONFLICT DO
NOTHING``) and answered once (only a ``pending`` row changes).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

import asyncpg
import msgspec

from common.db import fetch_one, inserted
from common.events.captions import CaptionsCompleted
from common.events.ingest import VideoIngested
from common.pagination import fetch_newest_first

from .models import (
    AnalysisOptions,
    AnalysisRecord,
    BatchRecord,
    BatchState,
    ItemState,
    OutboundRequest,
    RequestState,
    VideoRef,
)

Conn: TypeAlias = asyncpg.Connection


class TranscriptOrigin(msgspec.Struct, kw_only=True, frozen=True):
    """Where an analysis's transcript came from, what it named of the video, and where its copy is kept."""

    source: str
    language: str
    title: str = ""
    duration_s: float | None = None
    transcript_key: str


class PageMemo(TranscriptOrigin, kw_only=True, frozen=True):
    """A row of ``page_memo``: what a URL's page gave when it was last read (and, read back, the cached result)."""

    cache_key: str
    source_id: str
    result: dict[str, Any] | None = None


_ANALYSIS_COLS = (
    "id, owner_id, job_id, batch_id, position, video_id, url, options, state, attempts, source, language, title,"
    " duration_s, transcript_key, cache_key, result, error, credits, created_at, started_at, finished_at, updated_at"
)
_BATCH_COLS = "id, owner_id, job_id, options, state, parked_until, total, created_at, updated_at, finished_at"
_ENDED = "('succeeded', 'cached', 'failed', 'canceled')"


def _analysis(r: Mapping[str, Any]) -> AnalysisRecord:
    return msgspec.convert(dict(r), AnalysisRecord)


def _batch(r: Mapping[str, Any]) -> BatchRecord:
    return msgspec.convert(dict(r), BatchRecord)


# --- videos (read model of ingest's and captions' events) ------------------------------------------------------


async def _set_video(conn: Conn, video_id: uuid.UUID, owner_id: uuid.UUID, **columns: object) -> None:
    """Insert a video, or set ``columns`` (names from this module, never from input) of the one there; a deleted
    video stays deleted."""
    places = ", ".join(f"${i}" for i in range(3, 3 + len(columns)))
    sets = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns)
    await conn.execute(
        f"INSERT INTO videos (video_id, owner_id, {', '.join(columns)}) VALUES ($1, $2, {places})"
        f" ON CONFLICT (video_id) DO UPDATE SET {sets}, updated_at = now() WHERE videos.deleted_at IS NULL",
        video_id,
        owner_id,
        *columns.values(),
    )


async def upsert_video(conn: Conn, video: VideoIngested) -> None:
    """Record (or refresh) a video announced by ``video.ingested``; a deleted video stays deleted."""
    await _set_video(conn, video.video_id, video.owner_id, duration_s=video.duration_s, title=video.title)


async def set_video_transcript(conn: Conn, done: CaptionsCompleted) -> None:
    """Remember the transcript captions made of a video (the cheapest source of the next analysis)."""
    await _set_video(
        conn,
        done.video_id,
        done.owner_id,
        transcript_key=done.transcript_key,
        transcript_language=done.language,
    )


async def mark_video_deleted(conn: Conn, *, video_id: uuid.UUID, owner_id: uuid.UUID) -> None:
    """Remember the delete (a late ``video.ingested`` redelivery must not bring the video back)."""
    await conn.execute(
        "INSERT INTO videos (video_id, owner_id, deleted_at) VALUES ($1, $2, now())"
        " ON CONFLICT (video_id) DO UPDATE SET deleted_at = now(), transcript_key = '', updated_at = now()",
        video_id,
        owner_id,
    )


async def get_video(conn: Conn, *, video_id: uuid.UUID) -> VideoRef | None:
    """A live video, or None."""
    return await fetch_one(
        conn,
        VideoRef,
        "SELECT video_id, owner_id, duration_s, title, transcript_key, transcript_language FROM videos"
        " WHERE video_id = $1 AND deleted_at IS NULL",
        video_id,
    )


# --- analyses ---------------------------------------------------------------------------------------------------


async def create_analysis(
    conn: Conn,
    *,
    analysis_id: uuid.UUID,
    owner_id: uuid.UUID,
    job_id: uuid.UUID | None,
    options: AnalysisOptions,
    video_id: uuid.UUID | None = None,
    url: str = "",
) -> AnalysisRecord:
    """A queued analysis asked for on its own."""
    r = await conn.fetchrow(
        "INSERT INTO analyses (id, owner_id, job_id, video_id, url, options) VALUES ($1, $2, $3, $4, $5, $6)"
        f" RETURNING {_ANALYSIS_COLS}",
        analysis_id,
        owner_id,
        job_id,
        video_id,
        url,
        msgspec.to_builtins(options),
    )
    return _analysis(r)


async def get_analysis(conn: Conn, *, analysis_id: uuid.UUID) -> AnalysisRecord | None:
    """An analysis by id."""
    return await fetch_one(
        conn, AnalysisRecord, f"SELECT {_ANALYSIS_COLS} FROM analyses WHERE id = $1", analysis_id
    )


# what an owner lists, newest first: their single analyses (not batch items) and their batches
_OWNED: dict[type[Any], str] = {
    AnalysisRecord: f"SELECT {_ANALYSIS_COLS} FROM analyses WHERE owner_id = $1 AND batch_id IS NULL",
    BatchRecord: f"SELECT {_BATCH_COLS} FROM batches WHERE owner_id = $1",
}
Owned = TypeVar("Owned", AnalysisRecord, BatchRecord)


async def list_owned(
    conn: Conn,
    kind: type[Owned],
    *,
    owner_id: uuid.UUID,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    video_id: uuid.UUID | None = None,
) -> list[Owned]:
    """The owner's single analyses or batches (``kind``), newest first, after the keyset ``after``; analyses only:
    those of the video ``video_id``, if given."""
    query, args = _OWNED[kind], [owner_id]
    if video_id is not None:
        if kind is not AnalysisRecord:
            raise TypeError("only analyses are of a video")
        query, args = f"{query} AND video_id = $2", [owner_id, video_id]
    rows = await fetch_newest_first(conn, query, *args, limit=limit, after=after)
    return [msgspec.convert(dict(r), kind) for r in rows]


async def start_item(
    conn: Conn, *, analysis_id: uuid.UUID, job_id: uuid.UUID | None = None
) -> AnalysisRecord | None:
    """Mark a queued (or interrupted) analysis running; None when it has ended or (``job_id``, a batch item)
    another chunk job owns it now (a retried item moved to a new chunk is never run by its old one) or its batch
    is not running (paused, parked, canceled). The batch's row is share-locked, so a pause waits for an item
    starting now, and once the pause is committed no item starts."""
    return await fetch_one(
        conn,
        AnalysisRecord,
        "UPDATE analyses SET state = 'running', attempts = attempts + 1, started_at = coalesce(started_at, now()),"
        f" updated_at = now() WHERE id = $1 AND state NOT IN {_ENDED} AND ($2::uuid IS NULL OR (job_id = $2"
        " AND EXISTS (SELECT 1 FROM batches b WHERE b.id = analyses.batch_id AND b.state = 'running'"
        " AND (b.parked_until IS NULL OR b.parked_until <= now()) FOR SHARE)))"
        f" RETURNING {_ANALYSIS_COLS}",
        analysis_id,
        job_id,
    )


async def record_source(conn: Conn, *, analysis_id: uuid.UUID, origin: TranscriptOrigin) -> None:
    """Where the analysis's transcript came from (shown while the analysis runs, kept when it ends)."""
    await conn.execute(
        "UPDATE analyses SET source = $2, language = $3, transcript_key = $4, title = coalesce(nullif($5, ''), title),"
        " duration_s = coalesce($6, duration_s), updated_at = now() WHERE id = $1",
        analysis_id,
        origin.source,
        origin.language,
        origin.transcript_key,
        origin.title,
        origin.duration_s,
    )


async def finish_item(
    conn: Conn,
    *,
    analysis_id: uuid.UUID,
    state: ItemState,
    result: Mapping[str, Any] | None = None,
    error: Mapping[str, str] | None = None,
    cache_key: str | None = None,
    credits: int = 0,
) -> AnalysisRecord | None:
    """End an analysis (once): the ended row, or None when it had already ended."""
    return await fetch_one(
        conn,
        AnalysisRecord,
        "UPDATE analyses SET state = $2, result = $3, error = $4, cache_key = coalesce($5, cache_key), credits = $6,"
        f" finished_at = now(), updated_at = now() WHERE id = $1 AND state NOT IN {_ENDED}"
        f" RETURNING {_ANALYSIS_COLS}",
        analysis_id,
        state.value,
        dict(result) if result is not None else None,
        dict(error) if error is not None else None,
        cache_key,
        credits,
    )


# --- requests to other services ---------------------------------------------------------------------------------


async def add_request(conn: Conn, *, request_id: str, analysis_id: uuid.UUID, kind: str) -> bool:
    """Record a command about to be sent; False when it was sent before (a retried job waits for its answer)."""
    return await inserted(
        conn,
        "INSERT INTO requests (request_id, analysis_id, kind) VALUES ($1, $2, $3)"
        " ON CONFLICT (request_id) DO NOTHING RETURNING true",
        request_id,
        analysis_id,
        kind,
    )


async def get_request(conn: Conn, *, request_id: str) -> OutboundRequest | None:
    """A request and its answer so far."""
    return await fetch_one(
        conn,
        OutboundRequest,
        "SELECT request_id, analysis_id, kind, state, video_id, transcript_key, language, code, message"
        " FROM requests WHERE request_id = $1",
        request_id,
    )


async def answer_request(
    conn: Conn,
    *,
    request_id: str,
    state: RequestState,
    video_id: uuid.UUID | None = None,
    transcript_key: str | None = None,
    language: str | None = None,
    code: str | None = None,
    message: str | None = None,
) -> bool:
    """Record the answer to a pending request; False when there is no such pending request."""
    done = await conn.fetchval(
        "UPDATE requests SET state = $2, video_id = coalesce($3, video_id), transcript_key = $4, language = $5,"
        " code = $6, message = $7, answered_at = now() WHERE request_id = $1 AND state = 'pending' RETURNING true",
        request_id,
        state.value,
        video_id,
        transcript_key,
        language,
        code,
        message,
    )
    return bool(done)


# --- the content cache ------------------------------------------------------------------------------------------


async def cached_result(conn: Conn, *, cache_key: str) -> dict[str, Any] | None:
    """An earlier result for the same source, transcript, model, prompt and options."""
    value = await conn.fetchval("SELECT result FROM result_cache WHERE cache_key = $1", cache_key)
    return dict(value) if value is not None else None


async def cache_result(conn: Conn, *, cache_key: str, result: Mapping[str, Any]) -> None:
    """Keep a result for the next identical analysis (the first one stays)."""
    await conn.execute(
        "INSERT INTO result_cache (cache_key, result) VALUES ($1, $2) ON CONFLICT (cache_key) DO NOTHING",
        cache_key,
        dict(result),
    )


async def url_memo(conn: Conn, *, memo_key: str, max_age_s: float) -> PageMemo | None:
    """The page memo of a URL read at most ``max_age_s`` ago, with its cached result; None if there is none."""
    r = await conn.fetchrow(
        "SELECT m.cache_key, m.source_id, m.source, m.language, m.title, m.duration_s, m.transcript_key, c.result"
        " FROM page_memo m JOIN result_cache c USING (cache_key)"
        " WHERE m.memo_key = $1 AND m.read_at > now() - make_interval(secs => $2)",
        memo_key,
        max_age_s,
    )
    return msgspec.convert({**dict(r), "result": dict(r["result"])}, PageMemo) if r is not None else None


async def remember_page(conn: Conn, *, memo_key: str, memo: PageMemo) -> None:
    """Remember what a URL's page gave just now (its read time becomes now)."""
    await conn.execute(
        "INSERT INTO page_memo (memo_key, cache_key, source_id, source, language, title, duration_s, transcript_key)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (memo_key) DO UPDATE SET cache_key = EXCLUDED.cache_key,"
        " source_id = EXCLUDED.source_id, source = EXCLUDED.source, language = EXCLUDED.language,"
        " title = EXCLUDED.title, duration_s = EXCLUDED.duration_s, transcript_key = EXCLUDED.transcript_key,"
        " read_at = now()",
        memo_key,
        memo.cache_key,
        memo.source_id,
        memo.source,
        memo.language,
        memo.title,
        memo.duration_s,
        memo.transcript_key,
    )


# --- batches ----------------------------------------------------------------------------------------------------


async def create_batch(
    conn: Conn,
    *,
    batch_id: uuid.UUID,
    owner_id: uuid.UUID,
    job_id: uuid.UUID,
    options: AnalysisOptions,
    total: int,
) -> BatchRecord:
    """A running batch of ``total`` items (add them with ``add_items``)."""
    r = await conn.fetchrow(
        f"INSERT INTO batches (id, owner_id, job_id, options, total) VALUES ($1, $2, $3, $4, $5) RETURNING {_BATCH_COLS}",
        batch_id,
        owner_id,
        job_id,
        msgspec.to_builtins(options),
        total,
    )
    return _batch(r)


async def add_items(
    conn: Conn,
    batch: BatchRecord,
    *,
    job_id: uuid.UUID,
    first_position: int,
    items: Sequence[tuple[uuid.UUID | None, str]],
) -> None:
    """Items ``(video_id, url)`` of one of ``batch``'s chunk jobs, numbered from ``first_position``."""
    opts = msgspec.to_builtins(batch.options)
    await conn.executemany(
        "INSERT INTO analyses (id, owner_id, job_id, batch_id, position, video_id, url, options)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            (uuid.uuid4(), batch.owner_id, job_id, batch.id, first_position + i, vid, url, opts)
            for i, (vid, url) in enumerate(items)
        ],
    )


async def get_batch(conn: Conn, *, batch_id: uuid.UUID, for_update: bool = False) -> BatchRecord | None:
    """A batch by id (optionally row-locked)."""
    lock = " FOR UPDATE" if for_update else ""
    return await fetch_one(
        conn, BatchRecord, f"SELECT {_BATCH_COLS} FROM batches WHERE id = $1{lock}", batch_id
    )


async def set_batch_state(
    conn: Conn,
    *,
    batch_id: uuid.UUID,
    state: BatchState,
    allowed_from: Sequence[BatchState],
) -> BatchRecord | None:
    """Move a batch to ``state`` from one of ``allowed_from``; None when it was elsewhere."""
    return await fetch_one(
        conn,
        BatchRecord,
        "UPDATE batches SET state = $2, updated_at = now(),"
        " finished_at = CASE WHEN $2 IN ('canceled', 'done') THEN now() ELSE finished_at END,"
        " parked_until = CASE WHEN $2 = 'running' THEN NULL ELSE parked_until END"
        f" WHERE id = $1 AND state = ANY($3::text[]) RETURNING {_BATCH_COLS}",
        batch_id,
        state.value,
        [s.value for s in allowed_from],
    )


async def park_batch(conn: Conn, *, batch_id: uuid.UUID, until: datetime) -> None:
    """The model's per-day quota is spent until ``until``: the batch's chunks wait."""
    await conn.execute(
        "UPDATE batches SET parked_until = greatest(coalesce(parked_until, $2), $2), updated_at = now()"
        " WHERE id = $1",
        batch_id,
        until,
    )


async def batch_counts(conn: Conn, *, batch_id: uuid.UUID) -> dict[str, int]:
    """Items by state (every state, zero included)."""
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM analyses WHERE batch_id = $1 GROUP BY state", batch_id
    )
    counts = {s.value: 0 for s in ItemState}
    counts.update({r["state"]: int(r["n"]) for r in rows})
    return counts


async def batch_credits(conn: Conn, *, batch_id: uuid.UUID) -> int:
    """What the batch's items were charged so far."""
    return int(
        await conn.fetchval("SELECT coalesce(sum(credits), 0) FROM analyses WHERE batch_id = $1", batch_id)
    )


async def finished_since(conn: Conn, *, batch_id: uuid.UUID, seconds: float) -> int:
    """Items of the batch that ended in the last ``seconds``."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM analyses WHERE batch_id = $1 AND finished_at > now() - make_interval(secs => $2)",
            batch_id,
            seconds,
        )
    )


async def list_items(
    conn: Conn, *, batch_id: uuid.UUID, limit: int, after: int | None, state: ItemState | None = None
) -> list[AnalysisRecord]:
    """A batch's items in their order, after position ``after`` (only those in ``state``, if given)."""
    rows = await conn.fetch(
        f"SELECT {_ANALYSIS_COLS} FROM analyses WHERE batch_id = $1 AND position > $2"
        " AND ($4::text IS NULL OR state = $4) ORDER BY position LIMIT $3",
        batch_id,
        -1 if after is None else after,
        limit,
        state,
    )
    return [_analysis(r) for r in rows]


async def chunk_items(conn: Conn, *, job_id: uuid.UUID) -> list[AnalysisRecord]:
    """The items of a chunk job that have not ended, in order (a re-claimed chunk's ``running`` ones too)."""
    rows = await conn.fetch(
        f"SELECT {_ANALYSIS_COLS} FROM analyses WHERE job_id = $1 AND state NOT IN {_ENDED} ORDER BY position",
        job_id,
    )
    return [_analysis(r) for r in rows]


async def chunk_charged(conn: Conn, *, job_id: uuid.UUID) -> int:
    """Credits the chunk's ended items were charged (its job's usage)."""
    return int(
        await conn.fetchval("SELECT coalesce(sum(credits), 0) FROM analyses WHERE job_id = $1", job_id)
    )


async def end_items(conn: Conn, *, job_id: uuid.UUID, state: ItemState, code: str, message: str) -> int:
    """End every item of a chunk that has not ended (canceled or failed, with why); how many."""
    done = await conn.execute(
        "UPDATE analyses SET state = $3, error = $2, finished_at = now(), updated_at = now()"
        f" WHERE job_id = $1 AND state NOT IN {_ENDED}",
        job_id,
        {"code": code, "message": message},
        state.value,
    )
    return int(done.split()[-1])


async def retry_failed(conn: Conn, *, batch_id: uuid.UUID) -> list[tuple[uuid.UUID, list[uuid.UUID]]]:
    """Put the batch's failed items back to ``queued``: ``(chunk job id, the items' ids)`` of each chunk touched."""
    rows = await conn.fetch(
        "UPDATE analyses SET state = 'queued', error = NULL, finished_at = NULL, updated_at = now()"
        " WHERE batch_id = $1 AND state = 'failed' RETURNING id, job_id",
        batch_id,
    )
    per: dict[uuid.UUID, list[uuid.UUID]] = {}
    for r in rows:
        per.setdefault(r["job_id"], []).append(r["id"])
    return sorted(per.items())


async def move_items(conn: Conn, *, item_ids: Sequence[uuid.UUID], to_job: uuid.UUID) -> None:
    """Give these (retried) items to another chunk job; the old chunk's own queued items stay with it, so each
    chunk runs exactly the items its credit hold was sized for."""
    await conn.execute(
        "UPDATE analyses SET job_id = $2, updated_at = now() WHERE id = ANY($1::uuid[])",
        list(item_ids),
        to_job,
    )


async def batch_of_job(conn: Conn, *, job_id: uuid.UUID) -> uuid.UUID | None:
    """The batch whose progress job this is."""
    value = await conn.fetchval("SELECT id FROM batches WHERE job_id = $1", job_id)
    return value if isinstance(value, uuid.UUID) else None


async def chunk_jobs(conn: Conn, *, batch_id: uuid.UUID) -> list[uuid.UUID]:
    """The chunk jobs a batch's items belong to."""
    rows = await conn.fetch("SELECT DISTINCT job_id FROM analyses WHERE batch_id = $1", batch_id)
    return [r["job_id"] for r in rows]
