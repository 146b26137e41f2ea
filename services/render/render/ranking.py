"""Ranking projects, pure: top N of a search, an owner's edit checked and applied, play order, length, warnings.

No asyncpg, aio_pika or aiohttp here: the API and the job call these with rows and answers they already hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from common.events.ingest import SearchResult

from .compose import ClipSource, RenderSpec, estimate_seconds
from .layout import FPS, Target
from .models import (
    MAX_CLIP_S,
    MIN_CLIP_S,
    SHORTS_MAX_S,
    Item,
    ItemEdit,
    OrderBy,
    PlayOrder,
    Project,
    ProjectPatch,
    TemplateOptions,
    VideoRef,
    Warning,
)

_PLATFORMS = {
    "youtube.com": "YouTube",
    "youtu.be": "YouTube",
    "tiktok.com": "TikTok",
    "instagram.com": "Instagram",
    "vimeo.com": "Vimeo",
}
OVER_SHORTS = "ranking.over_shorts_limit"


class EditError(ValueError):
    """An edit the project cannot take; ``problems`` says which item and why."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"rank {p['rank']}: {p['problem']}" for p in problems))
        self.problems = problems


def platform_of(url: str) -> str:
    """The platform's name from a URL's host (``YouTube``, ``TikTok``...), else the host itself."""
    host = (urlsplit(url).hostname or "").lower().removeprefix("www.").removeprefix("m.")
    for domain, name in _PLATFORMS.items():
        if host == domain or host.endswith("." + domain):
            return name
    return host


def _count(hit: SearchResult, order_by: OrderBy) -> int:
    value = {
        OrderBy.VIEWS: hit.view_count,
        OrderBy.LIKES: hit.like_count,
        OrderBy.COMMENTS: hit.comment_count,
    }.get(order_by)
    return -1 if value is None else value


def top_hits(hits: Sequence[SearchResult], *, n: int, order_by: OrderBy) -> list[SearchResult]:
    """The ``n`` best hits by ``order_by`` (manual: as the platform ordered them); ties keep the platform's order."""
    if order_by == OrderBy.MANUAL:
        return list(hits[:n])
    ranked = sorted(enumerate(hits), key=lambda ih: (-_count(ih[1], order_by), ih[0]))
    return [h for _, h in ranked[:n]]


def window(clip_seconds: float, duration_s: float | None) -> tuple[float, float]:
    """The default window of a clip: its first ``clip_seconds`` (its whole length when shorter)."""
    if duration_s is not None and 0 < duration_s < clip_seconds:
        return 0.0, round(max(MIN_CLIP_S, duration_s), 3)
    return 0.0, clip_seconds


def item_from_hit(hit: SearchResult, *, rank: int, clip_seconds: float, counted_at: datetime) -> Item:
    """A ranked item from a search hit, with a snapshot of its counts and when they were read."""
    start, end = window(clip_seconds, hit.duration_s)
    return Item(
        id=uuid.uuid4(),
        rank=rank,
        request_id=str(uuid.uuid4()),
        source_url=hit.url,
        platform=platform_of(hit.url),
        uploader=hit.uploader,
        title=hit.title[:200],
        start_s=start,
        end_s=end,
        view_count=hit.view_count,
        like_count=hit.like_count,
        comment_count=hit.comment_count,
        counted_at=counted_at,
    )


def item_from_url(url: str, *, rank: int, clip_seconds: float) -> Item:
    """A ranked item from a URL (its video comes from ingest's import)."""
    return Item(
        id=uuid.uuid4(),
        rank=rank,
        request_id=str(uuid.uuid4()),
        source_url=url,
        platform=platform_of(url),
        start_s=0.0,
        end_s=clip_seconds,
    )


def item_from_video(
    video_id: uuid.UUID,
    *,
    rank: int,
    clip_seconds: float,
    title: str,
    duration_s: float | None,
    source_url: str | None,
) -> Item:
    """A ranked item from one of the owner's videos (another creator's when it was imported from a URL)."""
    start, end = window(clip_seconds, duration_s)
    return Item(
        id=uuid.uuid4(),
        rank=rank,
        video_id=video_id,
        source_url=source_url,
        platform=platform_of(source_url) if source_url else "",
        own=source_url is None,
        title=title[:200],
        start_s=start,
        end_s=end,
    )


def credited(items: Sequence[Item], videos: Mapping[uuid.UUID, VideoRef]) -> list[Item]:
    """The items credited as ingest found their sources (``videos`` by item id): the uploader and platform ingest
    read from each source where it named them, over what a search listed or a URL's host said."""
    out = []
    for item in items:
        video = videos.get(item.id)
        if video is not None and (video.uploader or video.platform):
            item = msgspec.structs.replace(
                item, uploader=video.uploader or item.uploader, platform=video.platform or item.platform
            )
        out.append(item)
    return out


def _edited(item: Item, edit: ItemEdit, rank: int) -> Item:
    changes: dict[str, Any] = {"rank": rank}
    for name in ("title", "caption", "start_s", "end_s"):
        value = getattr(edit, name)
        if value is not None:
            changes[name] = value
    return msgspec.structs.replace(item, **changes)


def _check_window(item: Item, duration_s: float | None) -> str | None:
    length = item.end_s - item.start_s
    if length < MIN_CLIP_S:
        return f"the window must be at least {MIN_CLIP_S:g} s long (end_s after start_s)"
    if length > MAX_CLIP_S:
        return f"the window must be at most {MAX_CLIP_S:g} s long"
    if duration_s is not None and item.start_s >= duration_s - MIN_CLIP_S / 2:
        return f"start_s is past the end of the clip ({duration_s:.1f} s)"
    return None


def apply_items(
    project: Project,
    edits: Sequence[ItemEdit],
    *,
    replacements: Mapping[int, Item],
    durations: Mapping[uuid.UUID, float],
) -> list[Item]:
    """The project's new items, rank 1 first: existing ones (by ``id``) reordered and edited, replacements
    (built by the caller from each edit's ``url`` or ``video_id``, keyed by its index) edited too. ``EditError``
    lists every problem."""
    by_id = {i.id: i for i in project.items}
    seen: set[uuid.UUID] = set()
    problems: list[dict[str, Any]] = []
    items: list[Item] = []
    for index, edit in enumerate(edits):
        rank = index + 1
        given = [x for x in (edit.id, edit.url, edit.video_id) if x is not None]
        if len(given) != 1:
            problems.append({"rank": rank, "problem": "give exactly one of id, url or video_id"})
            continue
        base = by_id.get(edit.id) if edit.id is not None else replacements.get(index)
        if base is None or (edit.id is not None and edit.id in seen):
            problems.append({"rank": rank, "problem": "no such item in this project (or listed twice)"})
            continue
        seen.add(base.id)
        item = _edited(base, edit, rank)
        problem = _check_window(item, durations.get(item.video_id) if item.video_id else None)
        if problem:
            problems.append({"rank": rank, "problem": problem})
        items.append(item)
    if problems:
        raise EditError(problems)
    return items


def patched(project: Project, patch: ProjectPatch, items: list[Item] | None) -> Project:
    """The project with the patch's settings (and new items) applied."""
    return msgspec.structs.replace(
        project,
        title=patch.title if patch.title is not None else project.title,
        play_order=patch.order if patch.order is not None else project.play_order,
        target=patch.target if patch.target is not None else project.target,
        options=patch.options if patch.options is not None else project.options,
        items=items if items is not None else project.items,
        n=len(items) if items is not None else project.n,
    )


def play_order(items: Sequence[Item], order: PlayOrder) -> list[Item]:
    """The items in the order they play: countdown ends on rank 1."""
    ranked = sorted(items, key=lambda i: i.rank)
    return ranked[::-1] if order == PlayOrder.COUNTDOWN else ranked


def spec_for(project: Project, paths: Mapping[uuid.UUID, Path] | None = None) -> RenderSpec:
    """The composing spec of a project; ``paths`` maps each item id to its local file (absent: a placeholder,
    enough to estimate the length)."""
    clips = [
        ClipSource(
            path=(paths or {}).get(i.id, Path("/nonexistent")),
            start_s=i.start_s,
            end_s=i.end_s,
            rank=i.rank,
            title=i.title,
            uploader=i.uploader,
            platform=i.platform,
        )
        for i in play_order(project.items, project.play_order)
    ]
    o: TemplateOptions = project.options
    return RenderSpec(
        title=project.title,
        target=project.target,
        clips=clips,
        intro_s=o.intro_s,
        outro_s=o.outro_s,
        short_clips=o.short_clips,
    )


def estimated_seconds(project: Project) -> float:
    """How long a render of the project would be if every clip is as long as asked."""
    return round(estimate_seconds(spec_for(project)), 3)


def billable_seconds(duration_s: float) -> float:
    """Output seconds for pricing: whole frames only (a 13.0333 s short is 13.0333, not 13 + a float error)."""
    return round(duration_s * FPS) / FPS


def warnings(project: Project) -> list[Warning]:
    """What the owner should know: a short over 60 s with another creator's clips is no YouTube Short."""
    out: list[Warning] = []
    seconds = estimated_seconds(project)
    if project.target == Target.SHORTS and seconds > SHORTS_MAX_S and any(not i.own for i in project.items):
        out.append(
            Warning(
                code=OVER_SHORTS,
                message=(
                    f"the short would be {seconds:.1f} s long: over {SHORTS_MAX_S:g} s with other creators' clips,"
                    " YouTube treats it as a regular video (and may claim it); trim the clips to stay a Short"
                ),
            )
        )
    return out
