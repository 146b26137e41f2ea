"""Probe: open a source, check that it can become a stream, and describe it (``SourceInfo``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from .errors import MEDIA_NO_VIDEO, MEDIA_UNREADABLE, MEDIA_UNSUPPORTED_CODEC, MediaError


@dataclass(frozen=True, kw_only=True)
class SourceInfo:
    """What the worker needs to know about a source file."""

    width: int  # coded size
    height: int
    display_width: int  # after rotation and pixel aspect ratio, before rounding to even
    display_height: int
    rotation: int  # counter-clockwise degrees from the display matrix: 0, 90, 180, 270
    duration_s: float
    fps: Fraction  # the output frame rate (constant)
    variable_frame_rate: bool
    video_codec: str
    pix_fmt: str
    profile: str
    bit_rate: int
    has_audio: bool
    audio_codec: str = ""
    audio_profile: str = ""
    audio_rate: int = 0
    audio_channels: int = 0

    @property
    def has_video(self) -> bool:
        """False for an audio-only source (ingest lets one through with ``allow_audio_only``)."""
        return bool(self.video_codec)

    @property
    def total_frames(self) -> int:
        """Frames of one constant-rate output rendition."""
        return max(1, math.ceil(self.duration_s * self.fps - 1e-6))

    @property
    def video_copyable(self) -> bool:
        """H.264 that every player decodes as it is: 8-bit 4:2:0, ≤ High, sane size and rate, no rotation."""
        return (
            self.video_codec == "h264"
            and self.pix_fmt in ("yuv420p", "yuvj420p")
            and self.profile in ("Baseline", "Constrained Baseline", "Main", "High")
            and self.rotation == 0
            and self.width % 2 == 0
            and self.height % 2 == 0
            and 16 <= self.width <= 4096
            and 16 <= self.height <= 4096
            and 1 <= float(self.fps) <= 60.5
        )

    @property
    def audio_copyable(self) -> bool:
        """AAC-LC mono/stereo at 44.1 or 48 kHz: copied as the audio rendition instead of re-encoded."""
        return (
            self.has_audio
            and self.audio_codec == "aac"
            and self.audio_profile.upper() == "LC"
            and self.audio_channels in (1, 2)
            and self.audio_rate in (44100, 48000)
        )

    @property
    def copyable(self) -> bool:
        """A stream-copy ``src`` rendition (remux, no re-encode) makes the video playable at once."""
        return self.video_copyable and (not self.has_audio or self.audio_copyable)


_PROFILE_NAMES = {
    "constrained baseline": "Constrained Baseline",
    "baseline": "Baseline",
    "main": "Main",
    "high": "High",
}


def _norm_rotation(deg: float) -> int:
    return round(deg / 90.0) * 90 % 360


def probe(path: Path, *, max_fps: float = 60.0) -> SourceInfo:
    """Open, check and describe a source; ``MediaError`` with a stable code when it cannot be streamed."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(MEDIA_UNREADABLE, "the file is not a readable media container") from e
    with container:
        if not container.streams.video:
            if container.streams.audio:
                return _probe_audio_only(container)
            raise MediaError(MEDIA_NO_VIDEO, "the file has neither a video nor an audio stream")
        vs = container.streams.video[0]
        cc = vs.codec_context
        if cc is None or not cc.name:
            raise MediaError(MEDIA_UNSUPPORTED_CODEC, "the video codec is not supported")
        try:
            av.codec.Codec(cc.name, "r")
        except (av.error.FFmpegError, ValueError) as e:
            raise MediaError(MEDIA_UNSUPPORTED_CODEC, f"no decoder for video codec {cc.name}") from e
        vs.thread_type = "AUTO"
        try:
            first = next(container.decode(vs))
        except StopIteration as e:
            raise MediaError(MEDIA_UNREADABLE, "the video stream has no decodable frame") from e
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise MediaError(MEDIA_UNREADABLE, "the video stream cannot be decoded") from e
        rotation = _norm_rotation(first.rotation or 0)
        width, height = first.width, first.height
        sar = vs.sample_aspect_ratio or Fraction(1, 1)
        disp_w = width * float(sar) if sar and float(sar) > 0 else float(width)
        disp_h = float(height)
        if rotation in (90, 270):
            disp_w, disp_h = disp_h, disp_w
        duration = _duration(container, vs)
        if duration <= 0:
            raise MediaError(MEDIA_UNREADABLE, "the video has no duration")
        avg = vs.average_rate or vs.guessed_rate or Fraction(30, 1)
        base = vs.base_rate or avg
        vfr = bool(avg and base and abs(float(avg) - float(base)) > 0.01 * float(base))
        # a variable-rate source (phones) is resampled to the nearest whole rate, so 2-s GOPs are whole frames
        fps = _output_fps(Fraction(round(float(avg))) if vfr else Fraction(avg), max_fps=max_fps)
        return SourceInfo(
            width=width,
            height=height,
            display_width=max(2, round(disp_w)),
            display_height=max(2, round(disp_h)),
            rotation=rotation,
            duration_s=duration,
            fps=fps,
            variable_frame_rate=vfr,
            video_codec=cc.name,
            pix_fmt=str(cc.pix_fmt or first.format.name),
            profile=_PROFILE_NAMES.get(str(cc.profile or "").lower(), str(cc.profile or "")),
            bit_rate=int(cc.bit_rate or container.bit_rate or 0),
            **_audio_fields(container),
        )


def _audio_fields(container: Any) -> dict[str, Any]:
    """The ``SourceInfo`` fields of the container's first audio stream (``has_audio=False`` without one)."""
    a = container.streams.audio[0] if container.streams.audio else None
    if a is None or a.codec_context is None:
        return {"has_audio": False}
    ac = a.codec_context
    return {
        "has_audio": True,
        "audio_codec": ac.name or "",
        "audio_profile": ac.profile or "",
        "audio_rate": int(a.rate or 0),
        "audio_channels": int(ac.channels if hasattr(ac, "channels") else a.layout.nb_channels),
    }


def _probe_audio_only(container: Any) -> SourceInfo:
    """An audio-only source: no picture (sizes 0, no video codec), its audio checked decodable."""
    a = container.streams.audio[0]
    try:
        next(container.decode(a))
    except StopIteration as e:
        raise MediaError(MEDIA_UNREADABLE, "the audio stream has no decodable frame") from e
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise MediaError(MEDIA_UNREADABLE, "the audio stream cannot be decoded") from e
    duration = _duration(container, a)
    if duration <= 0:
        raise MediaError(MEDIA_UNREADABLE, "the audio has no duration")
    return SourceInfo(
        width=0,
        height=0,
        display_width=0,
        display_height=0,
        rotation=0,
        duration_s=duration,
        fps=Fraction(0),
        variable_frame_rate=False,
        video_codec="",
        pix_fmt="",
        profile="",
        bit_rate=int(container.bit_rate or 0),
        **_audio_fields(container),
    )


def _duration(container: Any, vs: Any) -> float:
    if vs.duration and vs.time_base:
        return float(vs.duration * vs.time_base)
    if container.duration:
        return float(container.duration) / 1_000_000
    return 0.0


def _output_fps(rate: Fraction, *, max_fps: float) -> Fraction:
    """Keep the source rate (NTSC rates stay exact), halve it above ``max_fps``."""
    if rate <= 0:
        return Fraction(30, 1)
    rate = rate.limit_denominator(1001)
    while float(rate) > max_fps + 0.5:
        rate /= 2
    return rate
