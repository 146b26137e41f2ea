"""A newcomer's first run: bootstrap then make, with no uv on PATH and a fresh HOME (the bug CI once hid).

`pip install uv` may put uv beside the Python, off PATH; make used to resolve uv once at start-up, before
bootstrap installed it, and fell back to ``~/.local/bin/uv``. Both commands must work on the first run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _path_without_uv(tmp: Path) -> str:
    """PATH with every directory that holds a ``uv`` removed, plus one holding only the base python3."""
    only_python = tmp / "bin"
    only_python.mkdir()
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    (only_python / "python3").symlink_to(base)
    kept = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not (Path(d) / "uv").exists() and ".venv" not in Path(d).parts
    ]
    return os.pathsep.join([str(only_python), *kept])


@pytest.mark.xdist_group("fresh_machine")
def test_bootstrap_then_make_without_uv_on_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": _path_without_uv(tmp_path),
        "CI": "true",
        "LANG": "C.UTF-8",
        # the fresh HOME has no uv cache; share the machine's so the check costs seconds, not a download
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
    }
    assert subprocess.run(["bash", "-c", "command -v uv"], env=env, capture_output=True).returncode != 0
    boot = subprocess.run(
        ["scripts/bootstrap.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert boot.returncode == 0, boot.stdout + boot.stderr
    make = subprocess.run(["make", "doctor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert make.returncode == 0, make.stdout + make.stderr
    assert "uv: uv " in make.stdout and "python: 3.11" in make.stdout, make.stdout
    assert "cli: reelforge, version" in make.stdout, make.stdout  # the CLI's console script is in the venv
