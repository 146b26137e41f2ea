"""A real render with PyAV: 4 generated clips (sizes, rates, rotation, 44.1 kHz mono, one without audio) → a
1080x1920 MP4 that ffprobe reads, of the expected length, with badges where the layout says, Korean titles drawn,
and -14 LUFS by ffmpeg's own meter; coded errors, cancel and progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from common.testing.media import make_audio
from render.compose import (
    ClipSource,
    RenderResult,
    RenderSpec,
    ShortClipPolicy,
    fit_for,
    probe_clip,
    render_short,
)
from render.errors import (
    CLIP_TOO_SHORT,
    MEDIA_NO_VIDEO,
    MEDIA_UNREADABLE,
    MISSING_GLYPHS,
    Canceled,
    RenderError,
)
from render.layout import FPS, Target, layout_for
from render.overlays import Layer, badge_colour, clip_layers, intro_card, outro_card
from render.samples import make_clip
from render.text import FontChain

# one worker renders the shared short once (make test runs --dist loadgroup)
pytestmark = pytest.mark.xdist_group("render_compose")

INTRO_S, OUTRO_S = 1.0, 1.5
TARGET = Target.SHORTS
SECONDS = 2.0


@pytest.fixture(scope="module")
def clips(clip_dir: Path) -> list[ClipSource]:
    """Four ranked clips, countdown order: quiet 1080p30, loud 720x1280@24, 4:3 44.1 kHz mono @25, rotated
    1280x720@60 phone shot without audio."""
    paths = [
        make_clip(clip_dir, seconds=3, width=1920, height=1080, fps=30, amplitude=0.03),
        make_clip(clip_dir, seconds=3, width=720, height=1280, fps=24, amplitude=0.6, colour=(160, 60, 40)),
        make_clip(clip_dir, seconds=3, width=640, height=480, fps=25, audio_rate=44_100, channels=1, colour=(60, 140, 60)),
        make_clip(clip_dir, seconds=3, width=1280, height=720, fps=60, has_audio=False, rotate=90, colour=(120, 120, 40)),
    ]  # fmt: skip
    titles = ["가장 빠른 고양이", "점프하는 강아지", "4:3 고전 영상", "세로 무음 클립"]
    uploaders = ["냥이집사", "dogfan", "retro_tapes_archive", "@phone"]
    return [
        ClipSource(path=p, start_s=0.5, end_s=0.5 + SECONDS, rank=4 - i, title=t, uploader=u, platform="youtube")
        for i, (p, t, u) in enumerate(zip(paths, titles, uploaders, strict=True))
    ]  # fmt: skip


@pytest.fixture(scope="module")
def rendered(
    clips: list[ClipSource], tmp_path_factory: pytest.TempPathFactory
) -> tuple[RenderResult, list[tuple[float, str, list[str]]]]:
    """The shared short, and at each progress report: its percent, stage and what its directory held then."""
    spec = RenderSpec(title="귀여운 동물 Top 4", target=TARGET, clips=clips, intro_s=INTRO_S, outro_s=OUTRO_S)
    out_dir = tmp_path_factory.mktemp("render")
    seen: list[tuple[float, str, list[str]]] = []
    result = render_short(
        spec,
        out_dir / "short.mp4",
        progress=lambda p, s: seen.append((p, s, sorted(f.name for f in out_dir.iterdir()))),
    )
    return result, seen


def _midpoint(i: int) -> float:
    return INTRO_S + SECONDS * i + SECONDS / 2


def _frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        c.seek(int(max(0.0, t - 1.0) / vs.time_base), stream=vs)
        for frame in c.decode(vs):
            if frame.time is not None and frame.time >= t - 0.5 / FPS:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {t}")


def test_the_output_is_a_1080x1920_h264_high_aac_stereo_mp4_of_the_expected_length(
    rendered: tuple[RenderResult, Any], probe_file: Callable[[Path], dict[str, Any]]
) -> None:
    result, _ = rendered
    info = probe_file(result.path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    sound = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["profile"], video["width"], video["height"]) == (
        "h264",
        "High",
        1080,
        1920,
    )
    assert video["r_frame_rate"] == "30/1" and video["pix_fmt"] == "yuv420p"
    assert (sound["codec_name"], int(sound["sample_rate"]), sound["channels"]) == ("aac", 48000, 2)
    expected = INTRO_S + 4 * SECONDS + OUTRO_S
    assert result.duration_s == pytest.approx(expected)
    assert abs(float(info["format"]["duration"]) - expected) < 0.05
    assert abs(float(sound["duration"]) - expected) < 0.05  # the silent clip still has a (silent) track
    assert int(video["nb_frames"]) == round(expected * FPS)
    head = result.path.read_bytes()[:4096]
    assert b"moov" in head  # +faststart: the index comes before the media data
    assert int(video["bit_rate"]) < 6_500_000


def test_rank_badges_are_where_the_layout_says(
    rendered: tuple[RenderResult, Any], clips: list[ClipSource]
) -> None:
    result, _ = rendered
    badge = layout_for(TARGET).badge
    for i, clip in enumerate(clips):
        img = _frame_at(result.path, _midpoint(i)).astype(int)
        # the plate's top strip, above the "#N" label
        patch = img[badge.y + 6 : badge.y + 16, badge.x + badge.w // 2 - 20 : badge.x + badge.w // 2 + 20]
        got = patch.reshape(-1, 3).mean(axis=0)
        assert np.abs(got - badge_colour(clip.rank)).max() < 24, (clip.rank, got)
        outside = (
            img[badge.y + 6 : badge.y + 16, badge.right + 40 : badge.right + 80].reshape(-1, 3).mean(axis=0)
        )
        assert np.abs(outside - badge_colour(clip.rank)).max() > 24  # and only there


def test_a_phone_shot_stored_rotated_is_shown_upright(
    rendered: tuple[RenderResult, Any], clips: list[ClipSource]
) -> None:
    result, _ = rendered
    info = probe_clip(clips[3].path)
    assert (info.width, info.height, info.rotation) == (720, 1280, 90)
    assert result.clips[3].info == info
    # the source's vertical moving bar (64 px of 1280x720) is a horizontal band once upright (x1.5 to fill)
    img = _frame_at(result.path, _midpoint(3))
    strip = img[:, 920:1080].min(axis=2) > 200  # right of the text: only the video
    bright_rows = int(strip.all(axis=1).sum())
    assert 60 <= bright_rows <= 200, bright_rows


def _white_iou(want: np.ndarray, region: np.ndarray) -> float:
    """How well the white text of a drawn image (RGBA: opaque white; RGB: white) matches the frame's white pixels."""
    want_white = want[..., :3].min(axis=2) > 200
    if want.shape[2] == 4:
        want_white &= want[..., 3] > 200
    got_white = region.min(axis=2) > 170
    return float((want_white & got_white).sum() / (want_white | got_white).sum())


def _layer_iou(img: np.ndarray, layer: Layer) -> float:
    want = np.asarray(layer.image)
    return _white_iou(want, img[layer.y : layer.y + want.shape[0], layer.x : layer.x + want.shape[1]])


@pytest.mark.parametrize("which", [1, 2], ids=["korean title", "attribution @uploader · platform"])
def test_titles_and_attributions_are_drawn_as_their_layers_say(
    rendered: tuple[RenderResult, Any], clips: list[ClipSource], fonts: FontChain, which: int
) -> None:
    result, _ = rendered
    layout = layout_for(TARGET)
    for i, clip in enumerate(clips):
        layer = clip_layers(layout, clip.text, fonts)[which]
        assert layer.y >= layout.title.y if which == 1 else layer.y >= layout.attribution.y
        img = _frame_at(result.path, _midpoint(i))
        assert _layer_iou(img, layer) > 0.6, (clip.title, clip.uploader)
        other = clip_layers(layout, clips[(i + 1) % len(clips)].text, fonts)[which]
        assert _layer_iou(img, other) < _layer_iou(img, layer) - 0.2  # this clip's text, not the next one's


def test_the_intro_card_shows_the_project_title_and_the_outro_card_lists_every_source(
    rendered: tuple[RenderResult, Any], clips: list[ClipSource], fonts: FontChain
) -> None:
    result, _ = rendered
    layout = layout_for(TARGET)
    intro = np.asarray(intro_card(layout, "귀여운 동물 Top 4", fonts))
    outro = np.asarray(outro_card(layout, [c.text for c in clips], fonts))
    card = layout.card
    at_start = _frame_at(result.path, 0.5)[card.y : card.bottom, card.x : card.right]
    at_end = _frame_at(result.path, result.duration_s - 0.5)[card.y : card.bottom, card.x : card.right]
    intro, outro = (
        intro[card.y : card.bottom, card.x : card.right],
        outro[card.y : card.bottom, card.x : card.right],
    )
    assert _white_iou(intro, at_start) > 0.6
    assert _white_iou(outro, at_end) > 0.6
    assert _white_iou(outro, at_start) < 0.2 and _white_iou(intro, at_end) < 0.2
    no_first = np.asarray(outro_card(layout, [c.text for c in clips[1:]], fonts))
    no_first = no_first[card.y : card.bottom, card.x : card.right]
    assert _white_iou(no_first, at_end) < _white_iou(outro, at_end) - 0.1  # every source's line is there


def test_a_landscape_clip_sits_over_a_blurred_copy_of_itself_not_black_bars(
    rendered: tuple[RenderResult, Any], clips: list[ClipSource]
) -> None:
    result, _ = rendered
    info = probe_clip(clips[0].path)
    fit = fit_for(info.width, info.height)
    assert fit.mode == "blur" and fit.fg_y > 400
    safe = layout_for(TARGET).safe
    assert fit.fg_y > safe.y and fit.fg_y + fit.fg_height < safe.bottom
    img = _frame_at(result.path, _midpoint(0)).astype(int)
    above = (
        img[: safe.y].reshape(-1, 3).mean(axis=0)
    )  # above the badge and below the attribution: only the backdrop
    below = img[safe.bottom + 20 :].reshape(-1, 3).mean(axis=0)
    for strip in (above, below):
        assert strip.max() > 60, strip  # not black bars
        assert strip[2] > strip[0] + 30, strip  # the clip's own blue field (40, 90, 160), blurred


def test_loudness_is_minus_14_lufs_with_true_peak_under_minus_1(
    rendered: tuple[RenderResult, Any], loudness_of: Callable[..., tuple[float, float]]
) -> None:
    result, _ = rendered
    lufs, peak = loudness_of(result.path)
    assert -15.0 <= lufs <= -13.0
    assert peak <= -1.0
    assert abs(result.loudness.integrated_lufs - lufs) < 0.5  # the render's own meter agrees


def test_ranks_do_not_jump_in_volume_and_the_silent_clip_is_silence(
    rendered: tuple[RenderResult, Any],
    clips: list[ClipSource],
    loudness_of: Callable[..., tuple[float, float]],
) -> None:
    result, _ = rendered
    levels = [
        loudness_of(result.path, start_s=INTRO_S + SECONDS * i + 0.2, seconds=SECONDS - 0.4)[0]
        for i in range(3)
    ]
    assert max(levels) - min(levels) < 1.5, levels  # from -33 dB, -7 dB and -17 dB sources
    silent_from = INTRO_S + SECONDS * 3
    with av.open(str(result.path)) as c:
        samples = [
            f.to_ndarray()
            for f in c.decode(audio=0)
            if f.time is not None and silent_from + 0.1 < f.time < silent_from + SECONDS - 0.1
        ]
    assert samples and np.abs(np.concatenate(samples, axis=1)).max() < 1e-3


def test_loud_clicks_stay_under_minus_1_dbtp_after_aac(
    clip_dir: Path, tmp_path: Path, loudness_of: Callable[..., tuple[float, float]]
) -> None:
    clicky = make_clip(clip_dir, seconds=2.5, width=320, height=240, fps=25, amplitude=0.02, clicks=True)
    spec = RenderSpec(
        title="clicks",
        target=TARGET,
        clips=[ClipSource(path=clicky, start_s=0, end_s=2.4, rank=1)],
        intro_s=0,
        outro_s=0,
    )
    result = render_short(spec, tmp_path / "clicks.mp4")
    assert result.clips[0].gain_db > 5  # a quiet tone: raised, so the clicks would go far over full scale
    lufs, peak = loudness_of(result.path)
    assert peak <= -1.0
    assert lufs <= -13.0


def test_progress_goes_through_preparing_then_encoding_to_100(rendered: tuple[RenderResult, Any]) -> None:
    _, seen = rendered
    stages = [s for _, s, _ in seen]
    assert stages[0] == "preparing" and stages[-1] == "encoding"
    prep = [p for p, s, _ in seen if s == "preparing"]
    assert prep == sorted(prep) and prep[-1] == 100.0
    enc = [p for p, s, _ in seen if s == "encoding"]
    assert enc == sorted(enc) and enc[-1] == 100.0


def test_the_one_pass_writes_only_the_output_file_no_intermediate(rendered: tuple[RenderResult, Any]) -> None:
    result, seen = rendered
    # the output's directory, looked at every 15 frames while encoding: never anything but the MP4 itself
    encoding = [names for _, s, names in seen if s == "encoding"]
    assert len(encoding) >= result.frames // 15
    assert {n for names in encoding for n in names} == {result.path.name}
    assert all(names == [] for _, s, names in seen if s != "encoding")  # nothing before the one pass
    assert [p.name for p in result.path.parent.iterdir()] == [result.path.name]


def test_a_missing_glyph_fails_before_anything_is_written(clips: list[ClipSource], tmp_path: Path) -> None:
    spec = RenderSpec(title="Top \U00013000", target=TARGET, clips=clips[:1])
    with pytest.raises(RenderError) as e:
        render_short(spec, tmp_path / "out.mp4")
    assert e.value.code == MISSING_GLYPHS and e.value.details["characters"] == ["\U00013000"]
    assert list(tmp_path.iterdir()) == []


def test_a_clip_shorter_than_asked_is_refused_or_used_whole(clip_dir: Path, tmp_path: Path) -> None:
    short = make_clip(clip_dir, seconds=1.5, width=320, height=240, fps=25)
    clip = ClipSource(path=short, start_s=0.0, end_s=4.0, rank=1, title="short")
    refuse = RenderSpec(title="t", target=TARGET, clips=[clip], short_clips=ShortClipPolicy.REFUSE)
    with pytest.raises(RenderError) as e:
        render_short(refuse, tmp_path / "refused.mp4")
    assert e.value.code == CLIP_TOO_SHORT and e.value.details["rank"] == 1
    assert not (tmp_path / "refused.mp4").exists()
    whole = RenderSpec(title="t", target=TARGET, clips=[clip], intro_s=0, outro_s=0)
    result = render_short(whole, tmp_path / "whole.mp4")
    assert result.frames == 45  # 1.5 s at 30 fps, not looped to 4 s


def test_a_truncated_file_or_one_without_picture_fails_with_its_media_code(
    truncated_mp4: Path, tmp_path: Path
) -> None:
    cases = [(truncated_mp4, MEDIA_UNREADABLE), (make_audio(seconds=3), MEDIA_NO_VIDEO)]
    for path, code in cases:
        clip = ClipSource(path=path, start_s=0.0, end_s=2.0, rank=2, title="broken")
        spec = RenderSpec(title="t", target=TARGET, clips=[clip], intro_s=0, outro_s=0)
        with pytest.raises(RenderError) as e:
            render_short(spec, tmp_path / "out.mp4")
        assert e.value.code == code and e.value.details["rank"] == 2, (path.name, e.value)
        assert e.value.message.startswith("rank 2: ")
        assert not (tmp_path / "out.mp4").exists()


def test_cancel_stops_within_a_second_and_leaves_no_file(clips: list[ClipSource], tmp_path: Path) -> None:
    cancel = threading.Event()
    encoding = threading.Event()
    out = tmp_path / "canceled.mp4"
    spec = RenderSpec(title="cancel me", target=TARGET, clips=clips)
    outcome: list[BaseException] = []
    stopped_at: list[float] = []

    def run() -> None:
        try:
            render_short(spec, out, cancel=cancel, progress=lambda p, s: s == "encoding" and encoding.set())
        except BaseException as e:
            outcome.append(e)
        stopped_at.append(time.monotonic())

    worker = threading.Thread(target=run)
    worker.start()
    assert encoding.wait(120)
    asked = time.monotonic()
    cancel.set()
    worker.join(30)
    assert not worker.is_alive()
    assert isinstance(outcome[0], Canceled)
    assert stopped_at[0] - asked < 1.0
    assert not out.exists()


def test_cancel_stops_a_long_clips_loudness_pass_inside_the_clip(clip_dir: Path, tmp_path: Path) -> None:
    long = make_clip(clip_dir, seconds=12, width=160, height=120, fps=10)
    clip = ClipSource(path=long, start_s=0.0, end_s=12.0, rank=1, title="long")
    spec = RenderSpec(title="long", target=TARGET, clips=[clip], intro_s=0, outro_s=0)
    cancel = threading.Event()
    seen: list[tuple[float, str]] = []

    def progress(percent: float, stage: str) -> None:
        seen.append((percent, stage))
        cancel.set()  # asked at the first report, one second into the clip's 12-s loudness pass

    with pytest.raises(Canceled):
        render_short(spec, tmp_path / "out.mp4", progress=progress, cancel=cancel)
    # the pass reported once from inside the clip and stopped there: no further report, no "composing"
    assert len(seen) == 1 and seen[0][1] == "preparing" and 0 < seen[0][0] < 100 / 12 + 1, seen
    assert list(tmp_path.iterdir()) == []
