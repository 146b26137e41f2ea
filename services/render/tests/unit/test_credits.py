"""Attribution: each clip credited as ingest found its source, over what a search listed or a URL's host said."""

from __future__ import annotations

import uuid

from render.models import VideoRef
from render.ranking import credited, item_from_url


def _video(uploader: str = "", platform: str = "") -> VideoRef:
    return VideoRef(
        video_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        storage_key="k",
        duration_s=3.0,
        uploader=uploader,
        platform=platform,
    )


def test_what_ingest_named_wins_and_what_it_did_not_name_stays() -> None:
    a, b, c = (
        item_from_url(f"https://www.youtube.com/watch?v={k}", rank=k + 1, clip_seconds=8) for k in range(3)
    )
    assert (a.uploader, a.platform) == ("", "YouTube")  # before the import: the URL's host only
    found = {a.id: _video("Pet Central", "YouTube"), b.id: _video(platform="example.com"), c.id: _video()}
    out = credited([a, b, c], found)
    assert [(i.uploader, i.platform) for i in out] == [
        ("Pet Central", "YouTube"),
        ("", "example.com"),
        ("", "YouTube"),
    ]
    assert [i.id for i in out] == [a.id, b.id, c.id] and credited([a], {}) == [a]
