"""The layout keeps every text box inside the target's safe area, clear of the platform's own UI."""

from __future__ import annotations

import pytest

from render.layout import HEIGHT, SAFE_MARGINS, WIDTH, Target, layout_for
from render.overlays import ItemText, clip_layers
from render.text import FontChain


@pytest.mark.parametrize("target", list(Target))
def test_text_boxes_lie_inside_the_safe_area(target: Target) -> None:
    layout = layout_for(target)
    m = SAFE_MARGINS[target]
    assert (layout.width, layout.height) == (WIDTH, HEIGHT)
    assert layout.safe.right == WIDTH - m.right  # clear of the right-side button column
    assert layout.safe.bottom == HEIGHT - m.bottom  # clear of the bottom UI band
    for name, box in layout.text_boxes().items():
        assert layout.safe.contains(box), name
    # badge, title and attribution do not overlap
    assert layout.badge.bottom <= layout.title.y
    assert layout.title.bottom <= layout.attribution.y


@pytest.mark.parametrize("target", list(Target))
def test_drawn_layers_stay_inside_the_safe_area(target: Target, fonts: FontChain) -> None:
    layout = layout_for(target)
    item = ItemText(
        rank=10,
        title="아주 긴 제목이 여러 줄로 줄바꿈되고 글자 크기가 줄어드는지 확인하는 제목 " * 3,
        uploader="a_very_long_uploader_name_that_goes_on_and_on_and_on_and_on",
        platform="youtube",
    )
    layers = clip_layers(layout, item, fonts)
    assert len(layers) == 3
    for layer in layers:
        assert layer.x % 2 == 0 and layer.y % 2 == 0  # 4:2:0 chroma stays aligned
        assert layout.safe.x <= layer.x and layer.x + layer.image.width <= layout.safe.right
        assert layout.safe.y <= layer.y and layer.y + layer.image.height <= layout.safe.bottom


def test_the_bottom_band_is_at_least_a_quarter_of_the_frame_everywhere() -> None:
    for m in SAFE_MARGINS.values():
        assert m.bottom >= HEIGHT // 4
        assert m.right >= 160
