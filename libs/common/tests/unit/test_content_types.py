"""``common.storage.content_types``: one answer for a name, a key or a bare extension."""

from __future__ import annotations

import pytest

from common.storage.content_types import DEFAULT, content_type, extension


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("m3u8", "application/vnd.apple.mpegurl"),
        ("streams/x/720p/index.m3u8", "application/vnd.apple.mpegurl"),
        ("seg_00001.m4s", "video/iso.segment"),
        ("manifest.MPD", "application/dash+xml"),
        ("thumbs/x/poster.jpg", "image/jpeg"),
        ("mkv", "video/x-matroska"),
        ("README", DEFAULT),
        ("a.b/noext", DEFAULT),
        ("x.unknown", DEFAULT),
    ],
)
def test_content_types(name: str, expected: str) -> None:
    assert content_type(name) == expected


def test_extensions() -> None:
    assert extension("a/b.c/d.TS") == "ts"
    assert extension("a.b/noext") == ""
    assert content_type("x.unknown", default="text/plain") == "text/plain"
