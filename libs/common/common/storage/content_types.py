"""The one table of content types by file extension: what an object is stored and served as.

Streaming uploads renditions, playlists and thumbnails with these and serves ``/play`` files with them; ingest
stores originals with them. A service that serves only some kinds (``/play``) keeps its own *set of extensions*
and reads the types from here.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT = "application/octet-stream"

CONTENT_TYPES: Mapping[str, str] = {
    # streaming output: HLS, DASH, captions, thumbnails
    "m3u8": "application/vnd.apple.mpegurl",
    "m4s": "video/iso.segment",
    "mpd": "application/dash+xml",
    "vtt": "text/vtt",
    "webvtt": "text/vtt",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    # media containers (originals and renditions)
    "mp4": "video/mp4",
    "m4a": "audio/mp4",
    "ts": "video/mp2t",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "flv": "video/x-flv",
    "ogv": "video/ogg",
    "wmv": "video/x-ms-wmv",
    "mpg": "video/mpeg",
    "gif": "image/gif",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "aac": "audio/aac",
}


def extension(name: str) -> str:
    """The lower-case extension of a file name or key, without the dot (``""`` when it has none)."""
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def content_type(name: str, *, default: str = DEFAULT) -> str:
    """The content type of a file name, key or bare extension (``"m3u8"``, ``"a/b.m3u8"``); ``default`` if unknown."""
    ext = name.lower() if "." not in name and "/" not in name else extension(name)
    return CONTENT_TYPES.get(ext, default)
