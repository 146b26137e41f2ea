"""Platform searches: the yt-dlp target for a query, and yt-dlp's flat-playlist entries as results."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from common.events.ingest import SearchResult
from common.jobs import JobFailure

PLATFORMS = ("youtube", "tiktok")
MAX_LIMIT = 50
BAD_QUERY = "search.unsupported_query"
_TIKTOK_NAME = re.compile(r"^[\w.\-]{1,64}$")


def target_for(platform: str, query: str, limit: int) -> str:
    """What to hand yt-dlp: ``ytsearchN:<query>`` for YouTube; a tag or user URL for TikTok (no keyword search)."""
    query = query.strip()
    if platform == "youtube":
        return f"ytsearch{limit}:{query}"
    if query.startswith("@"):
        name = query[1:]
        if not _TIKTOK_NAME.match(name):
            raise JobFailure(BAD_QUERY, "a TikTok user is @ followed by letters, digits, '.', '_' or '-'")
        return f"https://www.tiktok.com/@{name}"
    tag = query.removeprefix("#")
    if not _TIKTOK_NAME.match(tag):
        raise JobFailure(
            BAD_QUERY, "TikTok has no keyword search here: give one #tag (or a bare tag) or an @user"
        )
    return f"https://www.tiktok.com/tag/{quote(tag)}"


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _thumbnail(entry: dict[str, Any]) -> str | None:
    thumbs = [t for t in entry.get("thumbnails") or [] if isinstance(t, dict) and t.get("url")]
    if thumbs:
        # the largest: yt-dlp lists them smallest first, but do not rely on it
        best = max(thumbs, key=lambda t: (_int(t.get("width")) or 0) * (_int(t.get("height")) or 0))
        return str(best["url"])
    t = entry.get("thumbnail")
    return str(t) if t else None


def _published(entry: dict[str, Any]) -> datetime | None:
    for key in ("timestamp", "release_timestamp"):
        ts = entry.get(key)
        if isinstance(ts, int | float):
            return datetime.fromtimestamp(ts, UTC)
    for key in ("upload_date", "release_date"):
        day = entry.get(key)
        if isinstance(day, str) and len(day) == 8 and day.isdigit():
            return datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
    return None


def _url(entry: dict[str, Any], platform: str) -> str | None:
    for key in ("webpage_url", "url", "original_url"):
        u = entry.get(key)
        if isinstance(u, str) and u.startswith(("http://", "https://")):
            return u
    vid = entry.get("id")
    if vid and platform == "youtube":
        return f"https://www.youtube.com/watch?v={vid}"
    return None


def parse_results(info: dict[str, Any], platform: str, limit: int) -> list[SearchResult]:
    """Results from yt-dlp's flat-playlist info dict, in the platform's order (``position`` from 1)."""
    out: list[SearchResult] = []
    seen: set[str] = set()
    for entry in info.get("entries") or []:
        if not isinstance(entry, dict):
            continue
        # channels and playlists can show up in searches; only videos are rankable
        if entry.get("ie_key") not in (None, "Youtube", "TikTok") or entry.get("_type") == "playlist":
            continue
        url = _url(entry, platform)
        if url is None or url in seen:
            continue
        seen.add(url)
        duration = entry.get("duration")
        out.append(
            SearchResult(
                position=len(out) + 1,
                platform_id=str(entry.get("id") or ""),
                url=url,
                title=str(entry.get("title") or ""),
                uploader=str(entry.get("channel") or entry.get("uploader") or entry.get("creator") or ""),
                view_count=_int(entry.get("view_count")),
                like_count=_int(entry.get("like_count")),
                comment_count=_int(entry.get("comment_count")),
                duration_s=float(duration) if isinstance(duration, int | float) else None,
                thumbnail_url=_thumbnail(entry),
                published_at=_published(entry),
            )
        )
        if len(out) >= limit:
            break
    return out
