"""Fixtures for captions tests: the real whisper model (assembled once), transcripts of generated speech, a fake
translation behind the Gemini stub."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from captions.app import create_app
from captions.config import CaptionsSettings
from captions.model import load_whisper, model_dir
from captions.stt import SttOptions, Transcriber
from captions.transcript import Transcript, Word
from common.testing.gemini import request_text
from common.testing.speech import SpeechSample

REPO = Path(__file__).resolve().parents[3]


def normalise(text: str) -> str:
    """Lower-case words without punctuation: what word error rate compares."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def speak(
    text: str, *, start: float = 0.0, cps: float = 14.0, pause_after: dict[int, float] | None = None
) -> list[Word]:
    """Words with the times a speaker at ``cps`` characters a second would give them."""
    words, at = [], start
    for k, token in enumerate(text.split()):
        length = (len(token) + 1) / cps
        words.append(
            Word(start=round(at, 3), end=round(at + length * 0.9, 3), text=" " + token, probability=0.9)
        )
        at += length + (pause_after or {}).get(k, 0.0)
    return words


@pytest.fixture(scope="session")
def whisper_dir() -> Path:
    """The pinned whisper base model, assembled into the repository's cache once (checked on every load)."""
    return model_dir(model_path="", cache_dir=str(REPO / "var" / "cache" / "whisper"))


@pytest.fixture(scope="session")
def transcriber(whisper_dir: Path) -> Transcriber:
    """faster-whisper with the service's default options."""
    return Transcriber(load_whisper(whisper_dir, threads=2), SttOptions.from_settings(CaptionsSettings()))


@pytest.fixture(scope="session")
def news_transcript(transcriber: Transcriber, speech_sample: SpeechSample) -> Transcript:
    """The transcript of the generated news script (about 26 s)."""
    return transcriber.transcribe(speech_sample.path)


KOREAN_WORDS = {
    "good": "좋은",
    "morning": "아침",
    "and": "그리고",
    "welcome": "환영합니다",
    "to": "",
    "the": "",
    "weekly": "주간",
    "news": "소식",
    "from": "에서",
    "our": "우리",
    "small": "작은",
    "town": "마을",
    "library": "도서관",
    "will": "",
    "open": "열어요",
    "a": "",
    "new": "새",
    "reading": "열람",
    "room": "실",
    "next": "다음",
    "month": "달",
    "children": "아이들",
    "can": "",
    "borrow": "빌리고",
    "books": "책",
    "play": "놀이",
    "games": "게임",
    "meet": "만나요",
    "their": "",
    "friends": "친구",
    "after": "후",
    "school": "학교",
    "bakery": "빵집",
    "on": "",
    "main": "큰",
    "street": "거리",
    "is": "",
    "looking": "찾아요",
    "for": "",
    "cook": "요리사",
    "if": "만약",
    "you": "당신",
    "like": "좋아하면",
    "work": "일",
    "early": "일찍",
    "in": "",
    "please": "부디",
    "call": "전화",
    "them": "그들",
    "this": "이번",
    "week": "주",
    "finally": "마지막",
    "weather": "날씨",
    "be": "",
    "warm": "따뜻",
    "sunny": "맑음",
    "saturday": "토요일",
    "so": "그러니",
    "bring": "데려오세요",
    "your": "",
    "family": "가족",
    "park": "공원",
    "summer": "여름",
    "concert": "음악회",
}


def fake_translation(text: str, target: str) -> str:
    """A deterministic stand-in for a translation: Korean from a word list, else every word spelt backwards."""
    out = []
    for token in text.split():
        core = token.strip(".,!?;:").lower()
        tail = token[len(token.rstrip(".,!?;:")) :]
        if target == "ko":
            word = KOREAN_WORDS.get(core, core)
            if word or tail:
                out.append(word + tail)
        else:
            out.append(token.rstrip(".,!?;:")[::-1] + tail)
    return " ".join(t for t in out if t) or "…"


def fake_responder(target: str) -> Callable[[dict[str, Any]], str]:
    """A Gemini stub responder that translates each cue of the request's JSON to ``target`` (fake_translation)."""

    def answer(request: dict[str, Any]) -> str:
        cues = json.loads(request_text(request))
        return json.dumps({cue_id: fake_translation(text, target) for cue_id, text in cues.items()})

    return answer


@pytest.fixture
def captions_app(
    make_schema: Callable[..., Any],
    aiohttp_client: Any,
    database_url: str,
    rabbit_bus: Any,
    fs_store: Any,
    token_factory: Any,
) -> Callable[..., Any]:
    """``await captions_app(role, **settings)``: the captions app in-process on a fresh schema, the real RabbitMQ
    bus and file store; returns (test client, settings)."""

    async def make(role: str, **fields: Any) -> tuple[Any, CaptionsSettings]:
        schema = await make_schema("captions", REPO / "services/captions/migrations")
        settings = CaptionsSettings(
            database_url=database_url, db_schema=schema, log_format="console", **fields
        )
        app = create_app(
            settings, role=role, bus=rabbit_bus, store=fs_store, verifier=token_factory.verifier()
        )
        return await aiohttp_client(app), settings

    return make
