"""Search targets and the parsing of yt-dlp's flat-playlist output; temp workspaces and the sweeper."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from common.http import SERVICE_NAME
from common.jobs import JobFailure
from common.service import SETTINGS
from common.testing.bus import unique_name
from common.testing.waiting import wait_for
from ingest.app import SWEEPER, tmp_sweeper
from ingest.config import IngestSettings
from ingest.search import parse_results, target_for
from ingest.tmpfiles import sweep, workspace

from ..conftest import FIXTURES


def test_targets() -> None:
    assert target_for("youtube", "cat fails", 5) == "ytsearch5:cat fails"
    assert target_for("tiktok", "#catfails", 10) == "https://www.tiktok.com/tag/catfails"
    assert target_for("tiktok", "@some.user", 10) == "https://www.tiktok.com/@some.user"
    with pytest.raises(JobFailure) as err:
        target_for("tiktok", "funny cats", 10)
    assert err.value.code == "search.unsupported_query"


def test_flat_ytsearch_entries_become_results() -> None:
    info = json.loads((FIXTURES / "ytsearch5_cat_fails.json").read_text())
    results = parse_results(info, "youtube", 50)
    assert [r.position for r in results] == [1, 2, 3, 4, 5]
    first = results[0]
    assert first.url == "https://www.youtube.com/watch?v=dQw4w9WgXcA"
    assert (first.title, first.uploader, first.view_count, first.duration_s) == (
        "Funniest Cat Fails 2025 | Try Not To Laugh",
        "Pet Central",
        1843210,
        612.0,
    )
    assert (
        first.thumbnail_url is not None
        and "hq720" in first.thumbnail_url
        and "CNAFEJQD" in first.thumbnail_url
    )
    assert results[4].view_count is None
    assert len(parse_results(info, "youtube", 2)) == 2


def test_tiktok_entries_keep_likes_and_dates() -> None:
    info = json.loads((FIXTURES / "tiktok_tag_catfails.json").read_text())
    r = parse_results(info, "tiktok", 10)
    assert r[0].like_count == 81000 and r[0].comment_count == 950 and r[0].uploader == "Cat Lady"
    assert r[0].published_at is not None and r[0].published_at.year == 2024


async def test_workspace_is_removed_even_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        async with workspace(tmp_path, "job") as ws:
            (ws / "partial.mp4").write_bytes(b"x" * 100)
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_sweeper_removes_only_stale_leftovers(tmp_path: Path) -> None:
    old = tmp_path / "import-dead"
    old.mkdir()
    (old / "source.mp4.part").write_bytes(b"x")
    stale = time.time() - 7200
    for p in (old / "source.mp4.part", old):
        os.utime(p, (stale, stale))
    fresh = tmp_path / "import-live"
    fresh.mkdir()
    (fresh / "source.mp4.part").write_bytes(b"x")  # being written right now
    old_dir_new_file = tmp_path / "upload-slow"
    old_dir_new_file.mkdir()
    os.utime(old_dir_new_file, (stale, stale))
    (old_dir_new_file / "upload").write_bytes(b"x")
    removed = sweep(tmp_path, max_age_s=3600)
    assert removed == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["import-live", "upload-slow"]


def _too_deep_tree(entry: Path) -> None:
    """What a crashed extraction can leave: a file whose full path is longer than PATH_MAX (lstat fails on it)."""
    entry.mkdir()
    fd = os.open(entry, os.O_RDONLY)
    length = len(str(entry))
    try:
        while length < 3900:  # each directory's own path stays listable
            os.mkdir("d" * 200, dir_fd=fd)
            inner = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, length = inner, length + 201
        os.mkdir("f" * 255, dir_fd=fd)
    finally:
        os.close(fd)


def _stale(path: Path) -> Path:
    path.mkdir()
    old = time.time() - 7200
    os.utime(path, (old, old))
    return path


async def test_the_temp_sweeper_survives_a_failing_sweep_and_keeps_sweeping(tmp_path: Path) -> None:
    settings = IngestSettings(
        service=unique_name("ingest"), tmp_dir=str(tmp_path), tmp_max_age_s=3600, tmp_sweep_interval_s=0.05
    )
    root = settings.scratch_dir
    root.mkdir(parents=True)
    deep = root / "import-crashed"
    _too_deep_tree(deep)
    with pytest.raises(OSError, match="too long"):
        sweep(root, max_age_s=3600)  # what killed the old sweeper loop, silently
    app = web.Application()
    app[SETTINGS], app[SERVICE_NAME] = settings, settings.service
    lifecycle = tmp_sweeper(settings)(app)
    await anext(lifecycle)
    try:
        sweeper = app[SWEEPER]
        await wait_for(lambda: sweeper.failures >= 2)  # failed, and ran again
        errors = REGISTRY.get_sample_value(
            "reelforge_errors_total", {"service": settings.service, "where": "tmp_sweeper"}
        )
        assert errors is not None and errors >= 2
        shutil.rmtree(deep)
        leftover = _stale(root / "upload-killed")
        await wait_for(lambda: not leftover.exists())
    finally:
        await anext(lifecycle, None)
