"""A platform's own subtitles through yt-dlp, without downloading the video (``skip_download``).

The page is read once (``extract_info``); one track is chosen — uploaded subtitles before automatic captions, a
preferred language before the others, YouTube's ``-orig`` automatic track before its machine translations — and
only that track is fetched, json3 preferred (YouTube's automatic VTT shows each line two or three times;
``parse_vtt`` undoes that when VTT is all there is). A track that is a plain HTTP(S) file (YouTube's, and most
platforms') is read with yt-dlp's own ``urlopen`` (its headers, cookies and proxy), as its HTTP downloader would;
any other (inline data, HLS) is written by yt-dlp's subtitle writer (``writesubtitles``/``writeautomaticsub`` with
that one language). The writer's pass over the whole info dict (format sorting, templates, print hooks) cost about
as much CPU as reading the page, so it is skipped when it is not needed.
Blocking: run it in a thread. A platform that refuses ("Sign in to confirm…", HTTP 403) or rate-limits (429) is a
typed failure (``source.blocked``, ``source.rate_limited``) for the caller to back off from, never a crash.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.networking import Request
from yt_dlp.networking.exceptions import RequestError
from yt_dlp.utils import DownloadError, ExtractorError, UnsupportedError, determine_ext

from .models import AnalysisErrorCode
from .transcript import Transcript, TranscriptError, TranscriptSource, parse_json3, parse_vtt

FORMATS = "json3/vtt/best"
_PARSERS = {"json3": parse_json3, "vtt": lambda data, **kw: parse_vtt(_text(data), **kw)}


class SubtitleError(Exception):
    """The platform refused or failed: ``code`` is ``source.blocked``, ``source.rate_limited`` or
    ``source.unavailable``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class PageInfo:
    """What the page says about its video: a stable id for the content cache, title, duration, subtitles."""

    source_id: str
    title: str
    duration_s: float | None
    transcript: Transcript | None  # None: the page offers no subtitles we can read


def _text(data: str | bytes) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def classify(text: str) -> SubtitleError:
    """The typed failure for a yt-dlp error message."""
    short = text.removeprefix("ERROR: ").strip()[:300]
    if re.search(r"\b429\b|Too Many Requests|rate.?limit", text, re.IGNORECASE):
        return SubtitleError(
            AnalysisErrorCode.SOURCE_RATE_LIMITED, short or "the platform is rate limiting us"
        )
    if re.search(r"Sign in to confirm|\b403\b|Forbidden|confirm you.re not a bot|login required", text, re.I):
        return SubtitleError(
            AnalysisErrorCode.SOURCE_BLOCKED, short or "the platform refused to serve the page"
        )
    return SubtitleError(AnalysisErrorCode.SOURCE_UNAVAILABLE, short or "the page could not be read")


def _pick(tracks: Mapping[str, Sequence[Mapping[str, Any]]], languages: Sequence[str]) -> str | None:
    """The language to fetch: ``-orig`` first (YouTube's original automatic track), then a preferred one, then any."""
    usable = [lang for lang, formats in tracks.items() if formats and lang != "live_chat"]
    if not usable:
        return None
    original = [lang for lang in usable if lang.endswith("-orig")]
    if original:
        return original[0]
    for wanted in languages:
        for lang in usable:
            if lang == wanted or lang.split("-")[0] == wanted:
                return lang
    return usable[0]


class _Quiet:
    """yt-dlp's messages go nowhere: its errors come back as exceptions, which we classify."""

    def debug(self, msg: str) -> None:
        """Dropped."""

    def info(self, msg: str) -> None:
        """Dropped."""

    def warning(self, msg: str) -> None:
        """Dropped."""

    def error(self, msg: str) -> None:
        """Dropped."""


def _base_opts(*, proxy: str, socket_timeout: float) -> dict[str, Any]:
    return {
        "quiet": True,
        "logger": _Quiet(),
        "no_warnings": True,
        "noprogress": True,
        "proxy": proxy,
        "socket_timeout": socket_timeout,
        "cachedir": False,
        "noplaylist": True,
        "skip_download": True,
        "extractor_retries": 1,
        "color": {"stdout": "never", "stderr": "never"},
    }


def _choose(info: Mapping[str, Any], languages: Sequence[str]) -> tuple[str, bool] | None:
    manual = info.get("subtitles") or {}
    lang = _pick(manual, languages)
    if lang is not None:
        return lang, False
    auto = info.get("automatic_captions") or {}
    lang = _pick(auto, languages)
    return (lang, True) if lang is not None else None


def _parse_track(data: bytes, *, ext: str, language: str) -> Transcript | None:
    parser = _PARSERS.get(ext)
    if parser is None:
        return None
    try:
        transcript = parser(data, language=language, source=TranscriptSource.PLATFORM_SUBTITLES)
    except TranscriptError:
        return None
    return transcript if transcript.segments else None


def _read_track(path: Path, *, ext: str, language: str) -> Transcript | None:
    if not path.is_file():
        return None
    return _parse_track(path.read_bytes(), ext=ext, language=language)


def _ext(track: Mapping[str, Any]) -> str:
    return str(track.get("ext") or determine_ext(str(track.get("url") or ""))).lower()


def _direct_track(
    info: Mapping[str, Any], lang: str, automatic: bool
) -> tuple[str, str, dict[str, str]] | None:
    """The track yt-dlp's writer would pick (the last json3, else the last VTT) as ``(url, ext, headers)`` when it
    is a plain HTTP(S) file; None when the writer must do it (inline data, another protocol, another format)."""
    formats = (info.get("automatic_captions" if automatic else "subtitles") or {}).get(lang) or []
    for ext in ("json3", "vtt"):
        matches = [f for f in formats if _ext(f) == ext]
        if matches:
            track = matches[-1]
            url = str(track.get("url") or "")
            plain = track.get("protocol") in (None, "http", "https") and track.get("data") is None
            if plain and url.startswith(("http://", "https://")):
                return url, ext, dict(track.get("http_headers") or {})
            return None
    return None


_local = threading.local()
_PER_CALL = ("writesubtitles", "writeautomaticsub", "subtitleslangs", "subtitlesformat", "outtmpl")


def _ydl(*, proxy: str, socket_timeout: float) -> yt_dlp.YoutubeDL:
    """This thread's YoutubeDL: making one loads every extractor and a TLS context (most of a page's CPU)."""
    key = (proxy, socket_timeout)
    cached: dict[tuple[str, float], yt_dlp.YoutubeDL] = _local.__dict__.setdefault("ydls", {})
    if key not in cached:
        cached[key] = yt_dlp.YoutubeDL(_base_opts(proxy=proxy, socket_timeout=socket_timeout))
    return cached[key]


def warm_up(*, proxy: str = "", socket_timeout: float = 20.0) -> None:
    """Do once, in this thread, what the first page of a process would: build this thread's ``YoutubeDL`` (which
    imports every extractor) and compile every extractor's URL pattern (a page that only the generic extractor
    reads is matched against all of them)."""
    _ydl(proxy=proxy, socket_timeout=socket_timeout)
    for extractor in yt_dlp.extractor.gen_extractor_classes():
        extractor.suitable("https://warm-up.invalid/")


def _extract(
    ydl: yt_dlp.YoutubeDL, url: str, languages: Sequence[str], tmp: str
) -> tuple[dict[str, Any], Transcript | None]:
    info: dict[str, Any] = ydl.sanitize_info(ydl.extract_info(url, download=False, process=False))
    if info.get("_type") in ("playlist", "multi_video") and info.get("entries"):
        info = ydl.sanitize_info(ydl.extract_info(info["entries"][0]["url"], download=False, process=False))
    chosen = _choose(info, languages)
    if chosen is None:
        return info, None
    lang, automatic = chosen
    direct = _direct_track(info, lang, automatic)
    if direct is not None:
        url, ext, headers = direct
        with ydl.urlopen(Request(url, headers=headers)) as response:
            data = response.read()
        return info, _parse_track(data, ext=ext, language=lang.split("-")[0])
    ydl.params.update(
        {
            "writesubtitles": not automatic,
            "writeautomaticsub": automatic,
            "subtitleslangs": [re.escape(lang) + "$"],
            "subtitlesformat": FORMATS,
            "outtmpl": {"default": str(Path(tmp) / "sub.%(ext)s")},
        }
    )
    try:
        done = ydl.process_ie_result(dict(info), download=True)
    finally:
        for name in _PER_CALL:
            ydl.params.pop(name, None)
    track = ((done or {}).get("requested_subtitles") or {}).get(lang) or {}
    path = Path(str(track.get("filepath", "")))
    return info, _read_track(path, ext=str(track.get("ext", "")), language=lang.split("-")[0])


def fetch_subtitles(
    url: str, *, languages: Sequence[str], proxy: str = "", socket_timeout: float = 20.0
) -> PageInfo:
    """The page's video and, when it has subtitles, the chosen track as a transcript (json3 before VTT)."""
    ydl = _ydl(proxy=proxy, socket_timeout=socket_timeout)
    with tempfile.TemporaryDirectory(prefix="analysis-subs-") as tmp:
        try:
            info, transcript = _extract(ydl, url, languages, tmp)
        except (DownloadError, ExtractorError, UnsupportedError, RequestError) as exc:
            raise classify(str(exc)) from exc
    extractor = str(info.get("extractor_key") or info.get("extractor") or "web").lower()
    video_id = str(info.get("id") or url)
    duration = info.get("duration")
    return PageInfo(
        source_id=f"{extractor}:{video_id}",
        title=str(info.get("title") or ""),
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        transcript=transcript,
    )
