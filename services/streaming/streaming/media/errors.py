"""The media pipeline's errors: a stable, user-facing code each (they reach the API, webhooks and job events)."""

from __future__ import annotations

from common.errors import CodedError
from common.jobs import ErrorCode

# error codes (stable: they reach users through the API, webhooks and job events)
MEDIA_UNREADABLE = "media.unreadable"
MEDIA_UNSUPPORTED_CODEC = "media.unsupported_codec"
MEDIA_NO_VIDEO = "media.no_video_stream"
TRANSCODE_FAILED = "transcode.failed"
CANCELED = ErrorCode.CANCELED  # the job runner's code for a canceled job


class MediaError(CodedError):
    """The source cannot become a stream; ``code`` is stable and user-facing."""


class Canceled(Exception):
    """The work was asked to stop."""
