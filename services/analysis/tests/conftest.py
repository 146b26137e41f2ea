"""Fixtures for analysis tests: an English and a Korean transcript of four topics each, timed like speech; governors
on a private Redis prefix (the Gemini stub is common's ``gemini_stub``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from analysis.quota import QuotaGovernor, QuotaLimits, RetryPolicy
from analysis.transcript import Segment, Transcript, TranscriptSource

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
GovernorFactory = Callable[..., QuotaGovernor]

ENGLISH_TOPICS = [
    [
        "Welcome back to the channel, today we talk about solar power at home.",
        "Solar panels turn sunlight into electricity with silicon cells.",
        "A typical rooftop solar system produces about four kilowatts at noon.",
        "The efficiency of modern solar panels is now above twenty percent.",
        "Panels facing south get the most sunlight in the northern hemisphere.",
        "An inverter converts the direct current from the panels into alternating current.",
        "Cleaning the solar panels twice a year keeps their output high.",
    ],
    [
        "Now let us move to the kitchen and bake a loaf of sourdough bread.",
        "Sourdough bread needs flour, water, salt and an active starter.",
        "Feed the starter the night before so the dough rises well.",
        "Knead the dough gently and let it rest for several hours.",
        "Shape the loaf and bake the bread in a hot oven with steam.",
        "A good crust on the bread comes from the first minutes of high heat.",
        "Let the bread cool completely before you slice the loaf.",
    ],
    [
        "Next, football, and the final match of the season last weekend.",
        "The home team scored two goals in the first half of the match.",
        "Their striker ran past three defenders before scoring the second goal.",
        "The goalkeeper saved a penalty in the last minute of the game.",
        "Fans in the stadium sang for the team until the final whistle.",
        "The coach said the players deserved the trophy after a long season.",
        "The league title was decided on goal difference this year.",
    ],
    [
        "Finally, space exploration and the new mission to the Moon.",
        "The rocket will carry four astronauts into lunar orbit.",
        "Engineers tested the spacecraft heat shield for the return to Earth.",
        "The astronauts trained for months to land near the lunar south pole.",
        "Water ice on the Moon could one day supply a permanent base.",
        "The launch window for the mission opens early next year.",
        "Thanks for watching, and see you in the next video about space.",
    ],
]

KOREAN_TOPICS = [
    [
        "안녕하세요 오늘은 집에서 쓰는 태양광 발전에 대해 이야기하겠습니다.",
        "태양광 패널은 햇빛을 전기로 바꾸는 장치입니다.",
        "지붕 위의 태양광 패널은 한낮에 가장 많은 전기를 만듭니다.",
        "요즘 태양광 패널의 효율은 이십 퍼센트를 넘습니다.",
        "인버터는 패널에서 나온 직류 전기를 교류로 바꿉니다.",
        "패널을 일 년에 두 번 청소하면 발전량이 유지됩니다.",
    ],
    [
        "이제 부엌으로 가서 김치찌개를 끓여 보겠습니다.",
        "김치찌개에는 잘 익은 김치와 돼지고기가 필요합니다.",
        "먼저 냄비에 돼지고기를 볶아서 기름을 냅니다.",
        "김치를 넣고 함께 볶은 다음 물을 붓습니다.",
        "두부와 대파를 넣고 찌개를 십 분 더 끓입니다.",
        "김치찌개는 밥과 함께 먹으면 정말 맛있습니다.",
    ],
    [
        "다음은 지난 주말에 열린 축구 결승전 이야기입니다.",
        "홈팀은 전반전에 두 골을 넣으며 경기를 이끌었습니다.",
        "공격수가 수비수 세 명을 제치고 두 번째 골을 넣었습니다.",
        "골키퍼는 경기 마지막 순간에 페널티킥을 막았습니다.",
        "경기장의 팬들은 마지막 휘슬이 울릴 때까지 응원했습니다.",
        "감독은 선수들이 우승컵을 받을 자격이 있다고 말했습니다.",
    ],
    [
        "마지막으로 달 탐사 임무에 대해 알아보겠습니다.",
        "로켓은 우주비행사 네 명을 달 궤도로 보냅니다.",
        "기술자들은 지구로 돌아올 때 필요한 우주선 열 차폐막을 시험했습니다.",
        "우주비행사들은 달 남극 근처에 착륙하기 위해 몇 달 동안 훈련했습니다.",
        "달의 얼음은 언젠가 영구 기지에 물을 공급할 수 있습니다.",
        "시청해 주셔서 감사합니다 다음 영상에서 우주 이야기로 만나요.",
    ],
]


def timed(topics: list[list[str]], *, language: str, seconds_per_sentence: float = 6.0) -> Transcript:
    """One segment per sentence, back to back from 0:01."""
    sentences = [s for topic in topics for s in topic]
    segments = [
        Segment(
            start_s=1.0 + i * seconds_per_sentence, end_s=1.0 + (i + 1) * seconds_per_sentence - 0.2, text=s
        )
        for i, s in enumerate(sentences)
    ]
    return Transcript(segments=segments, language=language, source=TranscriptSource.CAPTION_TRACK)


@pytest.fixture
def english() -> Transcript:
    """About 2 min 50 s of English in four topics (solar power, sourdough, football, the Moon)."""
    return timed(ENGLISH_TOPICS, language="en")


@pytest.fixture
def korean() -> Transcript:
    """About 2 min 25 s of Korean in four topics (solar power, kimchi stew, football, the Moon)."""
    return timed(KOREAN_TOPICS, language="ko")


@pytest.fixture
async def governors() -> AsyncIterator[GovernorFactory]:
    """Makes governors ("workers"), each with its own Redis connection, on one private key prefix."""
    prefix = f"test-quota-{uuid.uuid4().hex[:12]}"
    clients: list[Redis[Any]] = []

    def make(
        *,
        rpm: int = 1000,
        tpm: int = 1_000_000,
        rpd: int = 10_000,
        window_s: float = 60.0,
        policy: RetryPolicy | None = None,
        model: str = "gemini-stub",
        api_key: str = "test-key",
    ) -> QuotaGovernor:
        client: Redis[Any] = Redis.from_url(REDIS_URL)
        clients.append(client)
        return QuotaGovernor(
            redis=client,
            api_key=api_key,
            model=model,
            limits=QuotaLimits(
                requests_per_minute=rpm, tokens_per_minute=tpm, requests_per_day=rpd, window_s=window_s
            ),
            policy=policy or RetryPolicy(base_delay_s=0.05, max_delay_s=0.2),
            prefix=prefix,
        )

    yield make
    if clients:
        keys = [k async for k in clients[0].scan_iter(match=f"{prefix}:*")]
        if keys:
            await clients[0].delete(*keys)
    for client in clients:
        await client.aclose()
