"""The captions service's error codes and its one coded error."""

from __future__ import annotations

from enum import StrEnum

from common.errors import CodedError


class Code(StrEnum):
    """Stable error codes of the captions service (a job's ``error.code``, a problem's ``code``)."""

    NO_AUDIO = "media.no_audio_stream"
    MEDIA_UNREADABLE = "media.unreadable"
    NO_SPEECH = "captions.no_speech"
    TRANSLATION_UNAVAILABLE = "captions.translation_unavailable"
    TRANSLATION_FAILED = "captions.translation_failed"
    TRANSLATION_INVALID = "captions.translation_invalid"
    MODEL_UNAVAILABLE = "captions.model_unavailable"
    CANCELED = "job.canceled"
    INVALID_CUES = "captions.invalid_cues"
    VERSION_CONFLICT = "captions.version_conflict"
    LANGUAGE_UNSUPPORTED = "captions.language_unsupported"
    VIDEO_NOT_FOUND = "video.not_found"
    TRACK_NOT_FOUND = "track.not_found"


class CaptionsError(CodedError):
    """Domain work failed with a stable code and a message a user can read."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(code, message)
