"""Playlists are rewritten so that every child URI carries the viewer's token; paths cannot escape the video."""

from __future__ import annotations

import re
import uuid

import pytest

from streaming.playback import (
    RangeNotSatisfiable,
    parse_range,
    resolve_play_path,
    rewrite_dash,
    rewrite_hls,
    rewrite_thumbnails_vtt,
)

TOKEN = "eyJleHAiOjF9.c2ln"

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Main",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",URI="subs/en.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2500000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aud",SUBTITLES="subs"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="aud"
360p/index.m3u8?v=2
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,RESOLUTION=640x360,CODECS="avc1.64001e",URI="360p/iframes.m3u8"
"""

MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.000000,
seg_00001.m4s
#EXTINF:2.000000,
seg_00002.m4s
#EXT-X-DISCONTINUITY
#EXTINF:1.5,
https://cdn.example.com/ad.ts
#EXT-X-ENDLIST
"""


def _uris(playlist: str) -> list[str]:
    uris = re.findall(r'URI="([^"]*)"', playlist)
    uris += [ln.strip() for ln in playlist.splitlines() if ln.strip() and not ln.startswith("#")]
    return uris


def test_master_playlist_every_variant_and_rendition_group_uri_carries_the_token() -> None:
    out = rewrite_hls(MASTER, TOKEN)
    uris = _uris(out)
    assert sorted(uris) == sorted(
        [
            f"audio/index.m3u8?token={TOKEN}",
            f"subs/en.m3u8?token={TOKEN}",
            f"360p/iframes.m3u8?token={TOKEN}",
            f"720p/index.m3u8?token={TOKEN}",
            f"360p/index.m3u8?v=2&token={TOKEN}",
        ]
    )
    # nothing else changed: attributes a player relies on are intact
    assert 'CODECS="avc1.64001f,mp4a.40.2"' in out and "RESOLUTION=1280x720" in out


def test_media_playlist_segments_and_init_carry_the_token_but_foreign_urls_do_not() -> None:
    out = rewrite_hls(MEDIA, TOKEN)
    assert f'#EXT-X-MAP:URI="init.mp4?token={TOKEN}"' in out
    assert f"seg_00001.m4s?token={TOKEN}" in out and f"seg_00002.m4s?token={TOKEN}" in out
    # a token is never sent to another host
    assert "https://cdn.example.com/ad.ts\n" in out
    assert out.count("#EXTINF") == 3 and out.rstrip().endswith("#EXT-X-ENDLIST")


def test_crlf_playlists_are_rewritten_too() -> None:
    out = rewrite_hls(MEDIA.replace("\n", "\r\n"), TOKEN)
    assert f"seg_00001.m4s?token={TOKEN}" in out


def test_dash_segment_templates_carry_the_token_and_base_url_is_untouched() -> None:
    mpd = (
        '<MPD><Period><BaseURL>dash/</BaseURL><AdaptationSet><SegmentTemplate timescale="1000"'
        ' initialization="init-$RepresentationID$.m4s" media="chunk-$RepresentationID$-$Number%05d$.m4s?x=1"/>'
        '<Representation id="v0"><SegmentList><Initialization sourceURL="i.mp4"/>'
        '<SegmentURL media="s1.m4s"/></SegmentList></Representation></AdaptationSet></Period></MPD>'
    )
    out = rewrite_dash(mpd, TOKEN)
    assert f'initialization="init-$RepresentationID$.m4s?token={TOKEN}"' in out
    assert f'media="chunk-$RepresentationID$-$Number%05d$.m4s?x=1&amp;token={TOKEN}"' in out
    assert f'sourceURL="i.mp4?token={TOKEN}"' in out and f'media="s1.m4s?token={TOKEN}"' in out
    assert "<BaseURL>dash/</BaseURL>" in out and 'timescale="1000"' in out


def test_thumbnail_index_cues_point_at_the_tokenized_sprite_keeping_the_fragment() -> None:
    vtt = (
        "WEBVTT\n\n1\n00:00:00.000 --> 00:00:05.000\nsprite.jpg#xywh=0,0,160,90\n\n"
        "2\n00:00:05.000 --> 00:00:10.000\nsprite.jpg#xywh=160,0,160,90\n"
    )
    out = rewrite_thumbnails_vtt(vtt, TOKEN)
    assert f"sprite.jpg?token={TOKEN}#xywh=0,0,160,90" in out
    assert f"sprite.jpg?token={TOKEN}#xywh=160,0,160,90" in out
    assert "00:00:05.000 --> 00:00:10.000" in out and out.startswith("WEBVTT")


# fixed: parametrize ids must match across xdist workers
VID = uuid.UUID("5f0c2a9e-3b1d-4c8e-9a7f-2d6b1e4c0a11")


@pytest.mark.parametrize(
    ("path", "key", "ctype"),
    [
        ("master.m3u8", f"streams/{VID}/master.m3u8", "application/vnd.apple.mpegurl"),
        ("720p/seg_00001.m4s", f"streams/{VID}/720p/seg_00001.m4s", "video/iso.segment"),
        ("720p/init.mp4", f"streams/{VID}/720p/init.mp4", "video/mp4"),
        ("src/seg_00001.ts", f"streams/{VID}/src/seg_00001.ts", "video/mp2t"),
        ("subs/en.vtt", f"streams/{VID}/subs/en.vtt", "text/vtt"),
        ("manifest.mpd", f"streams/{VID}/manifest.mpd", "application/dash+xml"),
        ("thumbs/poster.jpg", f"thumbs/{VID}/poster.jpg", "image/jpeg"),
        ("thumbs/thumbnails.vtt", f"thumbs/{VID}/thumbnails.vtt", "text/vtt"),
    ],
)
def test_play_paths_map_onto_the_videos_own_keys(path: str, key: str, ctype: str) -> None:
    target = resolve_play_path(VID, path)
    assert target is not None and target.key == key and target.content_type == ctype


@pytest.mark.parametrize(
    "path",
    [
        "../other/master.m3u8",
        "720p/../../x/master.m3u8",
        "./master.m3u8",
        "/etc/passwd.m3u8",
        "720p//seg.m4s",
        "..\\..\\secret.m3u8",
        "%2e%2e/master.m3u8",
        "thumbs/../poster.jpg",
        "thumbs/",
        "source.mov",  # not a delivery format
        "master.m3u8.bak",
        "",
        "a b.m4s",
    ],
)
def test_anything_but_a_plain_media_path_is_refused(path: str) -> None:
    assert resolve_play_path(VID, path) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=0-0", (0, 0)),
        ("items=0-10", None),  # unknown unit: ignored, whole file
        ("bytes=0-10,20-30", None),  # multi-range: we send the whole file (allowed by RFC 9110)
        ("bytes=50-10", None),  # invalid: ignored
    ],
)
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_ranges_outside_the_file_are_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)
