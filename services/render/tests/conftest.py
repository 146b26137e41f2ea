"""Fixtures for render tests: generated clips (cached), the installed font chain, and probing helpers."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.testing.media import ffprobe, media_cache_dir
from render.samples import make_clip
from render.text import FontChain


@pytest.fixture(scope="session")
def clip_dir() -> Path:
    """Where generated render clips are cached."""
    return media_cache_dir() / "render"


@pytest.fixture
def truncated_mp4(clip_dir: Path, tmp_path: Path) -> Path:
    """A generated MP4 cut off at 40 % of its bytes, as an interrupted download leaves it."""
    whole = make_clip(clip_dir, seconds=3, width=320, height=240, fps=25)
    cut = tmp_path / "truncated.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 5])
    return cut


@pytest.fixture(scope="session")
def fonts() -> FontChain:
    """The installed fallback chain (DejaVu, Noto CJK KR, the rest)."""
    return FontChain.installed()


def ebur128(path: Path, *, start_s: float = 0.0, seconds: float | None = None) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) by ffmpeg's own ``ebur128`` filter (an independent meter)."""
    cmd = ["ffmpeg", "-hide_banner", "-nostats", "-ss", f"{start_s}"]
    if seconds is not None:
        cmd += ["-t", f"{seconds}"]
    cmd += ["-i", str(path), "-vn", "-af", "ebur128=peak=true", "-f", "null", "-"]
    err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    summary = err[err.rindex("Summary:") :]
    lufs = float(summary.split("I:")[1].split("LUFS")[0])
    peak = float(summary.split("Peak:")[1].split("dBFS")[0])
    return lufs, peak


@pytest.fixture(scope="session")
def probe_file() -> Callable[[Path], dict[str, Any]]:
    """``ffprobe`` as a fixture."""
    return ffprobe


@pytest.fixture(scope="session")
def loudness_of() -> Callable[..., tuple[float, float]]:
    """``ebur128`` as a fixture."""
    return ebur128
