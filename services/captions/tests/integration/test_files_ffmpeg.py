"""ffmpeg reads the WebVTT and SRT files of a built track, and converts one into the other losslessly."""

from __future__ import annotations

import html
import subprocess
from pathlib import Path

import srt
import webvtt

from captions.cues import build_cues
from captions.formats import to_srt, to_vtt
from captions.profiles import ENGLISH
from common.testing.speech import NEWS_SCRIPT

from ..conftest import speak


def ffmpeg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", *args], capture_output=True, text=True)


def test_ffmpeg_reads_both_files_and_agrees_with_the_parsers(tmp_path: Path) -> None:
    words = speak(NEWS_SCRIPT + " Tom & Jerry <3 --> the end.")
    cues = build_cues(words, ENGLISH, media_end_ms=round(words[-1].end * 1000) + 1000)
    vtt, srt_file = tmp_path / "track.vtt", tmp_path / "track.srt"
    vtt.write_text(to_vtt(cues), encoding="utf-8")
    srt_file.write_text(to_srt(cues), encoding="utf-8")
    for path in (vtt, srt_file):
        run = ffmpeg("-v", "error", "-i", str(path), "-map", "0", "-c", "copy", "-f", "null", "-")
        assert run.returncode == 0 and run.stderr == "", run.stderr
    converted = tmp_path / "from-vtt.srt"
    assert ffmpeg("-v", "error", "-i", str(vtt), str(converted)).returncode == 0
    from_ffmpeg = list(srt.parse(converted.read_text(encoding="utf-8")))
    ours = list(srt.parse(srt_file.read_text(encoding="utf-8")))
    assert [(s.start, s.end, s.content) for s in from_ffmpeg] == [(s.start, s.end, s.content) for s in ours]
    assert [html.unescape(c.text).replace("\n", " ") for c in webvtt.read(str(vtt)).captions] == [
        c.text for c in cues
    ]
