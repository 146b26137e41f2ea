"""The videos read model a consumer of ingest's events keeps in its own schema (table ``videos``).

Each service's table has at least ``video_id`` (primary key), ``owner_id``, ``storage_key``, ``duration_s``,
``deleted_at`` and ``updated_at``; the columns it adds have defaults. Its upserts skip deleted rows, so a late
``video.ingested`` redelivery never brings a deleted video back.
"""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

__all__ = ["VideoRow", "mark_video_deleted"]


class VideoRow(msgspec.Struct, kw_only=True, frozen=True):
    """The columns every service's ``videos`` row has (from ``video.ingested``); a service's record adds its own."""

    video_id: uuid.UUID
    owner_id: uuid.UUID
    storage_key: str
    duration_s: float


async def mark_video_deleted(conn: asyncpg.Connection, *, video_id: uuid.UUID, owner_id: uuid.UUID) -> None:
    """Remember the delete (a late ``video.ingested`` redelivery must not bring the video back)."""
    await conn.execute(
        "INSERT INTO videos (video_id, owner_id, storage_key, duration_s, deleted_at) VALUES ($1, $2, '', 0, now())"
        " ON CONFLICT (video_id) DO UPDATE SET deleted_at = now(), updated_at = now()",
        video_id,
        owner_id,
    )
