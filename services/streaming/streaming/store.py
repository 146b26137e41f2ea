"""Streams' SQL: streams, renditions, subtitle tracks, and the bucket-import ledger (``webhook_store`` has the
webhooks')."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from common.db import inserted

if TYPE_CHECKING:
    from .media.probe import SourceInfo

STATUSES = ("processing", "playable", "ready", "error")


@dataclass(frozen=True, kw_only=True)
class RenditionRecord:
    """One complete (or in-progress) rendition of a stream."""

    name: str
    kind: str  # video | audio | subtitle
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float
    playlist_key: str
    segment_count: int
    size_bytes: int
    copy: bool
    complete: bool


@dataclass(frozen=True, kw_only=True)
class SubtitleTrack:
    """A WebVTT track in the stream's SUBTITLES group."""

    language: str
    label: str
    key: str


@dataclass(frozen=True, kw_only=True)
class StreamRecord:
    """A video's stream as the worker, the API and playback see it.

    ``renditions`` holds only complete renditions (video first, highest bandwidth first, then audio).
    """

    video_id: uuid.UUID
    owner_id: uuid.UUID
    status: str
    duration_s: float
    width: int
    height: int
    error: dict[str, str] | None
    renditions: list[RenditionRecord]
    has_dash: bool
    created_at: datetime
    updated_at: datetime
    job_id: uuid.UUID | None = None
    source_key: str = ""
    poster_key: str | None = None
    sprite_key: str | None = None
    thumbnails_vtt_key: str | None = None
    attempts: int = 0
    subtitles: list[SubtitleTrack] = field(default_factory=list)

    @property
    def video_renditions(self) -> list[RenditionRecord]:
        """Complete video renditions, highest bandwidth first."""
        return [r for r in self.renditions if r.kind == "video"]


_STREAM_COLS = (
    "video_id, owner_id, job_id, status, source_key, duration_s, width, height, error, has_dash,"
    " poster_key, sprite_key, thumbnails_vtt_key, attempts, created_at, updated_at"
)
_REND_COLS = (
    "name, kind, width, height, bandwidth, average_bandwidth, codecs, frame_rate, playlist_key, segment_count,"
    " size_bytes, copy, complete"
)


async def get_stream(
    conn: asyncpg.Connection, *, video_id: uuid.UUID, for_update: bool = False
) -> StreamRecord | None:
    """A live (not deleted) stream with its complete renditions and subtitle tracks, or None."""
    row = await conn.fetchrow(
        f"SELECT {_STREAM_COLS} FROM streams WHERE video_id = $1 AND deleted_at IS NULL"
        + (" FOR UPDATE" if for_update else ""),
        video_id,
    )
    if row is None:
        return None
    rends = await conn.fetch(
        f"SELECT {_REND_COLS} FROM renditions WHERE video_id = $1 AND complete"
        " ORDER BY (kind = 'video') DESC, bandwidth DESC, name",
        video_id,
    )
    subs = await conn.fetch(
        "SELECT language, label, key FROM subtitle_tracks WHERE video_id = $1 ORDER BY language", video_id
    )
    return StreamRecord(
        **dict(row),
        renditions=[RenditionRecord(**dict(r)) for r in rends],
        subtitles=[SubtitleTrack(**dict(s)) for s in subs],
    )


@dataclass(frozen=True, kw_only=True)
class StreamState:
    """What a card shows of a stream: its status, why it failed, whether it has a poster."""

    video_id: uuid.UUID
    status: str
    error: dict[str, str] | None
    poster_key: str | None


async def stream_states(
    conn: asyncpg.Connection, *, owner_id: uuid.UUID, video_ids: Sequence[uuid.UUID]
) -> list[StreamState]:
    """The live streams among ``video_ids`` that ``owner_id`` owns (others are simply absent), by primary key."""
    rows = await conn.fetch(
        "SELECT video_id, status, error, poster_key FROM streams"
        " WHERE video_id = ANY($1::uuid[]) AND owner_id = $2 AND deleted_at IS NULL",
        list(video_ids),
        owner_id,
    )
    return [StreamState(**dict(r)) for r in rows]


async def create_stream(
    conn: asyncpg.Connection,
    *,
    video_id: uuid.UUID,
    owner_id: uuid.UUID,
    source_key: str,
    duration_s: float,
    width: int,
    height: int,
    has_dash: bool,
) -> bool:
    """Insert a ``processing`` stream; False when it already exists (a redelivery or a re-ingest)."""
    return await inserted(
        conn,
        "INSERT INTO streams (video_id, owner_id, source_key, duration_s, width, height, has_dash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (video_id) DO NOTHING RETURNING true",
        video_id,
        owner_id,
        source_key,
        duration_s,
        width,
        height,
        has_dash,
    )


async def is_live(conn: asyncpg.Connection, *, video_id: uuid.UUID) -> bool:
    """Whether the video has a stream that was not deleted (checked by every /play request)."""
    return bool(
        await conn.fetchval("SELECT true FROM streams WHERE video_id = $1 AND deleted_at IS NULL", video_id)
    )


async def is_deleted(conn: asyncpg.Connection, *, video_id: uuid.UUID) -> bool:
    """Whether the video was deleted (its stream is a tombstone)."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM streams WHERE video_id = $1 AND deleted_at IS NOT NULL", video_id
        )
    )


async def mark_deleted(
    conn: asyncpg.Connection, *, video_id: uuid.UUID, owner_id: uuid.UUID
) -> uuid.UUID | None:
    """Make the stream a tombstone (inserted when ``video.ingested`` has not arrived yet, so it never will
    create one), drop its renditions and tracks; the transcode job to cancel, if any. Idempotent."""
    job_id: uuid.UUID | None = await conn.fetchval(
        "INSERT INTO streams (video_id, owner_id, source_key, deleted_at) VALUES ($1, $2, '', now())"
        " ON CONFLICT (video_id) DO UPDATE SET deleted_at = COALESCE(streams.deleted_at, now()),"
        " updated_at = now() RETURNING job_id",
        video_id,
        owner_id,
    )
    await conn.execute("DELETE FROM renditions WHERE video_id = $1", video_id)
    await conn.execute("DELETE FROM subtitle_tracks WHERE video_id = $1", video_id)
    return job_id


async def set_job(conn: asyncpg.Connection, *, video_id: uuid.UUID, job_id: uuid.UUID) -> None:
    """Attach the transcode job to the stream."""
    await conn.execute(
        "UPDATE streams SET job_id = $2, updated_at = now() WHERE video_id = $1", video_id, job_id
    )


async def start_attempt(conn: asyncpg.Connection, *, video_id: uuid.UUID) -> int:
    """Count one more worker attempt on this stream; returns the attempt number."""
    n: int = await conn.fetchval(
        "UPDATE streams SET attempts = attempts + 1, updated_at = now() WHERE video_id = $1 RETURNING attempts",
        video_id,
    )
    return n


async def update_probe(conn: asyncpg.Connection, *, video_id: uuid.UUID, info: SourceInfo) -> None:
    """Record what the worker's own probe found (display size after rotation; an audio-only source gets no
    DASH presentation)."""
    await conn.execute(
        "UPDATE streams SET duration_s = $2, width = $3, height = $4, has_dash = has_dash AND $5,"
        " updated_at = now() WHERE video_id = $1",
        video_id,
        info.duration_s,
        info.display_width,
        info.display_height,
        info.has_video,
    )


async def set_status(
    conn: asyncpg.Connection,
    *,
    video_id: uuid.UUID,
    status: str,
    error: Mapping[str, str] | None = None,
) -> None:
    """Move a stream to ``status`` (error cleared unless given)."""
    if status not in STATUSES:
        raise ValueError(f"unknown stream status {status!r}")
    await conn.execute(
        "UPDATE streams SET status = $2, error = $3, updated_at = now() WHERE video_id = $1",
        video_id,
        status,
        dict(error) if error is not None else None,
    )


async def set_thumbnails(
    conn: asyncpg.Connection,
    *,
    video_id: uuid.UUID,
    poster_key: str,
    sprite_key: str,
    thumbnails_vtt_key: str,
) -> None:
    """Record the poster, sprite and thumbnail index keys."""
    await conn.execute(
        "UPDATE streams SET poster_key = $2, sprite_key = $3, thumbnails_vtt_key = $4, updated_at = now()"
        " WHERE video_id = $1",
        video_id,
        poster_key,
        sprite_key,
        thumbnails_vtt_key,
    )


async def complete_rendition(
    conn: asyncpg.Connection,
    *,
    video_id: uuid.UUID,
    name: str,
    kind: str,
    width: int,
    height: int,
    bandwidth: int,
    average_bandwidth: int,
    codecs: str,
    frame_rate: float,
    playlist_key: str,
    segment_count: int,
    size_bytes: int,
    copy: bool,
) -> None:
    """Record a rendition whose files are all uploaded under their final keys (idempotent per name)."""
    await conn.execute(
        "INSERT INTO renditions (video_id, name, kind, width, height, bandwidth, average_bandwidth, codecs,"
        " frame_rate, playlist_key, segment_count, size_bytes, copy, complete, completed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, true, now())"
        " ON CONFLICT (video_id, name) DO UPDATE SET kind = EXCLUDED.kind, width = EXCLUDED.width,"
        " height = EXCLUDED.height, bandwidth = EXCLUDED.bandwidth, average_bandwidth = EXCLUDED.average_bandwidth,"
        " codecs = EXCLUDED.codecs, frame_rate = EXCLUDED.frame_rate, playlist_key = EXCLUDED.playlist_key,"
        " segment_count = EXCLUDED.segment_count, size_bytes = EXCLUDED.size_bytes, copy = EXCLUDED.copy,"
        " complete = true, completed_at = now()",
        video_id,
        name,
        kind,
        width,
        height,
        bandwidth,
        average_bandwidth,
        codecs,
        frame_rate,
        playlist_key,
        segment_count,
        size_bytes,
        copy,
    )


async def completed_rendition_names(conn: asyncpg.Connection, *, video_id: uuid.UUID) -> set[str]:
    """Names of the renditions already complete (skipped on a retry)."""
    rows = await conn.fetch("SELECT name FROM renditions WHERE video_id = $1 AND complete", video_id)
    return {r["name"] for r in rows}


async def count_renditions(conn: asyncpg.Connection, *, video_id: uuid.UUID) -> dict[str, int]:
    """How many rows each rendition name has (diagnostics and tests: never more than one)."""
    rows = await conn.fetch(
        "SELECT name, count(*) AS n FROM renditions WHERE video_id = $1 GROUP BY name", video_id
    )
    return {r["name"]: int(r["n"]) for r in rows}


async def upsert_subtitle_tracks(
    conn: asyncpg.Connection, *, video_id: uuid.UUID, tracks: Sequence[tuple[str, str, str, str]]
) -> None:
    """Add or replace subtitle tracks ``(language, label, key, source_key)``."""
    await conn.executemany(
        "INSERT INTO subtitle_tracks (video_id, language, label, key, source_key) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (video_id, language) DO UPDATE SET label = EXCLUDED.label, key = EXCLUDED.key,"
        " source_key = EXCLUDED.source_key",
        [(video_id, *t) for t in tracks],
    )


async def keep_subtitle_tracks(
    conn: asyncpg.Connection, *, video_id: uuid.UUID, languages: Sequence[str]
) -> list[str]:
    """Drop the video's subtitle tracks whose language is not in ``languages``; the dropped languages."""
    rows = await conn.fetch(
        "DELETE FROM subtitle_tracks WHERE video_id = $1 AND NOT (language = ANY($2::text[])) RETURNING language",
        video_id,
        list(languages),
    )
    return [r["language"] for r in rows]


async def lock_video(conn: asyncpg.Connection, *, video_id: uuid.UUID) -> None:
    """Serialize writers of one video's master playlist until the caller's transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"streaming.master:{video_id}"
    )


# -- bucket import --------------------------------------------------------------------------------------------


async def record_migration(
    conn: asyncpg.Connection,
    *,
    source_url: str,
    source_key: str,
    owner_id: uuid.UUID,
    size_bytes: int,
    event_id: uuid.UUID,
) -> bool:
    """Remember that an object was requested for migration; False when it already was (skip it)."""
    return await inserted(
        conn,
        "INSERT INTO migrated_objects (source_url, source_key, owner_id, size_bytes, event_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_url, source_key) DO NOTHING RETURNING true",
        source_url,
        source_key,
        owner_id,
        size_bytes,
        event_id,
    )


async def migrated_keys(conn: asyncpg.Connection, *, source_url: str, prefix: str) -> set[str]:
    """Keys under ``prefix`` of ``source_url`` already requested (progress reporting)."""
    rows = await conn.fetch(
        "SELECT source_key FROM migrated_objects WHERE source_url = $1 AND starts_with(source_key, $2)",
        source_url,
        prefix,
    )
    return {r["source_key"] for r in rows}
