"""A video platform on 127.0.0.1 that yt-dlp reads: pages with a ``<video>`` and subtitle ``<track>``s.

``/v/<name>`` is a page whose video (``/media/<name>.mp4``, when a file was given) has the subtitles registered
under ``name`` (json3, VTT or none) —
yt-dlp's generic extractor finds the tracks, so the real ``yt_dlp`` reads them as it would a platform's; ``/blocked/<name>``
answers 403 with YouTube's "Sign in to confirm you're not a bot"; ``/limited/<name>`` answers 429 the first
``limited_times`` times (then the page). Every page request is counted in ``hits`` (``v/<name>``), and every
subtitle file served (``subs/<name>.<language>.<json3|vtt>``), so a test sees which track yt-dlp chose.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from .http import LocalServer

__all__ = ["TALK", "SubtitleServer", "Timed", "json3", "subtitle_server", "talk", "vtt"]

Timed = tuple[float, float, str]  # (start_s, end_s, text)


#: a talk of four topics, two sentences each: the body of the test videos' subtitles
TALK = (
    "Solar panels turn sunlight into electricity with silicon cells.",
    "A rooftop system produces about four kilowatts at noon.",
    "Sourdough bread needs flour, water, salt and an active starter.",
    "Knead the dough gently and let it rest for several hours.",
    "The home team scored two goals in the first half of the match.",
    "The goalkeeper saved a penalty in the last minute of the game.",
    "The rocket will carry four astronauts into lunar orbit.",
    "Water ice on the Moon could one day supply a permanent base.",
)


def talk(first: str, *, seconds: float = 15.0) -> list[Timed]:
    """``first`` then ``TALK``, a line every ``seconds`` from 0:00 (so videos can differ by their first line)."""
    return [(i * seconds, (i + 1) * seconds - 1.0, line) for i, line in enumerate((first, *TALK))]


def json3(lines: Sequence[Timed]) -> str:
    """YouTube's json3 subtitle format."""
    events = [
        {"tStartMs": int(s * 1000), "dDurationMs": int((e - s) * 1000), "segs": [{"utf8": text}]}
        for s, e, text in lines
    ]
    return json.dumps({"wireMagic": "pb3", "events": events}, ensure_ascii=False)


def _clock(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _word_timed(start: float, end: float, text: str) -> str:
    """A line as YouTube's automatic captions write it: each word after the first behind its own time tag."""
    words = text.split()
    step = (end - start) / max(1, len(words))
    return words[0] + "".join(
        f"<{_clock(start + k * step)}><c> {word}</c>" for k, word in enumerate(words[1:], start=1)
    )


def vtt(lines: Sequence[Timed], *, rolling: bool = False, youtube: bool = False) -> str:
    """WebVTT; ``rolling`` repeats each line in the next cue; ``youtube`` writes YouTube's automatic captions
    exactly: each line word-timed under the previous one, then alone in a 10 ms cue, then again above the next
    line (three showings of every line)."""
    out = ["WEBVTT", *(["Kind: captions", "Language: en"] if youtube else []), ""]
    previous = ""
    for s, e, text in lines:
        if youtube:
            timing = " align:start position:0%"
            out += [f"{_clock(s)} --> {_clock(e)}{timing}", previous or " ", _word_timed(s, e, text), ""]
            out += [f"{_clock(e)} --> {_clock(e + 0.01)}{timing}", text, " ", ""]
        else:
            shown = f"{previous}\n{text}" if rolling and previous else text
            out += [f"{_clock(s)} --> {_clock(e)}", shown, ""]
        previous = text
    return "\n".join(out)


@dataclass
class _Video:
    title: str
    language: str
    lines: list[Timed]
    formats: tuple[str, ...]  # which subtitle files the page offers: json3, vtt, vtt-rolling, vtt-youtube
    media: Path | None = None


@dataclass
class SubtitleServer(LocalServer):
    """The platform: register videos with ``add``, give ``url(name)`` to yt-dlp."""

    limited_times: int = 1
    hits: Counter[str] = field(default_factory=Counter)
    _videos: dict[str, _Video] = field(default_factory=dict)

    def add(
        self,
        name: str,
        lines: Sequence[Timed],
        *,
        title: str = "",
        language: str = "en",
        formats: Sequence[str] = ("json3", "vtt"),
        media: Path | None = None,
    ) -> str:
        """Offer a video with these subtitle lines (and ``media`` as its file); its page's URL."""
        self._videos[name] = _Video(title or name, language, list(lines), tuple(formats), media)
        return self.url(name)

    def url(self, name: str, kind: str = "v") -> str:
        """The page of ``name`` (``kind``: ``v``, ``blocked``, ``limited``)."""
        return f"{self.base_url}/{kind}/{name}"

    def _page(self, name: str) -> web.Response:
        video = self._videos.get(name)
        if video is None:
            raise web.HTTPNotFound(text="no such video")
        tracks = "".join(
            f'<track kind="captions" src="/subs/{name}.{video.language}.{fmt}" srclang="{video.language}">'
            for fmt in ("json3", "vtt")
            if any(offered.split("-")[0] == fmt for offered in video.formats)
        )
        html = (
            f"<!doctype html><html><head><title>{video.title}</title></head><body>"
            f'<video controls src="/media/{name}.mp4">{tracks}</video></body></html>'
        )
        return web.Response(text=html, content_type="text/html")

    async def _video(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[f"v/{name}"] += 1
        return self._page(name)

    async def _blocked(self, request: web.Request) -> web.Response:
        self.hits[f"blocked/{request.match_info['name']}"] += 1
        return web.Response(status=403, text="Sign in to confirm you're not a bot", content_type="text/html")

    async def _limited(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.hits[f"limited/{name}"] += 1
        if self.hits[f"limited/{name}"] <= self.limited_times:
            return web.Response(status=429, text="Too Many Requests", content_type="text/html")
        return self._page(name)

    async def _subs(self, request: web.Request) -> web.Response:
        name, _, fmt = request.match_info["file"].rpartition(".")
        video = self._videos.get(name.rsplit(".", 1)[0])
        if video is None:
            raise web.HTTPNotFound(text="no such track")
        self.hits[f"subs/{request.match_info['file']}"] += 1
        if fmt == "json3":
            return web.Response(text=json3(video.lines), content_type="application/json")
        text = vtt(
            video.lines, rolling="vtt-rolling" in video.formats, youtube="vtt-youtube" in video.formats
        )
        return web.Response(text=text, content_type="text/vtt")

    async def _media(self, request: web.Request) -> web.StreamResponse:
        video = self._videos.get(request.match_info["name"])
        if video is None or video.media is None:
            raise web.HTTPNotFound(text="no such file")
        return web.FileResponse(video.media, headers={"Content-Type": "video/mp4"})

    def routes(self, app: web.Application) -> None:
        """The pages, the subtitle files and the media."""
        app.router.add_get("/v/{name}", self._video)
        app.router.add_get("/blocked/{name}", self._blocked)
        app.router.add_get("/limited/{name}", self._limited)
        app.router.add_get("/subs/{file}", self._subs)
        app.router.add_get("/media/{name}.mp4", self._media)


@pytest.fixture
async def subtitle_server() -> AsyncIterator[SubtitleServer]:
    """A started subtitle platform for one test."""
    async with SubtitleServer() as server:
        yield server
