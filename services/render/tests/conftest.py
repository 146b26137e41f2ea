"""Fixtures for render tests: generated clips (cached), the installed font chain, and probing helpers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common.testing.media import media_cache_dir
from render.text import FontChain


@pytest.fixture(scope="session")
def clip_dir() -> Path:
    """Where generated render clips are cached."""
    return media_cache_dir() / "render"


@pytest.fixture(scope="session")
def fonts() -> FontChain:
    """The installed fallback chain (DejaVu, Noto CJK KR, the rest)."""
    return FontChain.installed()


def ffprobe(path: Path) -> dict[str, Any]:
    """ffprobe's streams and format of ``path``."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    info: dict[str, Any] = json.loads(out.stdout)
    return info


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
