"""The only module with SQL: videos, imports and searches in the ingest schema (job leases: ``common.jobrunner``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from common.db import contains_pattern
from common.events.ingest import SearchResult
from common.jobs import Job, create_job
from common.pagination import fetch_newest_first

from .models import Video

_VIDEO_COLS = (
    "id, owner_id, title, description, source, source_url, source_ref, storage_key, container, content_type, duration_s,"
    " width, height, rotation, fps, video_codec, audio_codec, audio_only, size_bytes, uploader, platform, created_at"
)
_RESULT_COLS = (
    "position, platform_id, url, title, uploader, view_count, like_count, comment_count, duration_s,"
    " thumbnail_url, published_at"
)
ACTIVE = ("queued", "running")


def _video(r: asyncpg.Record) -> Video:
    return Video(**dict(r))


async def _row_dict(conn: asyncpg.Connection, sql: str, *args: Any) -> dict[str, Any] | None:
    """The one row ``sql`` selects, as a dict (None when there is none)."""
    r = await conn.fetchrow(sql, *args)
    return dict(r) if r else None


class JobRequests:
    """A table of requests that each run as one job (imports, searches): rows written with their queued job, and
    read with their job's state. ``columns`` are the request's own, as written; ``results`` are filled in later."""

    def __init__(
        self, kind: str, table: str, columns: tuple[str, ...], results: tuple[str, ...] = ()
    ) -> None:
        self.kind = kind
        shown = ", ".join(f"r.{c}" for c in (*columns, *results))
        self._select = (
            f"SELECT r.id, r.job_id, r.owner_id, {shown}, r.created_at, j.status, j.progress, j.stage, j.error"
            f" FROM {table} r JOIN jobs j ON j.id = r.job_id"
        )
        written = ("id", "job_id", "owner_id", *columns)
        places = ", ".join(f"${i}" for i in range(1, len(written) + 1))
        self._insert = f"INSERT INTO {table} ({', '.join(written)}) VALUES ({places})"

    async def create(
        self,
        conn: asyncpg.Connection,
        values: Sequence[Any],
        *,
        owner_id: uuid.UUID,
        params: dict[str, Any],
        producer: str,
        correlation_id: str,
    ) -> tuple[Job, uuid.UUID]:
        """Queue a request: its job (``params`` + ``<kind>_id``; the job's snapshot in the outbox) and its row
        (``values`` of the ``columns``); the job and the request's id."""
        request_id = uuid.uuid4()
        job = await create_job(
            conn,
            kind=self.kind,
            owner_id=owner_id,
            producer=producer,
            stage="queued",
            params={**params, f"{self.kind}_id": str(request_id)},
            correlation_id=correlation_id,
        )
        await conn.execute(self._insert, request_id, job.id, owner_id, *values)
        return job, request_id

    async def get(
        self, conn: asyncpg.Connection, *, row_id: uuid.UUID, owner_id: uuid.UUID
    ) -> dict[str, Any] | None:
        """A request of ``owner_id`` with its job's state."""
        return await _row_dict(conn, self._select + " WHERE r.id = $1 AND r.owner_id = $2", row_id, owner_id)

    async def for_job(self, conn: asyncpg.Connection, *, job_id: uuid.UUID) -> dict[str, Any] | None:
        """The request a job runs."""
        return await self.find(conn, "r.job_id = $1", job_id)

    async def find(self, conn: asyncpg.Connection, where: str, *args: Any) -> dict[str, Any] | None:
        """The first request matching ``where`` (a condition on ``r.``, the request's columns)."""
        return await _row_dict(conn, f"{self._select} WHERE {where}", *args)


IMPORTS = JobRequests(
    "import", "imports", ("url", "title", "allow_audio_only"), results=("video_id", "request_id")
)
SEARCHES = JobRequests("search", "searches", ("platform", "query", "max_results", "target"))


# -- videos -------------------------------------------------------------------------------------------------


class OriginalSwept(Exception):
    """The intent of an original was swept (its object deleted) before its video was registered."""


async def insert_video(conn: asyncpg.Connection, *, video: Video) -> Video | None:
    """Insert a video and clear its original's intent (``ingest.originals``); None when its ``source_ref`` is
    already registered (a redelivery or a racing attempt). ``OriginalSwept`` when the sweep removed the object."""
    r = await conn.fetchrow(
        f"INSERT INTO videos ({_VIDEO_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
        " $14, $15, $16, $17, $18, $19, $20, $21, now()) ON CONFLICT (source_ref) DO NOTHING"
        f" RETURNING {_VIDEO_COLS}",
        video.id,
        video.owner_id,
        video.title,
        video.description,
        video.source,
        video.source_url,
        video.source_ref,
        video.storage_key,
        video.container,
        video.content_type,
        video.duration_s,
        video.width,
        video.height,
        video.rotation,
        video.fps,
        video.video_codec,
        video.audio_codec,
        video.audio_only,
        video.size_bytes,
        video.uploader,
        video.platform,
    )
    if r is None:
        return None
    # waits for a sweep that holds the intent, then sees it gone: the object was deleted, roll back
    if (
        await conn.fetchval("DELETE FROM original_intents WHERE video_id = $1 RETURNING true", video.id)
        is None
    ):
        raise OriginalSwept(f"the original of video {video.id} was swept before its row was committed")
    return _video(r)


# -- original intents (ingest.originals) -------------------------------------------------------------------


_RECORD_INTENT = "INSERT INTO original_intents (video_id) VALUES ($1) ON CONFLICT (video_id) DO UPDATE SET created_at = now()"


async def record_original_intent(conn: asyncpg.Connection, *, video_id: uuid.UUID) -> None:
    """Record (or renew, on a retry) that an original is about to be written for ``video_id``."""
    await conn.execute(_RECORD_INTENT, video_id)


async def stale_original_intents(
    conn: asyncpg.Connection, *, older_than_s: float, limit: int
) -> list[uuid.UUID]:
    """Intents older than ``older_than_s``, locked for the caller's transaction (others' locked ones skipped)."""
    rows = await conn.fetch(
        "SELECT video_id FROM original_intents WHERE created_at < now() - make_interval(secs => $1)"
        " ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        older_than_s,
        limit,
    )
    return [r["video_id"] for r in rows]


async def registered_video_ids(conn: asyncpg.Connection, *, video_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``video_ids`` have a video row."""
    rows = await conn.fetch("SELECT id FROM videos WHERE id = ANY($1::uuid[])", list(video_ids))
    return {r["id"] for r in rows}


async def forget_original_intents(conn: asyncpg.Connection, *, video_ids: Sequence[uuid.UUID]) -> None:
    """Delete intents (their objects are registered or deleted)."""
    await conn.execute("DELETE FROM original_intents WHERE video_id = ANY($1::uuid[])", list(video_ids))


async def get_video(conn: asyncpg.Connection, *, video_id: uuid.UUID, owner_id: uuid.UUID) -> Video | None:
    """A video of ``owner_id``."""
    r = await conn.fetchrow(
        f"SELECT {_VIDEO_COLS} FROM videos WHERE id = $1 AND owner_id = $2", video_id, owner_id
    )
    return _video(r) if r else None


async def update_video(
    conn: asyncpg.Connection,
    *,
    video_id: uuid.UUID,
    owner_id: uuid.UUID,
    title: str | None,
    description: str | None,
) -> Video | None:
    """Rename and/or describe a video of ``owner_id`` (None: unchanged); the video, or None."""
    r = await conn.fetchrow(
        "UPDATE videos SET title = COALESCE($3, title), description = COALESCE($4, description)"
        f" WHERE id = $1 AND owner_id = $2 RETURNING {_VIDEO_COLS}",
        video_id,
        owner_id,
        title,
        description,
    )
    return _video(r) if r else None


async def list_videos(
    conn: asyncpg.Connection,
    *,
    owner_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
    title_contains: str = "",
) -> list[Video]:
    """The owner's videos, newest first, after the keyset cursor ``before``; only those whose title contains
    ``title_contains`` (any case, taken literally) when it is given."""
    query = f"SELECT {_VIDEO_COLS} FROM videos WHERE owner_id = $1"
    args: list[Any] = [owner_id]
    if title_contains:
        query += " AND title ILIKE $2 ESCAPE '\\'"
        args.append(contains_pattern(title_contains))
    return [_video(r) for r in await fetch_newest_first(conn, query, *args, limit=limit, after=before)]


async def delete_video(conn: asyncpg.Connection, *, video_id: uuid.UUID, owner_id: uuid.UUID) -> Video | None:
    """Delete a video of ``owner_id``; the deleted row, or None."""
    r = await conn.fetchrow(
        f"DELETE FROM videos WHERE id = $1 AND owner_id = $2 RETURNING {_VIDEO_COLS}", video_id, owner_id
    )
    return _video(r) if r else None


async def video_by_source_ref(conn: asyncpg.Connection, *, source_ref: str) -> Video | None:
    """The video registered for ``source_ref`` (render, migration, import), if any."""
    r = await conn.fetchrow(f"SELECT {_VIDEO_COLS} FROM videos WHERE source_ref = $1", source_ref)
    return _video(r) if r else None


async def count_videos(conn: asyncpg.Connection, *, owner_id: uuid.UUID | None = None) -> int:
    """How many videos (of one owner)."""
    if owner_id is None:
        return int(await conn.fetchval("SELECT count(*) FROM videos"))
    return int(await conn.fetchval("SELECT count(*) FROM videos WHERE owner_id = $1", owner_id))


# -- imports ------------------------------------------------------------------------------------------------


async def _lock(conn: asyncpg.Connection, key: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def lock_import_key(conn: asyncpg.Connection, *, owner_id: uuid.UUID, url: str) -> None:
    """Serialize import requests of one owner for one URL until the transaction ends (dedupe without a race)."""
    await _lock(conn, f"import:{owner_id}:{url}")


async def lock_import_request(conn: asyncpg.Connection, *, request_id: str) -> None:
    """Serialize the commands carrying one request id until the transaction ends (one import per request)."""
    await _lock(conn, f"import-request:{request_id}")


async def active_import(conn: asyncpg.Connection, *, owner_id: uuid.UUID, url: str) -> dict[str, Any] | None:
    """The owner's queued or running import of ``url``."""
    return await _row_dict(
        conn,
        "SELECT i.id, i.job_id FROM imports i JOIN jobs j ON j.id = i.job_id"
        " WHERE i.owner_id = $1 AND i.url = $2 AND j.status = ANY($3::text[]) ORDER BY i.created_at LIMIT 1",
        owner_id,
        url,
        list(ACTIVE),
    )


async def create_import(
    conn: asyncpg.Connection,
    *,
    import_id: uuid.UUID,
    job_id: uuid.UUID,
    owner_id: uuid.UUID,
    url: str,
    title: str,
    allow_audio_only: bool,
    request_id: str | None = None,
) -> None:
    """Record an import (its job row exists already); ``request_id``: the command's, unique."""
    await conn.execute(
        "INSERT INTO imports (id, job_id, owner_id, url, title, allow_audio_only, request_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        import_id,
        job_id,
        owner_id,
        url,
        title,
        allow_audio_only,
        request_id,
    )


async def import_by_request(conn: asyncpg.Connection, *, request_id: str) -> dict[str, Any] | None:
    """The import a ``video.import_requested.v1`` command with ``request_id`` created."""
    return await IMPORTS.find(conn, "r.request_id = $1", request_id)


async def set_import_video(conn: asyncpg.Connection, *, import_id: uuid.UUID, video_id: uuid.UUID) -> None:
    """Link an import to the video it produced."""
    await conn.execute("UPDATE imports SET video_id = $2 WHERE id = $1", import_id, video_id)


# -- searches -----------------------------------------------------------------------------------------------


async def create_search(
    conn: asyncpg.Connection,
    *,
    owner_id: uuid.UUID,
    platform: str,
    query: str,
    max_results: int,
    target: str,
    producer: str,
    correlation_id: str = "",
) -> tuple[Job, uuid.UUID]:
    """Queue a search: its job (+ the job's snapshot in the outbox) and its row; the job and the search's id."""
    return await SEARCHES.create(
        conn,
        (platform, query, max_results, target),
        owner_id=owner_id,
        params={"platform": platform, "query": query, "limit": max_results},
        producer=producer,
        correlation_id=correlation_id,
    )


async def replace_search_results(
    conn: asyncpg.Connection, *, search_id: uuid.UUID, results: Sequence[SearchResult]
) -> None:
    """Store a search's results (a retried job replaces what an earlier attempt wrote)."""
    await conn.execute("DELETE FROM search_results WHERE search_id = $1", search_id)
    await conn.executemany(
        f"INSERT INTO search_results (search_id, {_RESULT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11, $12)",
        [
            (
                search_id,
                r.position,
                r.platform_id,
                r.url,
                r.title,
                r.uploader,
                r.view_count,
                r.like_count,
                r.comment_count,
                r.duration_s,
                r.thumbnail_url,
                r.published_at,
            )
            for r in results
        ],
    )


_ORDER = {
    "relevance": "position",
    "views": "view_count DESC NULLS LAST, position",
    "likes": "like_count DESC NULLS LAST, view_count DESC NULLS LAST, position",
    "comments": "comment_count DESC NULLS LAST, position",
    "recent": "published_at DESC NULLS LAST, position",
}
SORTS = tuple(_ORDER)


async def search_results(conn: asyncpg.Connection, *, search_id: uuid.UUID, sort: str) -> list[SearchResult]:
    """A search's results in the order ``sort`` names (one of ``SORTS``)."""
    rows = await conn.fetch(
        f"SELECT {_RESULT_COLS} FROM search_results WHERE search_id = $1 ORDER BY {_ORDER[sort]}", search_id
    )
    return [SearchResult(**dict(r)) for r in rows]
