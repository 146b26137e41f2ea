"""Where renditions are written: the HLS (CMAF) muxer's options and the finished, measured ``RenditionOutput``."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from .hls import Measured


def hls_options(directory: Path, *, gop_s: float) -> dict[str, str]:
    """The hls muxer writing CMAF (fMP4) segments ``seg_00001.m4s`` next to ``init.mp4`` and ``index.m3u8``."""
    return {
        "hls_time": f"{gop_s:g}",
        "hls_playlist_type": "vod",
        "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": "init.mp4",
        # absolute: the muxer resolves it against the working directory (the playlist keeps the base name)
        "hls_segment_filename": str(directory / "seg_%05d.m4s"),
        "start_number": "1",
        "hls_flags": "independent_segments",
    }


@dataclass(frozen=True, kw_only=True)
class RenditionOutput:
    """A finished rendition in a local directory, measured, ready to upload."""

    name: str
    kind: str  # video | audio
    directory: Path
    width: int
    height: int
    codecs: str
    frame_rate: float
    measured: Measured
    copy: bool = False
    channels: int = 0


def open_hls(directory: Path, *, gop_s: float) -> Any:
    """An hls muxer writing ``directory/index.m3u8`` and its segments."""
    directory.mkdir(parents=True, exist_ok=True)
    return av.open(
        str(directory / "index.m3u8"), "w", format="hls", options=hls_options(directory, gop_s=gop_s)
    )


def reset_dir(directory: Path) -> None:
    """An empty ``directory`` (what an earlier attempt left there is removed)."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
