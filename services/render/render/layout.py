"""Where things go on the 1080x1920 frame, per target platform (numbers and sources: docs/render.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

WIDTH = 1080
HEIGHT = 1920
FPS = 30


class Target(StrEnum):
    """The platform a short is made for: its UI decides where text may go."""

    SHORTS = "shorts"
    TIKTOK = "tiktok"
    REELS = "reels"


@dataclass(frozen=True, kw_only=True)
class Box:
    """A rectangle in output pixels."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        """One past the last column."""
        return self.x + self.w

    @property
    def bottom(self) -> int:
        """One past the last row."""
        return self.y + self.h

    def contains(self, other: Box) -> bool:
        """Whether ``other`` lies wholly inside this box."""
        return (
            self.x <= other.x
            and self.y <= other.y
            and other.right <= self.right
            and other.bottom <= self.bottom
        )


@dataclass(frozen=True, kw_only=True)
class Margins:
    """What the platform's own UI covers, in pixels from each edge of a 1080x1920 frame."""

    top: int
    bottom: int
    left: int
    right: int


#: top bar, bottom UI band (caption, handle, music, progress bar), left edge, right-side button column
SAFE_MARGINS: dict[Target, Margins] = {
    Target.SHORTS: Margins(top=240, bottom=480, left=60, right=192),
    Target.TIKTOK: Margins(top=160, bottom=480, left=60, right=160),
    Target.REELS: Margins(top=270, bottom=672, left=66, right=160),
}

BADGE_SIZE = 176
GAP = 24
TITLE_HEIGHT = 300
ATTRIBUTION_HEIGHT = 84


@dataclass(frozen=True, kw_only=True)
class Layout:
    """The boxes of one target: every text box lies inside ``safe``."""

    target: Target
    width: int
    height: int
    safe: Box
    badge: Box
    title: Box
    attribution: Box
    card: Box

    def text_boxes(self) -> dict[str, Box]:
        """Every box text is drawn into, by name."""
        return {"badge": self.badge, "title": self.title, "attribution": self.attribution, "card": self.card}


def layout_for(target: Target | str) -> Layout:
    """The layout of ``target``: the badge top-left of the safe area, the title under it, the attribution at its
    foot, and intro/outro cards filling it."""
    t = Target(target)
    m = SAFE_MARGINS[t]
    safe = Box(x=m.left, y=m.top, w=WIDTH - m.left - m.right, h=HEIGHT - m.top - m.bottom)
    badge = Box(x=safe.x, y=safe.y, w=BADGE_SIZE, h=BADGE_SIZE)
    title = Box(x=safe.x, y=badge.bottom + GAP, w=safe.w, h=TITLE_HEIGHT)
    attribution = Box(x=safe.x, y=safe.bottom - ATTRIBUTION_HEIGHT, w=safe.w, h=ATTRIBUTION_HEIGHT)
    return Layout(
        target=t,
        width=WIDTH,
        height=HEIGHT,
        safe=safe,
        badge=badge,
        title=title,
        attribution=attribution,
        card=safe,
    )
