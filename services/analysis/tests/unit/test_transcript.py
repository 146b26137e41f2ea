"""Subtitle parsing (YouTube json3, WebVTT with auto-caption repeats), sentence splitting and the content hash."""

from __future__ import annotations

import json

import pytest

from analysis.transcript import (
    Segment,
    Transcript,
    TranscriptError,
    TranscriptSource,
    parse_json3,
    parse_vtt,
    split_sentences,
)

SUBS = TranscriptSource.PLATFORM_SUBTITLES

# What yt-dlp writes for a YouTube auto-caption track in json3: a window event, word-timed events, and the
# "\n" append events between lines.
JSON3 = {
    "wireMagic": "pb3",
    "pens": [{}],
    "events": [
        {"tStartMs": 0, "dDurationMs": 8000, "id": 1, "wpWinPosId": 1, "wsWinStyleId": 1},
        {
            "tStartMs": 160,
            "dDurationMs": 2630,
            "wWinId": 1,
            "segs": [
                {"utf8": "welcome", "acAsrConf": 0},
                {"utf8": " back", "tOffsetMs": 320},
                {"utf8": " to the channel", "tOffsetMs": 480},
            ],
        },
        {"tStartMs": 2790, "dDurationMs": 10, "wWinId": 1, "aAppend": 1, "segs": [{"utf8": "\n"}]},
        {
            "tStartMs": 2800,
            "dDurationMs": 2390,
            "wWinId": 1,
            "segs": [{"utf8": "today we talk about solar power"}],
        },
    ],
}

# YouTube's auto-caption VTT: each line first appears word-timed, then again (plain) above the next line, and in
# a 10 ms cue in between.
AUTO_VTT = "\n".join(
    [
        "WEBVTT",
        "Kind: captions",
        "Language: en",
        "",
        "00:00:00.160 --> 00:00:02.790 align:start position:0%",
        " ",
        "welcome<00:00:00.480><c> back</c><00:00:00.640><c> to</c><00:00:00.799><c> the</c><00:00:00.960><c> channel</c>",
        "",
        "00:00:02.790 --> 00:00:02.800 align:start position:0%",
        "welcome back to the channel",
        " ",
        "",
        "00:00:02.800 --> 00:00:05.190 align:start position:0%",
        "welcome back to the channel",
        "today<00:00:03.120><c> we</c><00:00:03.280><c> talk</c><00:00:03.520><c> about</c><00:00:03.840><c> solar</c><00:00:04.160><c> power</c>",
        "",
        "00:00:05.190 --> 00:00:05.200 align:start position:0%",
        "today we talk about solar power",
        " ",
        "",
        "00:00:05.200 --> 00:00:08.000 align:start position:0%",
        "today we talk about solar power",
        "at<00:00:05.500><c> home</c>",
        "",
        "00:00:08.000 --> 00:00:08.010 align:start position:0%",
        "at home",
        " ",
        "",
    ]
)


def test_json3_keeps_text_events_with_their_times() -> None:
    transcript = parse_json3(json.dumps(JSON3), language="en", source=SUBS)
    assert transcript.segments == [
        Segment(start_s=0.16, end_s=2.79, text="welcome back to the channel"),
        Segment(start_s=2.8, end_s=5.19, text="today we talk about solar power"),
    ]
    assert transcript.source is SUBS and transcript.language == "en"


def test_auto_caption_vtt_keeps_each_line_once_at_its_first_showing() -> None:
    transcript = parse_vtt(AUTO_VTT, language="en", source=SUBS)
    assert transcript.segments == [
        Segment(start_s=0.16, end_s=2.79, text="welcome back to the channel"),
        Segment(start_s=2.8, end_s=5.19, text="today we talk about solar power"),
        Segment(start_s=5.2, end_s=8.0, text="at home"),
    ]


def test_plain_vtt_with_cue_ids_and_hours() -> None:
    text = "WEBVTT\n\n1\n01:00:01.000 --> 01:00:03.500\nFirst line\nsecond line\n\n2\n01:00:04.000 --> 01:00:06.000\n<v Ann>Third</v>\n"
    transcript = parse_vtt(text, language="en", source=SUBS)
    assert [(s.start_s, s.end_s, s.text) for s in transcript.segments] == [
        (3601.0, 3603.5, "First line"),
        (3601.0, 3603.5, "second line"),
        (3604.0, 3606.0, "Third"),
    ]


@pytest.mark.parametrize("parser", [parse_json3, parse_vtt])
def test_garbage_is_a_transcript_error(parser: object) -> None:
    with pytest.raises(TranscriptError):
        parser("<html>nope</html>", language="en", source=SUBS)  # type: ignore[operator]


def test_sentences_span_segments_with_interpolated_times() -> None:
    transcript = Transcript(
        segments=[Segment(0.0, 2.0, "Hello there. This is"), Segment(2.0, 4.0, "a test. Another one!")],
        language="en",
        source=SUBS,
    )
    sentences = split_sentences(transcript)
    assert [s.text for s in sentences] == ["Hello there.", "This is a test.", "Another one!"]
    assert sentences[0].start_s == 0.0
    assert sentences[1].start_s == pytest.approx(1.3, abs=0.01)
    assert 2.0 < sentences[2].start_s < 3.0 < sentences[2].end_s <= 4.0


def test_korean_sentences_are_found_without_punctuation() -> None:
    transcript = Transcript(
        segments=[
            Segment(0.0, 4.0, "오늘은 날씨가 좋네요 그래서 산책을 갔어요"),
            Segment(4.0, 6.0, "공원에는 사람이 많았습니다"),
        ],
        language="ko",
        source=SUBS,
    )
    assert [s.text for s in split_sentences(transcript)] == [
        "오늘은 날씨가 좋네요",
        "그래서 산책을 갔어요",
        "공원에는 사람이 많았습니다",
    ]


def test_unpunctuated_captions_are_cut_at_segment_starts() -> None:
    segments = [Segment(i * 3.0, i * 3.0 + 3.0, " ".join(["word"] * 10)) for i in range(12)]
    sentences = split_sentences(Transcript(segments=segments, language="en", source=SUBS))
    assert len(sentences) >= 3
    assert all(len(s.text.split()) <= 40 for s in sentences)
    assert {s.start_s for s in sentences} <= {s.start_s for s in segments}


def test_content_hash_depends_on_the_text_not_the_source() -> None:
    segments = [Segment(0.0, 1.0, "same words")]
    a = Transcript(segments=segments, language="en", source=TranscriptSource.CAPTION_TRACK)
    b = Transcript(segments=segments, language="en", source=TranscriptSource.AUDIO)
    c = Transcript(segments=[Segment(0.0, 1.0, "other words")], language="en", source=TranscriptSource.AUDIO)
    assert a.content_hash() == b.content_hash() != c.content_hash()
    assert len(a.content_hash()) == 64
