"""The domain work shared by every way a video comes in (storing the original itself: ``ingest.originals``)."""

from __future__ import annotations

import uuid
from pathlib import Path

from common.storage import ObjectStore

#: as long as YouTube's
MAX_DESCRIPTION = 5000


def render_description(*, render_id: uuid.UUID, project_id: uuid.UUID, credits: str) -> str:
    """A rendered short's description: what made it, then the attribution of its sources (``credits``)."""
    head = f"A ranking short made with Reelforge (project {project_id}, render {render_id})."
    credits = credits.replace("\x00", "").strip()
    return f"{head}\n\nSources:\n{credits}" if credits else head


def original_prefix(video_id: uuid.UUID) -> str:
    """Where a video's original lives (ARCHITECTURE §6: kept whole and forever)."""
    return f"originals/{video_id}/"


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
