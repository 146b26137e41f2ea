"""Text: the fallback chain draws Korean with Noto CJK (not boxes), wraps and shrinks long titles, and names the
characters no installed font covers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from render.errors import MISSING_GLYPHS, RenderError
from render.overlays import TITLE_STYLE
from render.text import FontChain, TextStyle, clean, draw_text, fit, text_width

HIEROGLYPH = "\U00013000"  # EGYPTIAN HIEROGLYPH A001: no installed font has it


def _mask(img: Image.Image) -> np.ndarray:
    return np.asarray(img.getchannel("A")) > 128


def test_latin_comes_from_the_first_face_and_hangul_from_noto_cjk(fonts: FontChain) -> None:
    assert fonts.face_for("A") == fonts.primary
    hangul = fonts.face_for("한")
    assert hangul is not None and "NotoSansCJK" in hangul.path.name
    assert fonts.face_for("猫") == hangul


def test_a_character_the_first_two_faces_lack_falls_back_further(fonts: FontChain) -> None:
    first_two = fonts.faces[0].codepoints | fonts.faces[1].codepoints
    later = next(
        cp for f in fonts.faces[2:] for cp in sorted(f.codepoints) if cp > 0x7F and cp not in first_two
    )
    face = fonts.face_for(chr(later))
    assert face is not None and face not in fonts.faces[:2]


def test_korean_is_drawn_with_its_glyphs_not_notdef_boxes(fonts: FontChain) -> None:
    style = TextStyle(max_size=96, min_size=96, plate=None, outline_ratio=0, padding=0)
    drawn = _mask(draw_text("한국어", fonts, style, 400, 140))
    noto = fonts.face_for("한")
    assert noto is not None
    # the same text drawn straight with Noto CJK, and with DejaVu (which has no Hangul: .notdef boxes)
    ref = Image.new("RGBA", (400, 140))
    ImageDraw.Draw(ref).text(
        (0, fonts.primary.font(96).getmetrics()[0]), "한국어", font=noto.font(96), anchor="ls", fill="white"
    )
    tofu = Image.new("RGBA", (400, 140))
    ImageDraw.Draw(tofu).text(
        (0, fonts.primary.font(96).getmetrics()[0]),
        "한국어",
        font=fonts.primary.font(96),
        anchor="ls",
        fill="white",
    )
    assert drawn.sum() > 1000
    assert (drawn == _mask(ref)).mean() > 0.99
    assert (drawn != _mask(tofu)).sum() > 0.3 * drawn.sum()
    assert 0x1100 not in fonts.primary.codepoints and ord("한") not in fonts.primary.codepoints


def test_a_character_no_font_covers_is_a_coded_error_naming_it(fonts: FontChain) -> None:
    with pytest.raises(RenderError) as e:
        draw_text(f"Top 5 {HIEROGLYPH} 고양이", fonts, TITLE_STYLE, 900, 300)
    assert e.value.code == MISSING_GLYPHS
    assert e.value.details["characters"] == [HIEROGLYPH]
    assert "U+13000" in e.value.message


def test_joiners_and_variation_selectors_need_no_glyph(fonts: FontChain) -> None:
    assert fonts.missing("a\u200db\ufe0f") == []
    assert clean("  a \u200d b  ") == "a b"


def test_a_short_title_keeps_the_largest_size(fonts: FontChain) -> None:
    fitted = fit("Cats", fonts, TITLE_STYLE, 950, 300)
    assert fitted.size == TITLE_STYLE.max_size and fitted.lines == ["Cats"]


@pytest.mark.parametrize(
    "title",
    [
        "The fastest cat in the whole wide world, caught on camera running through the park at night",
        "세상에서 가장 빠른 고양이가 공원을 가로질러 달리는 놀라운 장면을 카메라에 담았습니다",
        "世界で一番速い猫が夜の公園を駆け抜ける驚きの瞬間をカメラがとらえました",
    ],
)
def test_a_long_title_wraps_and_shrinks_to_fit(fonts: FontChain, title: str) -> None:
    width, height = 950, 300
    fitted = fit(title, fonts, TITLE_STYLE, width, height)
    assert fitted.size < TITLE_STYLE.max_size
    assert 1 < len(fitted.lines) <= TITLE_STYLE.max_lines
    assert len(fitted.lines) * fitted.line_height(TITLE_STYLE) <= height
    for line in fitted.lines:
        assert text_width(line, fonts, fitted.size) <= width - 2 * TITLE_STYLE.padding
    assert "".join(fitted.lines).replace(" ", "") == title.replace(" ", "")  # nothing dropped


def test_a_title_too_long_even_at_the_smallest_size_ends_in_an_ellipsis(fonts: FontChain) -> None:
    fitted = fit("word " * 200, fonts, TITLE_STYLE, 950, 300)
    assert fitted.size == TITLE_STYLE.min_size
    assert len(fitted.lines) == TITLE_STYLE.max_lines
    assert fitted.lines[-1].endswith("…")


def test_text_is_legible_white_on_an_outline_over_a_dark_plate(fonts: FontChain) -> None:
    img = np.asarray(draw_text("Rank one", fonts, TITLE_STYLE, 950, 300))
    opaque = img[..., 3] == 255
    white = opaque & (img[..., :3].min(axis=2) > 240)
    black = opaque & (img[..., :3].max(axis=2) < 16)
    plate = (img[..., 3] > 100) & (img[..., 3] < 255)
    assert white.sum() > 2000 and black.sum() > 1000 and plate.sum() > 10000
