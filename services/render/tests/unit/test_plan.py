"""A clip's window: moved back inside a clip, a short clip used whole or refused, never looped."""

from __future__ import annotations

from pathlib import Path

import pytest

from render.compose import (
    ClipInfo,
    ClipSource,
    RenderSpec,
    ShortClipPolicy,
    estimate_seconds,
    fit_for,
    plan_clip,
)
from render.errors import CLIP_TOO_SHORT, RenderError
from render.layout import Target

INFO = ClipInfo(duration_s=5.0, width=1920, height=1080, rotation=0, has_audio=True)


def _clip(start: float, end: float) -> ClipSource:
    return ClipSource(path=Path("clip.mp4"), start_s=start, end_s=end, rank=3)


def test_the_asked_window_is_used_as_it_is() -> None:
    plan = plan_clip(_clip(1.0, 3.0), INFO, policy=ShortClipPolicy.REFUSE)
    assert (plan.start_s, plan.frames) == (1.0, 60)


def test_a_window_past_the_end_moves_back_inside_the_clip() -> None:
    plan = plan_clip(_clip(4.0, 8.0), INFO, policy=ShortClipPolicy.REFUSE)
    assert (plan.start_s, plan.frames) == (1.0, 120)


def test_a_short_clip_is_used_whole() -> None:
    plan = plan_clip(_clip(0.0, 8.0), INFO, policy=ShortClipPolicy.USE_WHOLE)
    assert (plan.start_s, plan.frames) == (0.0, 150)  # 5 s, not 8: never looped


def test_a_short_clip_is_refused_with_a_code() -> None:
    with pytest.raises(RenderError) as e:
        plan_clip(_clip(0.0, 8.0), INFO, policy=ShortClipPolicy.REFUSE)
    assert e.value.code == CLIP_TOO_SHORT
    assert e.value.details == {"rank": 3, "clip_s": 5.0, "asked_s": 8.0}


def test_a_clip_under_the_minimum_is_refused_even_when_used_whole() -> None:
    tiny = ClipInfo(duration_s=0.4, width=640, height=480, rotation=0, has_audio=False)
    with pytest.raises(RenderError) as e:
        plan_clip(_clip(0.0, 8.0), tiny, policy=ShortClipPolicy.USE_WHOLE, min_clip_s=1.0)
    assert e.value.code == CLIP_TOO_SHORT


@pytest.mark.parametrize(
    ("size", "mode", "fg_height"),
    [
        ((1920, 1080), "blur", 608),
        ((640, 480), "blur", 810),
        ((720, 1280), "fill", 1920),
        ((1080, 1350), "blur", 1350),
    ],
)
def test_landscape_sits_over_a_blur_and_vertical_fills(
    size: tuple[int, int], mode: str, fg_height: int
) -> None:
    fit = fit_for(*size)
    assert (fit.mode, fit.fg_height) == (mode, fg_height)


def test_the_estimate_for_pricing_counts_intro_clips_and_outro() -> None:
    spec = RenderSpec(
        title="t", target=Target.SHORTS, clips=[_clip(0, 8), _clip(3, 11)], intro_s=1.5, outro_s=3
    )
    assert estimate_seconds(spec) == 20.5
