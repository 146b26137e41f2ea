"""The only module with SQL: the captions schema's videos read model, tracks and track versions.

Invariants: at most one ``ready`` track per (video, language) (a unique partial index); a track's ``version``
is the newest row of ``track_versions`` and every edit adds a row, so no version is ever overwritten. Writers
of one track lock its row (``FOR UPDATE``) before adding a version.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import asyncpg
import msgspec

from .models import Track, TrackKind, TrackStatus, VideoRef

Conn: TypeAlias = asyncpg.Connection

_TRACK_COLS = (
    "id, video_id, owner_id, job_id, language, label, kind, status, version, cue_count, quality,"
    " vtt_key, srt_key, json_key, created_at, updated_at"
)


def _track(r: Mapping[str, Any]) -> Track:
    return msgspec.convert(dict(r), Track)


# --- videos (read model of ingest's events) ---------------------------------------------------------------


async def upsert_video(conn: Conn, video: VideoRef) -> None:
    """Record (or refresh) a video announced by ``video.ingested``; a deleted video stays deleted."""
    await conn.execute(
        "INSERT INTO videos (video_id, owner_id, storage_key, duration_s, fps, audio_codec)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (video_id) DO UPDATE SET storage_key = EXCLUDED.storage_key,"
        " duration_s = EXCLUDED.duration_s, fps = EXCLUDED.fps, audio_codec = EXCLUDED.audio_codec,"
        " updated_at = now() WHERE videos.deleted_at IS NULL",
        *msgspec.structs.astuple(video),  # the columns in VideoRef's field order
    )


async def get_video(conn: Conn, *, video_id: uuid.UUID) -> VideoRef | None:
    """A live (not deleted) video, or None."""
    r = await conn.fetchrow(
        "SELECT video_id, owner_id, storage_key, duration_s, fps, audio_codec FROM videos"
        " WHERE video_id = $1 AND deleted_at IS NULL",
        video_id,
    )
    return msgspec.convert(dict(r), VideoRef) if r else None


# --- tracks ---------------------------------------------------------------------------------------------


async def list_tracks(conn: Conn, *, video_id: uuid.UUID) -> list[Track]:
    """The live tracks of a video, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_TRACK_COLS} FROM tracks WHERE video_id = $1 AND status = 'ready' ORDER BY created_at, language",
        video_id,
    )
    return [_track(r) for r in rows]


async def get_track(conn: Conn, *, track_id: uuid.UUID, for_update: bool = False) -> Track | None:
    """A live track (optionally row-locked), or None."""
    lock = " FOR UPDATE" if for_update else ""
    r = await conn.fetchrow(
        f"SELECT {_TRACK_COLS} FROM tracks WHERE id = $1 AND status = 'ready'{lock}", track_id
    )
    return _track(r) if r else None


async def put_track(
    conn: Conn,
    *,
    video_id: uuid.UUID,
    owner_id: uuid.UUID,
    job_id: uuid.UUID | None,
    language: str,
    label: str,
    kind: TrackKind,
    cues: Sequence[Mapping[str, Any]],
    quality: Mapping[str, int],
    keys: tuple[str, str, str],
) -> Track:
    """Create the (video, language) track, replacing a live one of that language (which becomes ``deleted``)."""
    await conn.execute(
        "UPDATE tracks SET status = 'deleted', updated_at = now() WHERE video_id = $1 AND language = $2"
        " AND status = 'ready'",
        video_id,
        language,
    )
    track_id = uuid.uuid4()
    r = await conn.fetchrow(
        "INSERT INTO tracks (id, video_id, owner_id, job_id, language, label, kind, cue_count, quality,"
        " vtt_key, srt_key, json_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        f" RETURNING {_TRACK_COLS}",
        track_id,
        video_id,
        owner_id,
        job_id,
        language,
        label,
        kind.value,
        len(cues),
        dict(quality),
        *keys,
    )
    await _add_version(
        conn, track_id=track_id, version=1, kind=kind, cues=cues, quality=quality, author_id=None
    )
    return _track(r)


async def add_version(
    conn: Conn,
    *,
    track: Track,
    cues: Sequence[Mapping[str, Any]],
    quality: Mapping[str, int],
    keys: tuple[str, str, str],
    author_id: uuid.UUID,
) -> Track:
    """A user's edit: the next version of a track the caller holds locked (``get_track(for_update=True)``)."""
    version = track.version + 1
    await _add_version(
        conn,
        track_id=track.id,
        version=version,
        kind=TrackKind.EDITED,
        cues=cues,
        quality=quality,
        author_id=author_id,
    )
    r = await conn.fetchrow(
        "UPDATE tracks SET version = $2, kind = 'edited', cue_count = $3, quality = $4, vtt_key = $5,"
        f" srt_key = $6, json_key = $7, updated_at = now() WHERE id = $1 RETURNING {_TRACK_COLS}",
        track.id,
        version,
        len(cues),
        dict(quality),
        *keys,
    )
    return _track(r)


async def _add_version(
    conn: Conn,
    *,
    track_id: uuid.UUID,
    version: int,
    kind: TrackKind,
    cues: Sequence[Mapping[str, Any]],
    quality: Mapping[str, int],
    author_id: uuid.UUID | None,
) -> None:
    await conn.execute(
        "INSERT INTO track_versions (track_id, version, kind, cues, quality, author_id) VALUES ($1, $2, $3, $4, $5, $6)",
        track_id,
        version,
        kind.value,
        list(map(dict, cues)),
        dict(quality),
        author_id,
    )


async def get_cues(conn: Conn, *, track_id: uuid.UUID, version: int) -> list[dict[str, Any]]:
    """The cues of one version of a track."""
    cues = await conn.fetchval(
        "SELECT cues FROM track_versions WHERE track_id = $1 AND version = $2", track_id, version
    )
    return list(cues or [])


async def delete_track(conn: Conn, *, track_id: uuid.UUID) -> Track | None:
    """Mark a live track deleted; the deleted track (for its keys), or None when there was none."""
    r = await conn.fetchrow(
        f"UPDATE tracks SET status = '{TrackStatus.DELETED.value}', updated_at = now() WHERE id = $1"
        f" AND status = 'ready' RETURNING {_TRACK_COLS}",
        track_id,
    )
    return _track(r) if r else None


async def delete_video_tracks(conn: Conn, *, video_id: uuid.UUID) -> list[Track]:
    """Mark every live track of a deleted video deleted; the tracks (their objects are removed by the caller)."""
    rows = await conn.fetch(
        "UPDATE tracks SET status = 'deleted', updated_at = now() WHERE video_id = $1 AND status = 'ready'"
        f" RETURNING {_TRACK_COLS}",
        video_id,
    )
    return [_track(r) for r in rows]
