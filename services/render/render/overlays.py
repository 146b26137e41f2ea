"""The Pillow layers of a short: per-clip rank badge, title bar and attribution line; intro and outro cards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from .layout import Box, Layout
from .text import RGBA, FontChain, TextStyle, clean, draw_text

#: badge plates: gold, silver, bronze, then one colour for the rest
BADGE_COLOURS: dict[int, tuple[int, int, int]] = {1: (255, 190, 0), 2: (200, 200, 210), 3: (205, 120, 45)}
BADGE_DEFAULT = (225, 30, 90)
CARD_TOP = (18, 18, 32)
CARD_BOTTOM = (70, 20, 60)

TITLE_STYLE = TextStyle(max_size=84, min_size=44, max_lines=3)
ATTRIBUTION_STYLE = TextStyle(max_size=44, min_size=28, max_lines=1, padding=14, plate=(0, 0, 0, 150))
BADGE_STYLE = TextStyle(max_size=104, min_size=56, max_lines=1, padding=8, plate=None, align="center")
INTRO_STYLE = TextStyle(max_size=120, min_size=56, max_lines=5, plate=None, align="center")
OUTRO_HEAD_STYLE = TextStyle(max_size=84, min_size=48, max_lines=1, plate=None, align="center")
OUTRO_LINE_STYLE = TextStyle(max_size=40, min_size=24, max_lines=2, plate=None, padding=6)


@dataclass(frozen=True, kw_only=True)
class ItemText:
    """What is written over one clip and in the outro."""

    rank: int
    title: str
    uploader: str
    platform: str


@dataclass(frozen=True, kw_only=True)
class Layer:
    """An RGBA image placed at (x, y) on the frame, cropped to what it draws (x and y even, for 4:2:0)."""

    image: Image.Image
    x: int
    y: int


def attribution(uploader: str, platform: str) -> str:
    """``@uploader · platform`` (either part may be missing)."""
    handle = clean(uploader).lstrip("@")
    parts = [f"@{handle}" if handle else "", clean(platform)]
    return " · ".join(p for p in parts if p)


def badge_colour(rank: int) -> tuple[int, int, int]:
    """The plate colour of a rank's badge."""
    return BADGE_COLOURS.get(rank, BADGE_DEFAULT)


def check_texts(chain: FontChain, project_title: str, items: Sequence[ItemText]) -> None:
    """``render.missing_glyphs`` for any character of any text of the short that no font covers (before decoding)."""
    texts = [project_title, "Sources"]
    for it in items:
        texts += [it.title, attribution(it.uploader, it.platform), f"#{it.rank}"]
    chain.check(*(clean(t) for t in texts))


def _placed(img: Image.Image, box: Box) -> Layer | None:
    bbox = img.getchannel("A").getbbox()
    if bbox is None:
        return None
    left, top = bbox[0] & ~1, bbox[1] & ~1
    right, bottom = min(img.width, (bbox[2] + 1) & ~1), min(img.height, (bbox[3] + 1) & ~1)
    return Layer(image=img.crop((left, top, right, bottom)), x=(box.x + left) & ~1, y=(box.y + top) & ~1)


def badge_image(rank: int, chain: FontChain, size: int) -> Image.Image:
    """A rounded square in the rank's colour with ``#rank`` on it."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(img).rounded_rectangle(
        (0, 0, size - 1, size - 1), radius=size // 6, fill=(*badge_colour(rank), 255)
    )
    label = draw_text(f"#{rank}", chain, BADGE_STYLE, size, size, valign="middle")
    return Image.alpha_composite(img, label)


def clip_layers(layout: Layout, item: ItemText, chain: FontChain) -> list[Layer]:
    """The layers over one clip: badge, title bar, attribution; each inside the target's safe area."""
    out: list[Layer] = []
    badge = badge_image(item.rank, chain, layout.badge.w)
    title = draw_text(item.title, chain, TITLE_STYLE, layout.title.w, layout.title.h)
    credit = draw_text(
        attribution(item.uploader, item.platform),
        chain,
        ATTRIBUTION_STYLE,
        layout.attribution.w,
        layout.attribution.h,
        valign="middle",
    )
    for img, box in ((badge, layout.badge), (title, layout.title), (credit, layout.attribution)):
        placed = _placed(img, box)
        if placed is not None:
            out.append(placed)
    return out


def _background(layout: Layout) -> Image.Image:
    """A vertical gradient between the card colours."""
    col = Image.linear_gradient("L").resize((1, layout.height))
    top = Image.new("RGB", (1, layout.height), CARD_TOP)
    bottom = Image.new("RGB", (1, layout.height), CARD_BOTTOM)
    return Image.composite(bottom, top, col).resize((layout.width, layout.height))


def intro_card(layout: Layout, title: str, chain: FontChain) -> Image.Image:
    """The opening card: the project's title, centred in the safe area."""
    img = _background(layout)
    text = draw_text(title, chain, INTRO_STYLE, layout.card.w, layout.card.h, valign="middle")
    img.paste(text, (layout.card.x, layout.card.y), text)
    return img


def outro_card(layout: Layout, items: Sequence[ItemText], chain: FontChain) -> Image.Image:
    """The closing card: every source as ``#rank @uploader · platform — title``."""
    img = _background(layout)
    card = layout.card
    head_h = 130
    head = draw_text("Sources", chain, OUTRO_HEAD_STYLE, card.w, head_h)
    img.paste(head, (card.x, card.y), head)
    rows = max(1, len(items))
    row_h = min(140, (card.h - head_h) // rows)
    for i, it in enumerate(sorted(items, key=lambda x: x.rank)):
        line = f"#{it.rank} {attribution(it.uploader, it.platform)}"
        if clean(it.title):
            line += f" — {clean(it.title)}"
        row = draw_text(line, chain, OUTRO_LINE_STYLE, card.w, row_h)
        img.paste(row, (card.x, card.y + head_h + i * row_h), row)
    return img


def rgba_fill(colour: tuple[int, int, int]) -> RGBA:
    """An opaque RGBA of an RGB colour."""
    return (*colour, 255)
