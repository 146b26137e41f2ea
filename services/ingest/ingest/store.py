"""The only module with SQL: videos, imports and searches in the ingest schema (job leases: ``common.jobrunner``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from .models import SearchResult, Video

_VIDEO_COLS = (
    "id, owner_id, title, source, source_url, source_ref, storage_key, container, content_type, duration_s,"
    " width, height, rotation, fps, video_codec, audio_codec, audio_only, size_bytes, created_at"
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


# -- videos -------------------------------------------------------------------------------------------------


async def insert_video(conn: asyncpg.Connection, *, video: Video) -> Video | None:
    """Insert a video; None when its ``source_ref`` is already registered (a redelivery or a racing attempt)."""
    r = await conn.fetchrow(
        f"INSERT INTO videos ({_VIDEO_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
        " $14, $15, $16, $17, $18, now()) ON CONFLICT (source_ref) DO NOTHING"
        f" RETURNING {_VIDEO_COLS}",
        video.id,
        video.owner_id,
        video.title,
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
    )
    return _video(r) if r else None


async def get_video(conn: asyncpg.Connection, *, video_id: uuid.UUID, owner_id: uuid.UUID) -> Video | None:
    """A video of ``owner_id``."""
    r = await conn.fetchrow(
        f"SELECT {_VIDEO_COLS} FROM videos WHERE id = $1 AND owner_id = $2", video_id, owner_id
    )
    return _video(r) if r else None


async def list_videos(
    conn: asyncpg.Connection,
    *,
    owner_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[Video]:
    """The owner's videos, newest first, after the keyset cursor ``before``."""
    if before is None:
        rows = await conn.fetch(
            f"SELECT {_VIDEO_COLS} FROM videos WHERE owner_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            owner_id,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"SELECT {_VIDEO_COLS} FROM videos WHERE owner_id = $1 AND (created_at, id) < ($2, $3)"
            " ORDER BY created_at DESC, id DESC LIMIT $4",
            owner_id,
            before[0],
            before[1],
            limit,
        )
    return [_video(r) for r in rows]


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


async def lock_import_key(conn: asyncpg.Connection, *, owner_id: uuid.UUID, url: str) -> None:
    """Serialize import requests of one owner for one URL until the transaction ends (dedupe without a race)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"import:{owner_id}:{url}")


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
) -> None:
    """Record an import (its job row exists already)."""
    await conn.execute(
        "INSERT INTO imports (id, job_id, owner_id, url, title, allow_audio_only) VALUES ($1, $2, $3, $4, $5, $6)",
        import_id,
        job_id,
        owner_id,
        url,
        title,
        allow_audio_only,
    )


_IMPORT_SELECT = (
    "SELECT i.id, i.job_id, i.owner_id, i.url, i.title, i.allow_audio_only, i.video_id, i.created_at,"
    " j.status, j.progress, j.stage, j.error FROM imports i JOIN jobs j ON j.id = i.job_id"
)


async def get_import(
    conn: asyncpg.Connection, *, import_id: uuid.UUID, owner_id: uuid.UUID
) -> dict[str, Any] | None:
    """An import of ``owner_id`` with its job's state."""
    return await _row_dict(conn, _IMPORT_SELECT + " WHERE i.id = $1 AND i.owner_id = $2", import_id, owner_id)


async def import_for_job(conn: asyncpg.Connection, *, job_id: uuid.UUID) -> dict[str, Any] | None:
    """The import a job runs."""
    return await _row_dict(conn, _IMPORT_SELECT + " WHERE i.job_id = $1", job_id)


async def set_import_video(conn: asyncpg.Connection, *, import_id: uuid.UUID, video_id: uuid.UUID) -> None:
    """Link an import to the video it produced."""
    await conn.execute("UPDATE imports SET video_id = $2 WHERE id = $1", import_id, video_id)


# -- searches -----------------------------------------------------------------------------------------------


async def create_search(
    conn: asyncpg.Connection,
    *,
    search_id: uuid.UUID,
    job_id: uuid.UUID,
    owner_id: uuid.UUID,
    platform: str,
    query: str,
    max_results: int,
    target: str,
) -> None:
    """Record a search (its job row exists already)."""
    await conn.execute(
        "INSERT INTO searches (id, job_id, owner_id, platform, query, max_results, target)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        search_id,
        job_id,
        owner_id,
        platform,
        query,
        max_results,
        target,
    )


_SEARCH_SELECT = (
    "SELECT s.id, s.job_id, s.owner_id, s.platform, s.query, s.max_results, s.target, s.created_at,"
    " j.status, j.progress, j.stage, j.error FROM searches s JOIN jobs j ON j.id = s.job_id"
)


async def get_search(
    conn: asyncpg.Connection, *, search_id: uuid.UUID, owner_id: uuid.UUID
) -> dict[str, Any] | None:
    """A search of ``owner_id`` with its job's state."""
    return await _row_dict(conn, _SEARCH_SELECT + " WHERE s.id = $1 AND s.owner_id = $2", search_id, owner_id)


async def search_for_job(conn: asyncpg.Connection, *, job_id: uuid.UUID) -> dict[str, Any] | None:
    """The search a job runs."""
    return await _row_dict(conn, _SEARCH_SELECT + " WHERE s.job_id = $1", job_id)


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
