"""Thumbnails: the poster and the sprite grid with its WebVTT index, filled from frames the encoder decodes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from av.video.frame import VideoFrame
from PIL import Image

from .hls import vtt_timestamp
from .ladder import even
from .probe import SourceInfo


@dataclass(frozen=True, kw_only=True)
class ThumbnailPlan:
    """Poster time and sprite grid."""

    poster_at_s: float
    poster_width: int
    poster_height: int
    interval_s: float
    count: int
    tile_width: int
    tile_height: int
    columns: int

    @property
    def rows(self) -> int:
        """Rows of the sprite grid."""
        return math.ceil(self.count / self.columns)


def plan_thumbnails(info: SourceInfo, *, max_tiles: int = 100, tile_width: int = 160) -> ThumbnailPlan:
    """Poster from the middle of the video; one sprite tile per second (spread wider for long videos)."""
    w, h = info.display_width, info.display_height
    interval = max(1.0, math.ceil(info.duration_s / max_tiles))
    count = max(1, min(max_tiles, math.ceil(info.duration_s / interval)))
    tw = min(tile_width, even(w))
    th = even(tw * h / w)
    pw = min(even(w), 1280 if w >= h else 720)
    ph = even(pw * h / w)
    return ThumbnailPlan(
        poster_at_s=info.duration_s / 2,
        poster_width=pw,
        poster_height=ph,
        interval_s=interval,
        count=count,
        tile_width=tw,
        tile_height=th,
        columns=min(10, count),
    )


def thumbnails_vtt(plan: ThumbnailPlan, *, duration_s: float, sprite_uri: str = "sprite.jpg") -> str:
    """The WebVTT index: one cue per tile pointing into the sprite with a media fragment."""
    cues = ["WEBVTT", ""]
    for i in range(plan.count):
        start = i * plan.interval_s
        end = min(duration_s, (i + 1) * plan.interval_s)
        if end <= start:
            end = start + 0.001
        x, y = (i % plan.columns) * plan.tile_width, (i // plan.columns) * plan.tile_height
        cues += [
            f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}",
            f"{sprite_uri}#xywh={x},{y},{plan.tile_width},{plan.tile_height}",
            "",
        ]
    return "\n".join(cues)


def _rgb_image(frame: VideoFrame, width: int, height: int) -> Image.Image:
    return Image.fromarray(frame.reformat(width=width, height=height, format="rgb24").to_ndarray())


@dataclass
class Thumbnailer:
    """Fills the sprite and picks the poster from the frames a decode pass shows."""

    plan: ThumbnailPlan
    sprite: Image.Image = field(init=False)
    poster: Image.Image | None = None
    next_tile: int = 0

    def __post_init__(self) -> None:
        p = self.plan
        self.sprite = Image.new("RGB", (p.columns * p.tile_width, p.rows * p.tile_height))

    def offer(self, frame: VideoFrame, t: float, t_next: float) -> None:
        """Use ``frame`` (shown from ``t`` until ``t_next``) for every tile and the poster it covers."""
        p = self.plan
        while self.next_tile < p.count and self.next_tile * p.interval_s < t_next:
            img = _rgb_image(frame, p.tile_width, p.tile_height)
            i = self.next_tile
            self.sprite.paste(img, ((i % p.columns) * p.tile_width, (i // p.columns) * p.tile_height))
            self.next_tile += 1
        if self.poster is None and (t <= p.poster_at_s < t_next):
            self.poster = _rgb_image(frame, p.poster_width, p.poster_height)

    def finish(self, last: VideoFrame | None, out_dir: Path) -> tuple[Path, Path]:
        """Write ``poster.jpg`` and ``sprite.jpg`` into ``out_dir``."""
        if last is not None:
            self.offer(last, 0.0, float("inf"))  # the last frame fills whatever is left
        out_dir.mkdir(parents=True, exist_ok=True)
        poster_path, sprite_path = out_dir / "poster.jpg", out_dir / "sprite.jpg"
        assert self.poster is not None
        self.poster.save(poster_path, "JPEG", quality=85)
        self.sprite.save(sprite_path, "JPEG", quality=75)
        return poster_path, sprite_path
