"""Ladder planning: which renditions a source gets (never upscaled) and the x264/AAC settings they share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from common import x264

from .probe import SourceInfo


@dataclass(frozen=True, kw_only=True)
class Rung:
    """One rendition of the ladder: size and capped bitrate."""

    name: str
    width: int
    height: int
    maxrate_kbps: int
    crf: int = 23

    @property
    def bufsize_kbps(self) -> int:
        """VBV buffer: two seconds of the cap, so the peak stays near ``maxrate`` per 2-s segment."""
        return self.maxrate_kbps * 2


# (short side, cap in kbit/s at ≤ 30 fps); high frame rates get 1.5x
LADDER: tuple[tuple[int, int], ...] = ((1080, 5000), (720, 3000), (480, 1500), (360, 800), (240, 400))


def even(x: float) -> int:
    """``x`` rounded to an even number of pixels (at least 2)."""
    return max(2, round(x / 2.0) * 2)


def plan_ladder(info: SourceInfo, *, max_short_side: int = 1080) -> list[Rung]:
    """Rungs no bigger than the source (never upscale), sized on the short side so 9:16 and 4:3 keep their shape.

    A source smaller than the lowest rung gets one rung at its own size (rounded to even), named like that rung.
    """
    w, h = info.display_width, info.display_height
    short = min(w, h)
    rungs: list[Rung] = []
    fps_factor = 1.5 if float(info.fps) > 31 else 1.0
    for side, cap in LADDER:
        if side > max_short_side or side > short:
            continue
        scale = side / short
        rw, rh = even(w * scale), even(h * scale)
        if min(rw, rh) != side:  # keep the named side exact; the long side absorbs the rounding
            rw, rh = (side, rh) if w <= h else (rw, side)
        rungs.append(Rung(name=f"{side}p", width=rw, height=rh, maxrate_kbps=int(cap * fps_factor)))
    if not rungs:
        side, cap = LADDER[-1]
        rungs.append(
            Rung(
                name=f"{side}p",
                width=even(w) if w % 2 == 0 else w - 1 or 2,
                height=even(h) if h % 2 == 0 else h - 1 or 2,
                maxrate_kbps=int(cap * fps_factor),
            )
        )
    return rungs


@dataclass(frozen=True, kw_only=True)
class EncoderSettings(x264.EncoderBase):
    """x264/AAC settings shared by every rung (and by the ffmpeg CLI baseline of the benchmark)."""

    audio_rate: int = 48_000
    threads: int = 0  # 0 = let x264 decide

    def x264_options(self, rung: Rung, fps: Fraction) -> dict[str, str]:
        """Codec options: capped CRF, closed GOPs; keyframes are forced at the GOP boundaries per frame."""
        gop_frames = math.ceil(self.gop_s * fps)
        opts = x264.capped_crf(
            preset=self.preset,
            crf=rung.crf,
            maxrate_kbps=rung.maxrate_kbps,
            bufsize_kbps=rung.bufsize_kbps,
            gop_frames=gop_frames,
            forced_keyframes=True,
        )
        if self.threads:
            opts["threads"] = str(self.threads)
        return opts
