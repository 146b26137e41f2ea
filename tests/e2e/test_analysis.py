"""Analysis, end to end through the gateway: a URL with json3 subtitles, a video with a caption track, a URL with only
audio (imported by ingest, transcribed by captions), bad model output, the content cache and the credits.

Real processes for every service, the real yt-dlp against a video platform on 127.0.0.1, the real google-genai
client against the Gemini stub (it answers analyses like a model that follows the prompt), real faster-whisper.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from common.testing.gemini import GeminiStub, answer, assert_chapters_follow_the_rules
from common.testing.speech import make_speech
from common.testing.subtitles import SubtitleServer, talk

from .speakers import new_speaker
from .stack import Stack
from .test_captions import _job_done, _settled_at
from .test_user_journeys import User, register

pytestmark = pytest.mark.xdist_group("e2e")
PRICE = 5  # billing's analysis_per_video
#: a spoken talk of four topics, three sentences each, with a pause between topics (spoken slowly: about a minute)
FOUR_TOPICS: tuple[str | float, ...] = (
    "Solar panels on the roof turn sunlight into electricity for the whole house."
    " They make the most power at noon, when the sun is high."
    " Cleaning them twice a year keeps their output high.",
    1.5,
    "Now we move to the kitchen to bake a loaf of sourdough bread."
    " The dough needs flour, water, salt and an active starter."
    " It rests for several hours before it goes into a hot oven.",
    1.5,
    "Next comes football, and the final match of the season last weekend."
    " The home team scored two goals in the first half."
    " Their goalkeeper saved a penalty in the very last minute.",
    1.5,
    "Finally, a new mission will carry four astronauts around the Moon."
    " Engineers have tested the heat shield for the return to Earth."
    " The launch window for the mission opens early next year.",
)


async def _analysed(user: User, body: dict[str, Any]) -> dict[str, Any]:
    status, accepted = await user.post("/api/v1/analyses", body)
    assert status == 202, accepted
    job = await _job_done(user, accepted["job"]["id"], timeout=600)
    status, analysis = await user.get(f"/api/v1/analyses/{accepted['analysis']['id']}")
    assert status == 200, analysis
    assert job["status"] in ("succeeded", "failed"), job
    return analysis


def _chapters_follow_the_rules(analysis: dict[str, Any], duration_s: float) -> None:
    """YouTube's chapter rules on a result (at least 3, the first at 0:00, ascending, each ≥ 10 s, titles ≤ 49
    characters, inside the video); a video too short for three 10 s chapters has none, and the result says why."""
    duration = analysis.get("duration_s") or duration_s
    result = analysis["result"]
    chapters = result["chapters"]
    if duration < 3 * 10:
        assert chapters == [] and any("no chapters" in w for w in result["warnings"]), result
        return
    assert_chapters_follow_the_rules(chapters, duration_s=duration)


async def test_a_url_with_json3_subtitles_then_the_cache_then_bad_model_output(
    e2e_stack: Stack, http: aiohttp.ClientSession, platform: SubtitleServer, gemini: GeminiStub
) -> None:
    user = await register(http, e2e_stack.gateway_url)
    _, before = await user.get("/api/v1/billing/balance")
    url = platform.add("e2e-talk", talk("Welcome to a talk about four topics."), title="Four topics")

    done = await _analysed(user, {"url": url, "options": {"detail": "brief"}})
    assert done["state"] == "succeeded", done
    assert done["source"] == "platform_subtitles" and done["language"] == "en" and done["credits"] == PRICE
    result = done["result"]
    assert result["engine"] == "gemini" and result["summary"] and result["keywords"]
    _chapters_follow_the_rules(done, 9 * 15.0)
    async with http.get(f"{user.base}/api/v1/analyses/{done['id']}/transcript.txt", headers=user.auth) as r:
        assert r.status == 200 and (await r.text()).startswith("Welcome to a talk about four topics.")

    # the same URL again: the content cache answers at once and nothing is charged
    again = await _analysed(user, {"url": url, "options": {"detail": "brief"}})
    assert again["state"] == "cached" and again["credits"] == 0 and again["result"] == result

    # a model answer that is not the JSON asked for is retried with the error, then used
    other = platform.add("e2e-bad", talk("A second talk, with a model that stumbles."))
    sent = len(gemini.requests)
    gemini.then(answer("Sure! Here is the analysis you asked for."))
    retried = await _analysed(user, {"url": other})
    assert retried["state"] == "succeeded" and len(gemini.requests) - sent == 2, retried
    _chapters_follow_the_rules(retried, 9 * 15.0)

    # twice wrong: the analysis fails with a stable code and costs nothing
    third = platform.add("e2e-worse", talk("A third talk, with a model that never answers right."))
    gemini.then(answer("not json"), answer('{"title": "only a title"}'))
    failed = await _analysed(user, {"url": third})
    assert failed["state"] == "failed" and failed["error"]["code"] == "model.malformed_output", failed

    await _settled_at(user, before["balance"] - 2 * PRICE, what="two analysed videos charged, the rest free")


async def test_a_video_with_a_caption_track_and_a_url_with_only_audio(
    e2e_stack: Stack, http: aiohttp.ClientSession, platform: SubtitleServer
) -> None:
    speaker = await new_speaker(
        http,
        e2e_stack.gateway_url,
        [
            "Solar panels turn sunlight into electricity. The panels on a roof make the most power at noon."
            " Cleaning them twice a year keeps their output high."
        ],
    )
    user, sample, vid, before = speaker.user, speaker.sample, speaker.video_id, speaker.before

    # the video has a caption track: the analysis reads it (no second transcription)
    status, captioned = await user.post(f"/api/v1/videos/{vid}/captions", {"language": "en"})
    assert status == 202, captioned
    assert (await _job_done(user, captioned["job"]["id"]))["status"] == "succeeded"
    done = await _analysed(user, {"video_id": vid})
    assert done["state"] == "succeeded" and done["source"] == "caption_track", done
    _chapters_follow_the_rules(done, sample.duration_s)
    status, transcript = await user.get(f"/api/v1/analyses/{done['id']}/transcript")
    assert status == 200 and "sunlight" in " ".join(s["text"] for s in transcript["segments"]).lower()

    # a page without subtitles: ingest imports the video, captions transcribes its audio; a talk long enough for
    # chapters (four topics, about 50 s), so the result has at least three that keep YouTube's rules
    long = make_speech(FOUR_TOPICS, wpm=130)
    assert long.duration_s >= 40, long
    url = platform.add("e2e-audio", [], formats=(), media=long.path, title="Four topics")
    heard = await _analysed(user, {"url": url})
    assert heard["state"] == "succeeded" and heard["source"] == "audio", heard
    assert len(heard["result"]["chapters"]) >= 3, heard["result"]
    _chapters_follow_the_rules(heard, long.duration_s)
    status, transcript = await user.get(f"/api/v1/analyses/{heard['id']}/transcript")
    assert status == 200 and "solar" in " ".join(s["text"] for s in transcript["segments"]).lower()

    # captions (2 for its started minute) and two analysed videos; the import and the transcript cost nothing more
    await _settled_at(user, before["balance"] - 2 - 2 * PRICE, what="captions and two analyses charged")
