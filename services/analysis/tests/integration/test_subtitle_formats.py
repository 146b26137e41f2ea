"""Platform subtitles through the real yt-dlp from a platform on 127.0.0.1: a page offering only VTT shaped like
YouTube's automatic captions (each line word-timed, then in a 10 ms cue, then above the next line; or the simpler
rolling form, each line shown again in the next cue) is read once per line; a page offering json3 and VTT
is read from its json3 file. The result names the source that served (``platform_subtitles``) and the platform's
counts show which file was fetched."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from common.testing.subtitles import SubtitleServer, vtt

from ..conftest import ENGLISH_TOPICS
from .service import Service, talk_lines

pytestmark = pytest.mark.xdist_group("analysis_service")


@pytest.mark.parametrize(("style", "showings"), [("vtt-youtube", 3), ("vtt-rolling", 2)])
async def test_vtt_only_subtitles_are_deduplicated_and_json3_is_preferred(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    style: str,
    showings: int,
) -> None:
    svc = await analysis_service()
    lines = talk_lines(ENGLISH_TOPICS)
    said = [text for _, _, text in lines]
    served = vtt(lines, rolling=style == "vtt-rolling", youtube=style == "vtt-youtube")
    plain = served.count(f"\n{said[1]}\n")
    word_timed = served.count(said[1].split()[0] + "<")  # the first word, then a time tag
    assert (
        plain + word_timed == showings
    )  # every line shown two or three times, as YouTube's automatic VTT does

    only_vtt = subtitle_server.add("auto", lines, formats=(style,))
    both = subtitle_server.add("both", lines, formats=("json3", "vtt"))

    done = await svc.analyse(only_vtt)
    assert done["state"] == "succeeded", done
    assert done["source"] == "platform_subtitles" and done["language"] == "en"
    assert subtitle_server.hits["subs/auto.en.vtt"] == 1 and subtitle_server.hits["subs/auto.en.json3"] == 0
    status, transcript = await svc.get(f"/api/v1/analyses/{done['id']}/transcript")
    assert status == 200 and transcript["source"] == "platform_subtitles"
    assert [s["text"] for s in transcript["segments"]] == said  # each line once, in order
    assert [s["start_s"] for s in transcript["segments"]] == [start for start, _, _ in lines]

    done = await svc.analyse(both)
    assert done["state"] == "succeeded" and done["source"] == "platform_subtitles", done
    assert subtitle_server.hits["subs/both.en.json3"] == 1 and subtitle_server.hits["subs/both.en.vtt"] == 0
    status, transcript = await svc.get(f"/api/v1/analyses/{done['id']}/transcript")
    assert [s["text"] for s in transcript["segments"]] == said
