"""Probing an original with PyAV: what it is, and whether the platform accepts it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from common.jobs import ErrorCode, JobFailure
from common.logging import get_logger
from common.storage import content_types

BAD_DIMENSIONS = "media.bad_dimensions"

#: demuxer name -> file extension of the stored original (mp4/mov and webm/mkv are told apart below)
_EXTENSIONS = {
    "matroska,webm": "mkv",
    "avi": "avi",
    "flv": "flv",
    "mpegts": "ts",
    "ogg": "ogv",
    "asf": "wmv",
    "mpeg": "mpg",
    "gif": "gif",
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "aac": "aac",
}

log = get_logger(__name__)


# formats ffmpeg "opens" but that are not media files anyone uploads on purpose (text, images)
_REFUSED_FORMATS = frozenset(
    {
        "tty",
        "image2",
        "png_pipe",
        "jpeg_pipe",
        "svg_pipe",
        "webp_pipe",
        "srt",
        "webvtt",
        "ass",
        "lrc",
        "subviewer",
        "jacosub",
        "mpl2",
        "txt",
    }
)


@dataclass(frozen=True)
class Limits:
    """What an original may be."""

    max_duration_s: float
    max_dimension: int
    min_dimension: int


@dataclass(frozen=True)
class Probe:
    """What PyAV found in an original (dimensions are display dimensions, after rotation)."""

    container: str  # file extension of the original: mp4, mov, webm, mkv, ...
    duration_s: float
    size_bytes: int
    width: int = 0
    height: int = 0
    rotation: int = 0  # counter-clockwise degrees of the display matrix (as ffprobe), 0/90/180/270
    fps: float = 0.0
    video_codec: str = ""
    audio_codec: str = ""

    @property
    def audio_only(self) -> bool:
        """Whether the original has no video stream."""
        return not self.video_codec

    @property
    def content_type(self) -> str:
        """The MIME type to store the original with."""
        return content_types.content_type(self.container)


def probe(path: Path, limits: Limits, *, allow_audio_only: bool = False) -> Probe:
    """Open ``path`` with PyAV and check it against ``limits``; ``JobFailure`` with a ``media.*`` code otherwise.

    Blocking: run it in a thread.
    """
    size = path.stat().st_size
    if size == 0:
        raise JobFailure(ErrorCode.MEDIA_UNREADABLE, "the file is empty")
    try:
        with av.open(str(path), mode="r", metadata_errors="replace") as container:
            return _inspect(container, path, size, limits, allow_audio_only=allow_audio_only)
    except JobFailure:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        log.info(
            "ingest.unreadable_media", error=repr(exc)
        )  # the library's words stay here, not in the answer
        raise JobFailure(ErrorCode.MEDIA_UNREADABLE, "not a readable video file") from exc


def _inspect(
    container: av.container.InputContainer, path: Path, size: int, limits: Limits, *, allow_audio_only: bool
) -> Probe:
    fmt = container.format.name
    if fmt in _REFUSED_FORMATS:
        raise JobFailure(ErrorCode.MEDIA_UNREADABLE, f"not a video file (detected {fmt})")
    video = container.streams.video[0] if container.streams.video else None
    audio = container.streams.audio[0] if container.streams.audio else None
    if video is None and audio is None:
        raise JobFailure(ErrorCode.MEDIA_UNREADABLE, "the file has no audio or video stream")
    if video is None and not allow_audio_only:
        raise JobFailure(
            ErrorCode.MEDIA_NO_VIDEO, "the file has no video stream (audio-only was not requested)"
        )

    duration = _duration(container)
    if duration <= 0:
        raise JobFailure(
            ErrorCode.MEDIA_UNREADABLE, "the file has no duration (truncated or not a media file)"
        )
    if duration > limits.max_duration_s:
        raise JobFailure(
            ErrorCode.MEDIA_TOO_LONG,
            f"{duration:.0f} s is longer than the limit of {limits.max_duration_s:.0f} s",
        )
    _check_complete(container, size)

    width = height = rotation = 0
    fps = 0.0
    vcodec = ""
    if video is not None:
        coded_w, coded_h = video.codec_context.width, video.codec_context.height
        if not (limits.min_dimension <= coded_w <= limits.max_dimension) or not (
            limits.min_dimension <= coded_h <= limits.max_dimension
        ):
            raise JobFailure(
                BAD_DIMENSIONS,
                f"{coded_w}x{coded_h} is outside {limits.min_dimension}..{limits.max_dimension} pixels per side",
            )
        # decoding one frame proves the stream is real, and frames carry the display matrix (rotation)
        try:
            frame = next(container.decode(video))
        except (StopIteration, av.error.FFmpegError) as exc:
            raise JobFailure(ErrorCode.MEDIA_UNREADABLE, "the video stream cannot be decoded") from exc
        rotation = round(frame.rotation / 90) * 90 % 360
        width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
        rate = video.average_rate or video.guessed_rate or Fraction(0)
        fps = round(float(rate), 3)
        vcodec = video.codec_context.name
    return Probe(
        container=_extension(container, path),
        duration_s=round(duration, 3),
        size_bytes=size,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        video_codec=vcodec,
        audio_codec=audio.codec_context.name if audio is not None else "",
    )


def _duration(container: av.container.InputContainer) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    best = 0.0
    for s in container.streams:
        if s.duration is not None and s.time_base is not None:
            best = max(best, float(s.duration * s.time_base))
    return best


def _check_complete(container: av.container.InputContainer, size: int) -> None:
    """Refuse a file cut short: the container's sample index points past its end (MP4/MOV; cheap, no reading)."""
    end = 0
    for s in container.streams:
        entries = s.index_entries
        if len(entries):
            last = entries[len(entries) - 1]
            end = max(end, last.pos + last.size)
    if end > size:
        raise JobFailure(ErrorCode.MEDIA_UNREADABLE, f"the file is truncated ({size} of {end} bytes)")


def _extension(container: av.container.InputContainer, path: Path) -> str:
    name = container.format.name
    if name.startswith("mov,mp4"):
        brand = container.metadata.get("major_brand", "").strip()
        if brand == "qt":
            return "mov"
        if brand in ("M4A", "M4B") or not container.streams.video:
            return "m4a"
        return "mp4"
    if name == "matroska,webm":
        # the EBML DocType sits in the first bytes; "webm" is a restricted Matroska
        with path.open("rb") as f:
            head = f.read(64)
        return "webm" if b"webm" in head else "mkv"
    return _EXTENSIONS.get(name, name.split(",")[0] or "bin")


def file_size(path: Path) -> int:
    """Size of a local file (0 when absent)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
