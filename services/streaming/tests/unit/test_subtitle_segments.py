"""Segmented WebVTT: every segment is a WebVTT file on the media's timeline, a cue spanning a boundary is in both."""

from __future__ import annotations

from streaming.media.subtitles import TIMESTAMP_MAP, media_playlist, parse_cues, segment

TRACK = """WEBVTT

c1
00:00:01.000 --> 00:00:03.000
First line.

c2
00:00:05.500 --> 00:00:07.250 line:90%
Across the boundary,
on two lines.

NOTE a note is not a cue

c3
00:00:13.000 --> 00:00:14.000
In the third segment.
"""


def test_a_cue_that_spans_a_segment_boundary_is_written_unchanged_into_both() -> None:
    parts = segment(parse_cues(TRACK), duration_s=15.0, segment_s=6.0)
    assert len(parts) == 3
    assert all(p.startswith(f"WEBVTT\n{TIMESTAMP_MAP}\n\n") for p in parts)
    ids = [[c.ident for c in parse_cues(p)] for p in parts]
    assert ids == [["c1", "c2"], ["c2"], ["c3"]]
    across = [c for p in parts[:2] for c in parse_cues(p) if c.ident == "c2"]
    assert {(c.start_s, c.end_s, c.settings, c.payload) for c in across} == {
        (5.5, 7.25, "line:90%", ("Across the boundary,", "on two lines."))
    }


def test_a_segment_without_cues_is_still_a_webvtt_file() -> None:
    parts = segment(parse_cues(TRACK), duration_s=30.0, segment_s=6.0)
    assert len(parts) == 5 and parts[3] == f"WEBVTT\n{TIMESTAMP_MAP}\n\n"


def test_the_playlist_covers_exactly_the_media_duration() -> None:
    playlist = media_playlist(segment_uris=["a.vtt", "b.vtt", "c.vtt"], duration_s=15.0, segment_s=6.0)
    lengths = [float(line[8:-1]) for line in playlist.splitlines() if line.startswith("#EXTINF:")]
    assert lengths == [6.0, 6.0, 3.0]
    assert "#EXT-X-TARGETDURATION:6" in playlist and playlist.endswith("#EXT-X-ENDLIST\n")
