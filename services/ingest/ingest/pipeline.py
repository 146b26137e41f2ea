"""The domain work shared by every way a video comes in: probe a local file, keep it whole as the original."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from common.logging import get_logger
from common.storage import ObjectStore

from .media import Limits, probe
from .models import Video

log = get_logger(__name__)


def original_prefix(video_id: uuid.UUID) -> str:
    """Where a video's original lives (ARCHITECTURE §6: kept whole and forever)."""
    return f"originals/{video_id}/"


async def store_original(
    store: ObjectStore,
    path: Path,
    *,
    video_id: uuid.UUID,
    owner_id: uuid.UUID,
    limits: Limits,
    source: str,
    title: str = "",
    source_url: str | None = None,
    source_ref: str | None = None,
    allow_audio_only: bool = False,
) -> Video:
    """Probe ``path`` (``JobFailure`` with a ``media.*`` code when refused), then store it as the original.

    Nothing is written to the store unless the probe accepted the file.
    """
    info = await asyncio.to_thread(probe, path, limits, allow_audio_only=allow_audio_only)
    key = f"{original_prefix(video_id)}source.{info.container}"
    stored = await store.put_file(key, path, content_type=info.content_type)
    return Video(
        id=video_id,
        owner_id=owner_id,
        title=title[:500],
        source=source,
        source_url=source_url,
        source_ref=source_ref,
        storage_key=key,
        container=info.container,
        content_type=info.content_type,
        duration_s=info.duration_s,
        width=info.width,
        height=info.height,
        rotation=info.rotation,
        fps=info.fps,
        video_codec=info.video_codec,
        audio_codec=info.audio_codec,
        audio_only=info.audio_only,
        size_bytes=stored.size,
    )


async def discard_original(store: ObjectStore, video_id: uuid.UUID) -> None:
    """Delete what was stored for a video that did not make it into the catalogue (best effort, logged)."""
    try:
        await asyncio.shield(store.delete_prefix(original_prefix(video_id)))
    except Exception as exc:
        log.warning("ingest.discard_failed", video_id=str(video_id), error=repr(exc))


async def fetch_object(store: ObjectStore, key: str, path: Path) -> Path:
    """Copy an object into a local file (to probe it before it becomes an original)."""
    try:
        return await store.get_file(key, path)
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - must also run while the task is being cancelled
        raise


def title_from_filename(name: str | None) -> str:
    """A default title from an uploaded file's name (without directories or extension)."""
    if not name:
        return ""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return stem.strip()[:500]
