"""The render domain's error: a stable, user-facing code, a message, and details for the job's error."""

from __future__ import annotations

from typing import Any

# stable codes: they reach users through the API and job events
MISSING_GLYPHS = "render.missing_glyphs"
CLIP_TOO_SHORT = "render.clip_too_short"
MEDIA_UNREADABLE = "media.unreadable"
MEDIA_NO_VIDEO = "media.no_video_stream"
RENDER_FAILED = "render.failed"
CANCELED = "job.canceled"


class RenderError(Exception):
    """A render cannot be made as asked; ``code`` is stable and user-facing, ``details`` is JSON-able."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.details = code, message, details


class Canceled(Exception):
    """The render was asked to stop (its cancel event was set)."""
