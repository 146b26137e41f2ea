"""Segmented WebVTT for HLS (RFC 8216 §3.5): a subtitle track cut into segments that line up with the media.

Each segment is a complete WebVTT file with an ``X-TIMESTAMP-MAP`` header that maps its cue times to the media's
timeline (our fMP4 renditions start at presentation time 0, so ``MPEGTS:0`` ↔ ``LOCAL:00:00:00.000``). A cue that
spans a segment boundary is written into every segment it overlaps, unchanged, as the HLS spec asks; players drop
the repeats. Pure functions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .hls import vtt_timestamp

TIMESTAMP_MAP = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"
_TIME = re.compile(r"^(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})$")


@dataclass(frozen=True, kw_only=True)
class VttCue:
    """One cue as written in the file: its id line (may be empty), times, settings and payload lines."""

    ident: str
    start_s: float
    end_s: float
    settings: str
    payload: tuple[str, ...]


def _seconds(stamp: str) -> float:
    m = _TIME.match(stamp.strip())
    if m is None:
        raise ValueError(f"not a WebVTT timestamp: {stamp!r}")
    h, mi, s, ms = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def _cue(block: list[str]) -> VttCue | None:
    timing = next((i for i, line in enumerate(block) if "-->" in line), None)
    if timing is None or timing > 1:
        return None  # NOTE, STYLE and REGION blocks carry no cue
    start, _, rest = block[timing].partition("-->")
    end, _, settings = rest.strip().partition(" ")
    return VttCue(
        ident=block[0] if timing == 1 else "",
        start_s=_seconds(start),
        end_s=_seconds(end),
        settings=settings.strip(),
        payload=tuple(block[timing + 1 :]),
    )


def parse_cues(text: str) -> list[VttCue]:
    """The cues of a WebVTT file (header, notes and styles skipped); ``ValueError`` when it is not WebVTT."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    if not lines or not lines[0].startswith("WEBVTT"):
        raise ValueError("not a WebVTT file")
    cues: list[VttCue] = []
    block: list[str] = []
    for line in [*lines[1:], ""]:
        if line.strip():
            block.append(line)
            continue
        if block:
            cue = _cue(block)
            if cue is not None:
                cues.append(cue)
            block = []
    return cues


def _write(cue: VttCue) -> str:
    head = f"{vtt_timestamp(cue.start_s)} --> {vtt_timestamp(cue.end_s)}" + (
        f" {cue.settings}" if cue.settings else ""
    )
    return "\n".join([*([cue.ident] if cue.ident else []), head, *cue.payload])


def segment(cues: list[VttCue], *, duration_s: float, segment_s: float) -> list[str]:
    """The WebVTT segments of a track over ``duration_s`` of media (at least one, possibly without cues)."""
    count = max(1, math.ceil(duration_s / segment_s - 1e-9))
    out = []
    for k in range(count):
        lo, hi = k * segment_s, (k + 1) * segment_s
        inside = [c for c in cues if c.start_s < hi and c.end_s > lo]
        body = "\n\n".join(_write(c) for c in inside)
        out.append(f"WEBVTT\n{TIMESTAMP_MAP}\n\n" + (body + "\n" if body else ""))
    return out


def media_playlist(*, segment_uris: list[str], duration_s: float, segment_s: float) -> str:
    """The VOD media playlist of a segmented subtitle track."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(segment_s)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for k, uri in enumerate(segment_uris):
        length = min(segment_s, max(duration_s - k * segment_s, 0.001))
        lines += [f"#EXTINF:{length:.3f},", uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
