"""WebVTT, SRT and JSON written to their specs, read back by independent parsers (webvtt-py, srt)."""

from __future__ import annotations

import html
import json
from datetime import timedelta

import srt
import webvtt

from captions.cues import Cue
from captions.formats import to_json, to_srt, to_vtt
from captions.transcript import Word

CUES = [
    Cue(
        id="c1",
        start_ms=0,
        end_ms=2_500,
        lines=("Tom & Jerry <3", "say --> hello"),
        words=(Word(start=0.0, end=0.4, text=" Tom", probability=0.91234),),
    ),
    Cue(id="c2", start_ms=2_580, end_ms=3_600_000 + 61_001, lines=("An hour later.",)),
    Cue(id="c3", start_ms=3_700_000, end_ms=3_701_000, lines=("  spaced   out  ", "")),
]


def test_webvtt_has_its_header_escapes_text_and_parses() -> None:
    text = to_vtt(CUES)
    assert text.startswith("WEBVTT\n\n")
    assert "Tom &amp; Jerry &lt;3" in text and "say --&gt; hello" in text
    parsed = webvtt.from_string(text)
    assert [c.identifier for c in parsed.captions] == ["c1", "c2", "c3"]
    assert [(c.start, c.end) for c in parsed.captions] == [
        ("00:00:00.000", "00:00:02.500"),
        ("00:00:02.580", "01:01:01.001"),
        ("01:01:40.000", "01:01:41.000"),
    ]
    assert [html.unescape(c.text) for c in parsed.captions] == [
        "Tom & Jerry <3\nsay --> hello",
        "An hour later.",
        "spaced out",
    ]


def test_srt_has_counters_and_commas_and_parses() -> None:
    text = to_srt(CUES)
    assert text.startswith("1\n00:00:00,000 --> 00:00:02,500\n")
    parsed = list(srt.parse(text))
    assert [s.index for s in parsed] == [1, 2, 3]
    assert parsed[1].start == timedelta(milliseconds=2_580)
    assert parsed[1].end == timedelta(hours=1, minutes=1, seconds=1, milliseconds=1)
    assert [s.content for s in parsed] == ["Tom & Jerry <3\nsay --> hello", "An hour later.", "spaced out"]
    assert srt.compose(parsed, reindex=False) == text


def test_json_keeps_lines_and_word_times() -> None:
    track = json.loads(to_json(CUES, language="en"))
    assert track["language"] == "en"
    first = track["cues"][0]
    assert first["id"] == "c1" and first["start"] == 0.0 and first["end"] == 2.5
    assert first["lines"] == ["Tom & Jerry <3", "say --> hello"]
    assert first["words"] == [{"start": 0.0, "end": 0.4, "text": "Tom", "probability": 0.912}]


def test_an_empty_track_is_still_a_valid_file() -> None:
    assert webvtt.from_string(to_vtt([])).captions == []
    assert list(srt.parse(to_srt([]))) == []
