"""Temporary files: one private directory per piece of work, always removed; a sweeper for crash leftovers."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from common.logging import get_logger

log = get_logger(__name__)


@asynccontextmanager
async def workspace(root: Path, label: str) -> AsyncIterator[Path]:
    """A fresh directory under ``root``, removed with everything in it however the block ends."""
    path = root / f"{label}-{uuid.uuid4().hex}"
    await asyncio.to_thread(path.mkdir, parents=True, exist_ok=False)
    try:
        yield path
    finally:
        # synchronous on purpose: this must also run while the task is being cancelled
        shutil.rmtree(path, ignore_errors=True)


def _newest_mtime(entry: Path) -> float:
    """The most recent modification inside ``entry`` (a download in progress keeps touching its files)."""
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for dirpath, dirnames, filenames in os.walk(entry):
            for name in dirnames + filenames:
                try:
                    newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
                except FileNotFoundError:
                    continue
    return newest


def sweep(root: Path, *, max_age_s: float, now: float | None = None) -> list[Path]:
    """Remove entries of ``root`` untouched for ``max_age_s`` (left by a killed process); returns them."""
    if not root.is_dir():
        return []
    cutoff = (now if now is not None else time.time()) - max_age_s
    removed: list[Path] = []
    for entry in root.iterdir():
        try:
            if _newest_mtime(entry) >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
        except FileNotFoundError:
            continue
    if removed:
        log.info("ingest.tmp_swept", count=len(removed), root=str(root))
    return removed
