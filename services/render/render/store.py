"""The only module with SQL: the render schema's video read model, imports, projects, items and renders.

Invariants: a project's items have dense ranks 1..n and are rewritten as a whole, under the project's row lock
(``get_project(for_update=True)``), which also bumps ``version``; an import is answered once (``pending`` →
``ready``/``failed``); a render's row is written with its paid job in one transaction, and its output and video
are set by the lease-checked final transaction of that job and by ingest's answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import msgspec

from common.pagination import fetch_newest_first

from .models import ImportRef, ImportStatus, Item, Project, Render, VideoRef

Conn: TypeAlias = asyncpg.Connection

_PROJECT_COLS = (
    "id, owner_id, title, language, n, play_order, order_by, clip_seconds, target, source, options, version,"
    " created_at, updated_at"
)
_VIDEO_COLS = (
    "video_id, owner_id, storage_key, duration_s, width, height, audio_codec, title, uploader, platform"
)
_ITEM_COLS = (
    "id, rank, video_id, request_id, source_url, platform, uploader, own, title, caption, start_s, end_s,"
    " view_count, like_count, comment_count, counted_at"
)
_RENDER_COLS = (
    "r.id, r.project_id, r.owner_id, r.spec, r.estimated_s, r.credits, r.output_key, r.duration_s, r.video_id,"
    " r.output_deleted_at, r.created_at, j.status, j.progress, j.stage, j.error, j.updated_at"
)


def _convert(r: Mapping[str, Any], type_: type[Any]) -> Any:
    return msgspec.convert(dict(r), type_)


# --- videos (read model of ingest's events) ---------------------------------------------------------------


async def upsert_video(conn: Conn, *, video: VideoRef) -> None:
    """Record (or refresh) a video announced by ``video.ingested``; a deleted video stays deleted."""
    await conn.execute(
        f"INSERT INTO videos ({_VIDEO_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (video_id) DO UPDATE SET"
        " storage_key = EXCLUDED.storage_key, duration_s = EXCLUDED.duration_s, width = EXCLUDED.width,"
        " height = EXCLUDED.height, audio_codec = EXCLUDED.audio_codec, uploader = EXCLUDED.uploader,"
        " platform = EXCLUDED.platform, updated_at = now() WHERE videos.deleted_at IS NULL",
        video.video_id,
        video.owner_id,
        video.storage_key,
        video.duration_s,
        video.width,
        video.height,
        video.audio_codec,
        video.title,
        video.uploader,
        video.platform,
    )


async def get_videos(conn: Conn, *, video_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, VideoRef]:
    """The live videos among ``video_ids``, by id."""
    rows = await conn.fetch(
        f"SELECT {_VIDEO_COLS} FROM videos WHERE video_id = ANY($1::uuid[]) AND deleted_at IS NULL",
        list(video_ids),
    )
    return {r["video_id"]: _convert(r, VideoRef) for r in rows}


# --- imports (video.import_requested.v1 and ingest's answers) ----------------------------------------------


async def add_import(conn: Conn, *, request_id: str, owner_id: uuid.UUID, url: str) -> None:
    """Record an import request (its event goes to the outbox in the same transaction)."""
    await conn.execute(
        "INSERT INTO imports (request_id, owner_id, url) VALUES ($1, $2, $3)", request_id, owner_id, url
    )


async def answer_import(
    conn: Conn,
    *,
    request_id: str,
    owner_id: uuid.UUID,
    video_id: uuid.UUID | None = None,
    error: Mapping[str, str] | None = None,
) -> bool:
    """Ingest answered a pending import of this owner: ``ready`` with its video, or ``failed``. False otherwise."""
    status = ImportStatus.READY if video_id is not None else ImportStatus.FAILED
    done = await conn.fetchval(
        "UPDATE imports SET status = $3, video_id = $4, error = $5, updated_at = now()"
        " WHERE request_id = $1 AND owner_id = $2 AND status = 'pending' RETURNING true",
        request_id,
        owner_id,
        status.value,
        video_id,
        dict(error) if error is not None else None,
    )
    return bool(done)


async def credit_items(conn: Conn, *, request_id: str, uploader: str, platform: str) -> None:
    """The items waiting for the import ``request_id`` are credited as ingest found the source: its uploader and
    platform, where ingest named them (what a search read or a URL's host said stays otherwise)."""
    await conn.execute(
        "UPDATE items SET uploader = CASE WHEN $2 <> '' THEN $2 ELSE uploader END,"
        " platform = CASE WHEN $3 <> '' THEN $3 ELSE platform END WHERE request_id = $1",
        request_id,
        uploader,
        platform,
    )


async def get_imports(conn: Conn, *, request_ids: Sequence[str]) -> dict[str, ImportRef]:
    """The imports among ``request_ids``, by request id."""
    rows = await conn.fetch(
        "SELECT request_id, status, video_id, error FROM imports WHERE request_id = ANY($1::text[])",
        list(request_ids),
    )
    return {r["request_id"]: _convert(r, ImportRef) for r in rows}


# --- projects and items -----------------------------------------------------------------------------------


async def insert_project(conn: Conn, *, project: Project) -> None:
    """Insert a project and its items."""
    await conn.execute(
        f"INSERT INTO projects ({_PROJECT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        project.id,
        project.owner_id,
        project.title,
        project.language,
        project.n,
        project.play_order.value,
        project.order_by.value,
        project.clip_seconds,
        project.target.value,
        project.source,
        msgspec.to_builtins(project.options),
        project.version,
        project.created_at,
        project.updated_at,
    )
    await _insert_items(conn, project_id=project.id, items=project.items)


async def _insert_items(conn: Conn, *, project_id: uuid.UUID, items: Sequence[Item]) -> None:
    await conn.executemany(
        f"INSERT INTO items (project_id, {_ITEM_COLS})"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        [
            (
                project_id,
                i.id,
                i.rank,
                i.video_id,
                i.request_id,
                i.source_url,
                i.platform,
                i.uploader,
                i.own,
                i.title,
                i.caption,
                i.start_s,
                i.end_s,
                i.view_count,
                i.like_count,
                i.comment_count,
                i.counted_at,
            )
            for i in items
        ],
    )


async def get_project(conn: Conn, *, project_id: uuid.UUID, for_update: bool = False) -> Project | None:
    """A project with its items (rank 1 first), optionally row-locked, or None."""
    lock = " FOR UPDATE" if for_update else ""
    r = await conn.fetchrow(f"SELECT {_PROJECT_COLS} FROM projects WHERE id = $1{lock}", project_id)
    if r is None:
        return None
    items = await conn.fetch(
        f"SELECT {_ITEM_COLS} FROM items WHERE project_id = $1 ORDER BY rank", project_id
    )
    return msgspec.convert({**dict(r), "items": [dict(i) for i in items]}, Project)


async def update_project(conn: Conn, *, project: Project, items_changed: bool) -> Project:
    """Write a locked project's settings (and its items when they changed); its version goes up by one."""
    r = await conn.fetchrow(
        "UPDATE projects SET title = $2, n = $3, play_order = $4, target = $5, options = $6,"
        f" version = version + 1, updated_at = now() WHERE id = $1 RETURNING {_PROJECT_COLS}",
        project.id,
        project.title,
        len(project.items),
        project.play_order.value,
        project.target.value,
        msgspec.to_builtins(project.options),
    )
    if items_changed:
        await conn.execute("DELETE FROM items WHERE project_id = $1", project.id)
        await _insert_items(conn, project_id=project.id, items=project.items)
    return msgspec.convert({**dict(r), "items": [msgspec.to_builtins(i) for i in project.items]}, Project)


async def list_projects(
    conn: Conn, *, owner_id: uuid.UUID, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Project]:
    """The owner's projects newest first (without items), ``limit`` after the keyset ``after``."""
    query = f"SELECT {_PROJECT_COLS} FROM projects WHERE owner_id = $1"
    rows = await fetch_newest_first(conn, query, owner_id, limit=limit, after=after)
    return [_convert(r, Project) for r in rows]


# --- renders ----------------------------------------------------------------------------------------------


async def insert_render(
    conn: Conn,
    *,
    render_id: uuid.UUID,
    project_id: uuid.UUID,
    owner_id: uuid.UUID,
    spec: Mapping[str, Any],
    estimated_s: float,
    credits: int,
) -> None:
    """A render's row, beside its paid job (same id) in the caller's transaction."""
    await conn.execute(
        "INSERT INTO renders (id, project_id, owner_id, spec, estimated_s, credits) VALUES ($1, $2, $3, $4, $5, $6)",
        render_id,
        project_id,
        owner_id,
        dict(spec),
        estimated_s,
        credits,
    )


async def _renders(conn: Conn, where: str, *args: Any) -> list[Render]:
    rows = await conn.fetch(
        f"SELECT {_RENDER_COLS} FROM renders r JOIN jobs j ON j.id = r.id WHERE {where}"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT 50",
        *args,
    )
    return [_convert(r, Render) for r in rows]


async def get_render(conn: Conn, *, render_id: uuid.UUID) -> Render | None:
    """A render with its job's state, or None."""
    found = await _renders(conn, "r.id = $1", render_id)
    return found[0] if found else None


async def list_renders(conn: Conn, *, project_id: uuid.UUID) -> list[Render]:
    """A project's 50 newest renders, newest first."""
    return await _renders(conn, "r.project_id = $1", project_id)


async def set_render_output(conn: Conn, *, render_id: uuid.UUID, output_key: str, duration_s: float) -> None:
    """The render's file is stored (in its job's final transaction)."""
    await conn.execute(
        "UPDATE renders SET output_key = $2, duration_s = $3 WHERE id = $1", render_id, output_key, duration_s
    )


async def set_render_video(
    conn: Conn, *, render_id: uuid.UUID, owner_id: uuid.UUID, video_id: uuid.UUID
) -> bool:
    """Ingest registered the render's output as this video; False when no such render of this owner."""
    done = await conn.fetchval(
        "UPDATE renders SET video_id = $3 WHERE id = $1 AND owner_id = $2 RETURNING true",
        render_id,
        owner_id,
        video_id,
    )
    return bool(done)


async def drop_deleted_outputs(conn: Conn, *, video_id: uuid.UUID) -> list[str]:
    """The renders registered as ``video_id``, when its owner deleted that video (the read model says so): each is
    marked as having lost its output, once; the keys of the outputs to delete."""
    rows = await conn.fetch(
        "UPDATE renders r SET output_deleted_at = now() FROM videos v"
        " WHERE r.video_id = $1 AND v.video_id = r.video_id AND v.owner_id = r.owner_id"
        " AND v.deleted_at IS NOT NULL AND r.output_deleted_at IS NULL AND r.output_key IS NOT NULL"
        " RETURNING r.output_key",
        video_id,
    )
    return [r["output_key"] for r in rows]
