"""libx264 options every encoder of the platform uses: High profile, CRF capped by a VBV, closed fixed GOPs.

Streaming's ladder and render's shorts both encode with these (and their benchmarks pass the very same options to
the ffmpeg CLI baseline), so a finding about x264 is fixed once: see ``vbv-init`` below.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class EncoderBase:
    """What every encoder's settings have: x264's preset, the GOP length and the AAC bitrate."""

    preset: str = "veryfast"
    gop_s: float = 2.0
    audio_bitrate: int = 128_000


def capped_crf(
    *,
    preset: str,
    crf: int,
    maxrate_kbps: int,
    bufsize_kbps: int,
    gop_frames: int,
    forced_keyframes: bool = False,
) -> dict[str, str]:
    """libx264 codec options: CRF under a ``maxrate``/``bufsize`` cap, a keyframe every ``gop_frames``, no scenecut.

    ``forced_keyframes``: the caller forces each keyframe (HLS segment boundaries), so x264's own keyint is set one
    past the boundary and never places one itself. ``vbv-init=0.1`` starts with a near-empty VBV buffer (x264 starts
    at 90 %), else the first GOP may spend almost twice the cap.
    """
    keyint = gop_frames + 1 if forced_keyframes else gop_frames
    opts = {
        "preset": preset,
        "crf": str(crf),
        "maxrate": f"{maxrate_kbps}k",
        "bufsize": f"{bufsize_kbps}k",
        "profile": "high",
        "x264-params": f"keyint={keyint}:min-keyint={gop_frames}:scenecut=0:open-gop=0:vbv-init=0.1",
    }
    if forced_keyframes:
        opts["forced-idr"] = "1"
    return opts
