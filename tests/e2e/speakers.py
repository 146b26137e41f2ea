"""A new user with a speech video uploaded and ready to stream: where the speech tests (captions, analysis) begin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from common.testing.speech import SpeechSample, make_speech

from .test_captions import _upload_ready
from .test_user_journeys import User, register


@dataclass(frozen=True)
class Speaker:
    """The user, their speech and its video id, and their balance before any paid work on it."""

    user: User
    sample: SpeechSample
    video_id: str
    before: dict[str, Any]


async def new_speaker(
    http: aiohttp.ClientSession, gateway_url: str, script: Sequence[str | float]
) -> Speaker:
    """Register a user, upload ``script`` spoken (``make_speech``) as their video, wait until it streams."""
    sample = make_speech(script)
    user = await register(http, gateway_url)
    video_id = await _upload_ready(http, user, sample)
    _, before = await user.get("/api/v1/billing/balance")
    return Speaker(user=user, sample=sample, video_id=video_id, before=before)
