"""Rows a test or a demo starts from: a video captions knows of and a ready track, written through the store."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from . import store
from .models import Track, TrackKind, VideoRef
from .store import Conn


async def seed_video(
    conn: Conn, *, owner_id: uuid.UUID, duration_s: float = 30.0, audio_codec: str = "aac"
) -> uuid.UUID:
    """A video announced to captions (as ``video.ingested`` would); its id."""
    video_id = uuid.uuid4()
    video = VideoRef(
        video_id=video_id,
        owner_id=owner_id,
        storage_key=f"originals/{video_id}/source.mp4",
        duration_s=duration_s,
        fps=25.0,
        audio_codec=audio_codec,
    )
    await store.upsert_video(conn, video)
    return video_id


async def seed_track(
    conn: Conn,
    *,
    video_id: uuid.UUID,
    owner_id: uuid.UUID,
    cues: Sequence[Mapping[str, Any]],
    quality: Mapping[str, int] | None = None,
    language: str = "en",
) -> Track:
    """A ready transcribed track of ``cues`` (records as the store keeps them); its files are the caller's."""
    prefix = f"captions/{video_id}/seed/{language}"
    return await store.put_track(
        conn,
        video_id=video_id,
        owner_id=owner_id,
        job_id=None,
        language=language,
        label=language,
        kind=TrackKind.TRANSCRIBED,
        cues=cues,
        quality=quality or {},
        keys=(f"{prefix}.vtt", f"{prefix}.srt", f"{prefix}.json"),
    )
