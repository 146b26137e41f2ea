"""Text drawn with Pillow into RGBA layers: a font fallback chain checked with fontTools, wrap and shrink to fit.

Every character is drawn with the first font of the chain whose cmap covers it (Latin first, then Noto CJK,
then every other installed font); a character no font covers is an error (``render.missing_glyphs``), never a
``.notdef`` box.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTCollection, TTFont
from PIL import Image, ImageDraw, ImageFont

from .errors import MISSING_GLYPHS, RenderError

RGBA = tuple[int, int, int, int]

#: searched for "every other installed font", in this order
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
#: preferred faces: (file name, family the face of a collection must name); the first found of each is used
PREFERRED = (
    ("DejaVuSans-Bold.ttf", ""),
    ("NotoSansCJK-Bold.ttc", "Noto Sans CJK KR"),
    ("NotoSansCJKkr-Bold.otf", ""),
    ("NotoSansCJK-Regular.ttc", "Noto Sans CJK KR"),
)
_FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
#: characters that need no glyph of their own (joiners, variation selectors, BOM)
_IGNORABLE = {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, *range(0xFE00, 0xFE10)}
ELLIPSIS = "…"


@dataclass(frozen=True)
class Face:
    """One font face: a file and, for a collection (.ttc), the index of the face in it."""

    path: Path
    index: int = 0

    @functools.cached_property
    def codepoints(self) -> frozenset[int]:
        """The code points this face's cmap maps to a glyph."""
        font = TTFont(str(self.path), fontNumber=self.index, lazy=True)
        try:
            return frozenset((font.getBestCmap() or {}).keys())
        finally:
            font.close()

    def font(self, size: int) -> ImageFont.FreeTypeFont:
        """The Pillow font of this face at ``size`` pixels."""
        return _pil_font(self.path, self.index, size)


@functools.lru_cache(maxsize=256)
def _pil_font(path: Path, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size=size, index=index)


def _faces_of(path: Path) -> list[tuple[Face, str]]:
    """Every face in a font file with its family name (a .ttc holds several)."""
    if path.suffix.lower() == ".ttc":
        coll = TTCollection(str(path), lazy=True)
        try:
            return [(Face(path, i), _family(f)) for i, f in enumerate(coll.fonts)]
        finally:
            coll.close()
    font = TTFont(str(path), lazy=True)
    try:
        return [(Face(path, 0), _family(font))]
    finally:
        font.close()


def _family(font: TTFont) -> str:
    name = font["name"].getDebugName(1) if "name" in font else None
    return name or ""


class FontChain:
    """Faces in fallback order; ``face_for`` picks the first that covers a character."""

    def __init__(self, faces: Sequence[Face]) -> None:
        if not faces:
            raise ValueError("a font chain needs at least one face")
        self.faces = list(faces)
        self._cache: dict[str, Face | None] = {}

    @classmethod
    def installed(cls, dirs: Iterable[Path] = FONT_DIRS) -> FontChain:
        """Latin (DejaVu Sans Bold), then Noto Sans CJK KR Bold, then every other installed font file."""
        return _installed_chain(tuple(dirs))

    @property
    def primary(self) -> Face:
        """The first face: its metrics set the line height."""
        return self.faces[0]

    def face_for(self, ch: str) -> Face | None:
        """The first face covering ``ch``, or None."""
        if ch in self._cache:
            return self._cache[ch]
        cp = ord(ch)
        found = next((f for f in self.faces if cp in f.codepoints), None)
        self._cache[ch] = found
        return found

    def missing(self, text: str) -> list[str]:
        """The distinct characters of ``text`` no face covers, in order of appearance."""
        out: list[str] = []
        for ch in text:
            if ch in out or ch in "\n\r\t" or ord(ch) in _IGNORABLE:
                continue
            if self.face_for(ch) is None:
                out.append(ch)
        return out

    def check(self, *texts: str) -> None:
        """Raise ``render.missing_glyphs`` naming every character of ``texts`` that no installed font covers."""
        missing: list[str] = []
        for t in texts:
            missing += [c for c in self.missing(t) if c not in missing]
        if missing:
            names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in missing)
            raise RenderError(
                MISSING_GLYPHS,
                f"no installed font can draw {''.join(missing)!r} ({names})",
                characters=missing,
            )


@functools.lru_cache(maxsize=4)
def _installed_chain(dirs: tuple[Path, ...]) -> FontChain:
    files = sorted(p for d in dirs if d.is_dir() for p in d.rglob("*") if p.suffix.lower() in _FONT_SUFFIXES)
    chosen: list[Face] = []
    others: list[Face] = []
    by_name = {p.name: p for p in reversed(files)}
    for name, family in PREFERRED:
        path = by_name.get(name)
        if path is None:
            continue
        for face, fam in _faces_of(path):
            if (not family or fam == family) and face not in chosen:
                chosen.append(face)
                break
    chosen_files = {f.path for f in chosen}
    for path in files:
        # the faces of one collection share a character set (Noto CJK's JP/KR/SC/TC/HK and Mono faces do):
        # one face per collection is enough to find a character, and each cmap costs a second to read
        if path not in chosen_files:
            others.append(_faces_of(path)[0][0])
    if not chosen and not others:
        raise RuntimeError("no font is installed (scripts/bootstrap.sh installs fonts-noto-cjk)")
    return FontChain(chosen + others)


def clean(text: str) -> str:
    """``text`` without the characters that need no glyph, with runs of spaces collapsed."""
    text = "".join(ch for ch in text if ord(ch) not in _IGNORABLE)
    return re.sub(r"[ \t]+", " ", text).strip()


# ------------------------------------------------------------------------------------------------------ measuring


def _runs(text: str, chain: FontChain) -> list[tuple[str, Face]]:
    """``text`` split into runs drawn with one face each (spaces stay with the run they are in)."""
    runs: list[tuple[str, Face]] = []
    for ch in text:
        face = chain.face_for(ch)
        if face is None:  # only reached when the caller skipped ``check``
            raise RenderError(MISSING_GLYPHS, f"no installed font can draw {ch!r}", characters=[ch])
        if runs and (face == runs[-1][1] or (ch == " " and 32 in runs[-1][1].codepoints)):
            runs[-1] = (runs[-1][0] + ch, runs[-1][1])
        else:
            runs.append((ch, face))
    return runs


def text_width(text: str, chain: FontChain, size: int) -> float:
    """The advance width of one line of ``text`` at ``size`` pixels."""
    return sum(face.font(size).getlength(run) for run, face in _runs(text, chain))


def _breakable(ch: str) -> bool:
    """A character a line may break after without a space (CJK ideographs, kana; Hangul keeps word breaks)."""
    if "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff":
        return False
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _tokens(paragraph: str) -> list[str]:
    """Words with their trailing space; each CJK ideograph or kana is a word of its own."""
    out: list[str] = []
    for word in re.findall(r"\S+\s*", paragraph):
        cur = ""
        for ch in word:
            if _breakable(ch):
                if cur:
                    out.append(cur)
                out.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            if out and cur.isspace():
                out[-1] += cur
            else:
                out.append(cur)
    return out


def wrap(text: str, chain: FontChain, size: int, width: int) -> list[str]:
    """Greedy line breaking at word (or CJK character) boundaries; a word wider than a line breaks anywhere."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for tok in _tokens(paragraph):
            cand = line + tok
            if text_width(cand.rstrip(), chain, size) <= width:
                line = cand
                continue
            if line:
                lines.append(line.rstrip())
                line = ""
            while text_width(tok.rstrip(), chain, size) > width and len(tok.rstrip()) > 1:
                cut = len(tok)
                while cut > 1 and text_width(tok[:cut], chain, size) > width:
                    cut -= 1
                lines.append(tok[:cut])
                tok = tok[cut:]
            line = tok
        lines.append(line.rstrip())
    return [ln for ln in lines if ln] or [""]


def _ellipsize(line: str, chain: FontChain, size: int, width: int) -> str:
    while line and text_width(line + ELLIPSIS, chain, size) > width:
        line = line[:-1].rstrip()
    return line + ELLIPSIS


# ------------------------------------------------------------------------------------------------------- drawing


@dataclass(frozen=True, kw_only=True)
class TextStyle:
    """How a block of text looks and how far it may shrink."""

    max_size: int
    min_size: int
    max_lines: int = 3
    fill: RGBA = (255, 255, 255, 255)
    outline: RGBA = (0, 0, 0, 255)
    #: outline width as a fraction of the font size (0 = none)
    outline_ratio: float = 0.07
    #: a rounded plate behind the text (None = none), and its padding in pixels
    plate: RGBA | None = (0, 0, 0, 170)
    padding: int = 18
    align: str = "left"  # left | center
    line_spacing: float = 1.22


@dataclass(frozen=True, kw_only=True)
class FittedText:
    """Lines at a size that fit the box."""

    lines: list[str]
    size: int

    def line_height(self, style: TextStyle) -> int:
        """Pixels from one baseline to the next."""
        return round(self.size * style.line_spacing)


def fit(text: str, chain: FontChain, style: TextStyle, width: int, height: int) -> FittedText:
    """The largest size (``max_size`` down to ``min_size``) at which ``text`` wraps into the box; at the smallest
    size, lines past ``max_lines`` (or the box's height) are dropped and the last one ends in an ellipsis."""
    inner_w = width - 2 * style.padding
    inner_h = height - 2 * style.padding
    size = style.max_size
    while True:
        lines = wrap(text, chain, size, inner_w)
        fits_lines = min(style.max_lines, max(1, inner_h // max(1, round(size * style.line_spacing))))
        if len(lines) <= fits_lines or size <= style.min_size:
            break
        size = max(style.min_size, size - max(2, size // 12))
    if len(lines) > fits_lines:
        lines = [*lines[: fits_lines - 1], _ellipsize(lines[fits_lines - 1], chain, size, inner_w)]
    return FittedText(lines=lines, size=size)


def draw_text(
    text: str, chain: FontChain, style: TextStyle, width: int, height: int, *, valign: str = "top"
) -> Image.Image:
    """An RGBA image ``width`` x ``height`` with ``text`` fitted into it (plate, outline); transparent elsewhere."""
    text = clean(text)
    chain.check(text)
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    if not text:
        return img
    fitted = fit(text, chain, style, width, height)
    size, lh = fitted.size, fitted.line_height(style)
    widths = [text_width(ln, chain, size) for ln in fitted.lines]
    primary = chain.primary.font(size)
    ascent, descent = primary.getmetrics()
    block_h = lh * (len(fitted.lines) - 1) + ascent + descent
    block_w = max(widths)
    pad = style.padding
    top = pad if valign == "top" else max(pad, (height - block_h) // 2)
    draw = ImageDraw.Draw(img)
    if style.plate is not None:
        left = pad if style.align == "left" else (width - block_w) / 2
        draw.rounded_rectangle(
            (left - pad, top - pad, left + block_w + pad, top + block_h + pad),
            radius=min(28, pad + 8),
            fill=style.plate,
        )
    stroke = max(1, round(size * style.outline_ratio)) if style.outline_ratio > 0 else 0
    for i, (line, w) in enumerate(zip(fitted.lines, widths, strict=True)):
        x = float(pad) if style.align == "left" else (width - w) / 2
        baseline = top + ascent + i * lh
        for run, face in _runs(line, chain):
            font = face.font(size)
            draw.text(
                (x, baseline),
                run,
                font=font,
                fill=style.fill,
                anchor="ls",
                stroke_width=stroke,
                stroke_fill=style.outline,
            )
            x += font.getlength(run)
    return img
