"""``python tests/e2e/recorded_search.py worker``: the real ingest worker, whose platform search answers from recorded
yt-dlp output instead of YouTube (which a test cannot reach).

Everything else is ingest's own worker (``ingest.app.create_app``): imports through yt-dlp, originals, events.
Only the one network call of a search is replaced, through the seam ingest's own tests use (``search_fn``): a
search for ``target`` (``ytsearch5:cat fails``, a TikTok tag URL) answers the JSON file ``recording(dir, target)``
that a test wrote into ``$E2E_SEARCH_RECORDINGS``; a target nobody recorded fails as an unreachable platform does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import ingest.app
from common.jobs import ErrorCode, JobFailure
from common.service import main_exit, service_entry
from ingest.config import IngestSettings

RECORDINGS_ENV = "E2E_SEARCH_RECORDINGS"


def recording(directory: Path, target: str) -> Path:
    """Where the recorded answer to a search for ``target`` is kept."""
    return directory / f"{hashlib.sha256(target.encode()).hexdigest()[:32]}.json"


def replay(directory: Path, target: str, limit: int, proxy: str | None) -> dict[str, Any]:
    """yt-dlp's flat-playlist info dict for ``target``, as recorded (its first ``limit`` entries)."""
    path = recording(directory, target)
    if not path.is_file():
        raise JobFailure(ErrorCode.SOURCE_UNAVAILABLE, "the source could not be reached")
    info: dict[str, Any] = json.loads(path.read_text())
    return {**info, "entries": info.get("entries", [])[:limit]}


if __name__ == "__main__":
    search_fn = functools.partial(replay, Path(os.environ[RECORDINGS_ENV]))
    create_app = functools.partial(ingest.app.create_app, search_fn=search_fn)
    main_exit(service_entry(ingest.app.__file__, IngestSettings, create_app)())
