"""yt-dlp, behind two small blocking functions: download one video, or list a search without downloading.

Both run in a worker thread (``asyncio.to_thread``); every request yt-dlp makes goes through the job's
``GuardProxy``. Errors leave as ``JobFailure`` with stable ``source.*`` codes.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yt_dlp
from yt_dlp.utils import DownloadCancelled, DownloadError, ExtractorError, UnsupportedError

from common.jobs import ErrorCode, JobFailure
from common.logging import get_logger

log = get_logger(__name__)

SOURCE_TOO_LARGE = "source.too_large"
#: protocols yt-dlp downloads itself over HTTP (so through the proxy); rtmp/rtsp/... would bypass it via ffmpeg
_PROTOCOLS = frozenset({"http", "https", "m3u8", "m3u8_native", "http_dash_segments"})
#: without ffmpeg yt-dlp cannot merge separate video and audio formats: take single-file formats only
FORMAT_WITHOUT_FFMPEG = "b[height<=1080][ext=mp4]/b[height<=1080]/b"

ProgressFn = Callable[[int, int | None], None]


class _Abort(DownloadCancelled):  # type: ignore[misc]
    """Raised from a progress hook to stop yt-dlp; carries the job's failure."""

    def __init__(self, failure: JobFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class Downloaded:
    """A downloaded original in the job's temp directory."""

    path: Path
    title: str
    webpage_url: str
    #: the creator and platform the source names (``attribution``); empty when it names none
    uploader: str = ""
    platform: str = ""


class _Logger:
    """yt-dlp's messages into our structured log (its own console output is off)."""

    def debug(self, msg: str) -> None:
        log.debug("ytdlp", msg=msg[:500])

    def info(self, msg: str) -> None:
        log.debug("ytdlp", msg=msg[:500])

    def warning(self, msg: str) -> None:
        log.info("ytdlp.warning", msg=msg[:500])

    def error(self, msg: str) -> None:
        log.info("ytdlp.error", msg=msg[:500])


def has_ffmpeg() -> bool:
    """Whether yt-dlp can merge formats (it shells out to ffmpeg for that)."""
    return shutil.which("ffmpeg") is not None


def _base_opts(proxy: str | None, socket_timeout: float) -> dict[str, Any]:
    return {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Logger(),
        "proxy": proxy if proxy is not None else "",
        "socket_timeout": socket_timeout,
        "cachedir": False,
        "color": {"stdout": "never", "stderr": "never"},
        "noplaylist": True,
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        "updatetime": False,
        "check_formats": False,
    }


def download(
    url: str,
    dest: Path,
    *,
    proxy: str,
    fmt: str,
    max_bytes: int,
    max_duration_s: float,
    socket_timeout: float,
    on_progress: ProgressFn,
    cancel: threading.Event,
    refusals: list[str],
) -> Downloaded:
    """Download the best format of ``url`` into ``dest``. Blocking; ``cancel`` stops it at the next chunk."""

    def hook(d: dict[str, Any]) -> None:
        if cancel.is_set():
            raise _Abort(JobFailure(ErrorCode.CANCELED, "canceled"))
        done = int(d.get("downloaded_bytes") or 0)
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        if done > max_bytes:
            raise _Abort(JobFailure(SOURCE_TOO_LARGE, f"the source is larger than {max_bytes} bytes"))
        on_progress(done, int(total) if total else None)

    opts = _base_opts(proxy, socket_timeout) | {
        "format": fmt,
        "merge_output_format": "mp4",
        "outtmpl": {"default": str(dest / "source.%(ext)s")},
        "max_filesize": max_bytes,
        "progress_hooks": [hook],
        "overwrites": True,
        "writethumbnail": False,
        # yt-dlp's own downloaders for every protocol (HLS included): their requests go through the guard proxy
        # like the page's. ffmpeg as a downloader would read the proxy from the environment, where NO_PROXY
        # could exempt hosts; it stays a last resort of yt-dlp's for HLS features it cannot do natively.
        "external_downloader": {"default": "native"},
    }
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False)
            info = _single(info)
            _check_before_download(info, max_bytes=max_bytes, max_duration_s=max_duration_s)
            if cancel.is_set():
                raise JobFailure(ErrorCode.CANCELED, "canceled")
            result = ydl.process_ie_result(info, download=True)
    except _Abort as exc:
        raise exc.failure from None
    except JobFailure:
        raise
    except Exception as exc:
        raise map_error(exc, refusals) from exc
    path = _downloaded_path(result, dest)
    if path is None:
        # yt-dlp "aborts" an over-size download by returning without a file
        raise JobFailure(SOURCE_TOO_LARGE, f"the source is larger than {max_bytes} bytes")
    if path.stat().st_size > max_bytes:
        raise JobFailure(SOURCE_TOO_LARGE, f"the source is larger than {max_bytes} bytes")
    webpage_url = str(result.get("webpage_url") or url)
    uploader, platform = attribution(result, webpage_url)
    return Downloaded(
        path=path,
        title=str(result.get("title") or ""),
        webpage_url=webpage_url,
        uploader=uploader,
        platform=platform,
    )


#: yt-dlp extractor keys whose name is not how people write the platform's
_PLATFORM_NAMES = {"Youtube": "YouTube", "YoutubeTab": "YouTube", "TikTok": "TikTok"}
#: extractors that know only the page, not a platform: the site's host name is the platform
_GENERIC_EXTRACTORS = frozenset({"Generic", "HTML5MediaEmbed"})


def attribution(info: dict[str, Any], webpage_url: str) -> tuple[str, str]:
    """``(uploader, platform)`` from yt-dlp's info dict: the channel (else uploader, creator) and the extractor as a
    platform name; a page yt-dlp reads generically is credited to its host (``example.com``), and the host yt-dlp's
    generic extractor puts as a page's "uploader" when the page names no creator is no creator."""
    host = (urlsplit(webpage_url).hostname or "").removeprefix("www.")
    domain = str(info.get("webpage_url_domain") or "")
    uploader = ""
    for key in ("channel", "uploader", "creator"):
        value = info.get(key)
        if isinstance(value, str) and value.strip() and value.strip() not in (domain, host):
            uploader = " ".join(value.split())
            break
    key = str(info.get("extractor_key") or "")
    platform = host if not key or key in _GENERIC_EXTRACTORS else _PLATFORM_NAMES.get(key, key)
    return uploader, platform


def _single(info: dict[str, Any] | None) -> dict[str, Any]:
    if info is None:
        raise JobFailure(ErrorCode.SOURCE_UNAVAILABLE, "nothing to download at this URL")
    if info.get("_type") in ("playlist", "multi_video"):
        entries = [e for e in (info.get("entries") or []) if e]
        if len(entries) != 1:
            raise JobFailure(
                ErrorCode.SOURCE_UNSUPPORTED, f"the URL names {len(entries)} videos; import a single video"
            )
        return dict(entries[0])
    return info


def _check_before_download(info: dict[str, Any], *, max_bytes: int, max_duration_s: float) -> None:
    if info.get("is_live") or info.get("live_status") in ("is_live", "is_upcoming"):
        raise JobFailure(ErrorCode.SOURCE_UNSUPPORTED, "live streams cannot be imported")
    duration = info.get("duration")
    if isinstance(duration, int | float) and duration > max_duration_s:
        raise JobFailure(
            ErrorCode.SOURCE_TOO_LONG, f"{duration:.0f} s is longer than the limit of {max_duration_s:.0f} s"
        )
    formats = info.get("requested_formats") or [info]
    size = 0
    for f in formats:
        protocol = str(f.get("protocol") or "https")
        if not all(p in _PROTOCOLS for p in protocol.split("+")):
            raise JobFailure(ErrorCode.SOURCE_UNSUPPORTED, f"the {protocol} protocol is not supported")
        size += int(f.get("filesize") or f.get("filesize_approx") or 0)
    if size > max_bytes:
        raise JobFailure(SOURCE_TOO_LARGE, f"the source ({size} bytes) is larger than {max_bytes} bytes")


def _downloaded_path(result: dict[str, Any], dest: Path) -> Path | None:
    for d in result.get("requested_downloads") or []:
        p = d.get("filepath")
        if p and Path(p).is_file():
            return Path(p)
    files = sorted(
        p for p in dest.glob("source.*") if p.is_file() and not p.name.endswith((".part", ".ytdl"))
    )
    return files[0] if files else None


def map_error(exc: BaseException, refusals: list[str]) -> JobFailure:
    """A stable failure for whatever yt-dlp raised (a refusal by the guard proxy wins: it is the real cause)."""
    if refusals:
        return JobFailure(ErrorCode.SOURCE_FORBIDDEN, refusals[0])
    original = exc
    while isinstance(original, DownloadError | ExtractorError) and getattr(original, "exc_info", None):
        inner = original.exc_info[1] if original.exc_info else None
        if inner is None or inner is original:
            break
        original = inner
    text = str(exc)
    log.info("import.download_failed", error=text[:2000])  # yt-dlp's own words stay in the log
    if isinstance(original, UnsupportedError) or "Unsupported URL" in text:
        return JobFailure(ErrorCode.SOURCE_UNSUPPORTED, "no video was found at this URL")
    if "ffmpeg" in text.lower() and "not installed" in text.lower():
        return JobFailure(ErrorCode.SOURCE_UNSUPPORTED, "this source needs ffmpeg to be merged")
    return JobFailure(ErrorCode.SOURCE_UNAVAILABLE, _plain(text))


#: what yt-dlp says → what a user reads (first match wins); anything else is "could not be downloaded"
_PLAIN = (
    (re.compile(r"HTTP Error (\d{3})"), "the source answered HTTP {0}"),
    (
        re.compile(r"private video|sign in|log ?in|members[- ]only", re.IGNORECASE),
        "the video is private or needs a sign-in",
    ),
    (
        re.compile(r"video unavailable|has been removed|no longer available", re.IGNORECASE),
        "the video is no longer available",
    ),
    (
        re.compile(r"not available in your country|geo.?restrict", re.IGNORECASE),
        "the video is not available in this region",
    ),
    (re.compile(r"timed out|timeout", re.IGNORECASE), "the source did not answer in time"),
    (
        re.compile(r"name or service not known|getaddrinfo|connection refused|unreachable", re.IGNORECASE),
        "the source could not be reached",
    ),
)


def _plain(text: str) -> str:
    """A plain sentence for a yt-dlp failure: never its text (it names extractors, asks for bug reports)."""
    for pattern, message in _PLAIN:
        m = pattern.search(text)
        if m:
            return message.format(*m.groups())
    return "the source could not be downloaded"


SearchFn = Callable[[str, int], dict[str, Any]]


def ytdlp_search(
    target: str, limit: int, *, proxy: str | None = None, socket_timeout: float = 30.0
) -> dict[str, Any]:
    """yt-dlp's flat-playlist info dict for a search (``ytsearchN:query``) or a list URL, without downloading."""
    opts = _base_opts(proxy, socket_timeout) | {
        "extract_flat": "in_playlist",
        "skip_download": True,
        "playlistend": limit,
        "noplaylist": False,
    }
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(target, download=False)
            return dict(ydl.sanitize_info(info) or {})
    except Exception as exc:
        raise map_error(exc, []) from exc
