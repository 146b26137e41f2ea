"""A stub of the Gemini REST API on 127.0.0.1, for tests that run the real ``google-genai`` client.

``POST /{version}/models/{model}:generateContent`` first applies the quota, if one is set: beyond
``requests_per_window`` requests (or ``tokens_per_window`` prompt tokens) per ``window_s`` it answers 429
``RESOURCE_EXHAUSTED`` with a per-minute ``QuotaFailure`` and a ``RetryInfo`` (when the oldest request leaves the
window), like the real quota. Then it answers from a queue of scripted replies (``then(answer(...))``,
``then(rate_limited(per_day=True))``, ``fail(503)``, ``reply_text("garbage")``), then from the test's ``responder``:
a function from the request JSON to the text of the model's answer, a whole response body, or a ``Reply`` (sync or
async). Every answer waits ``delay_s`` (a slow model) plus the reply's own delay. ``:countTokens`` answers a
length-based count. Every request is recorded (``requests``, ``models``, ``api_keys``; ``count_requests``).

    async def test_x(gemini_stub):
        gemini_stub.responder = lambda request: json.dumps({"c1": "hola"})
        gemini_stub.fail(429, retry_delay_s=0.01)
        client = genai.Client(api_key=gemini_stub.api_key, http_options=types.HttpOptions(
            base_url=gemini_stub.base_url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)))
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from .http import LocalServer

__all__ = [
    "GeminiStub",
    "Reply",
    "analysis_reply",
    "answer",
    "assert_chapters_follow_the_rules",
    "bad_request",
    "gemini_stub",
    "gemini_text_response",
    "rate_limited",
    "request_schema",
    "request_text",
    "server_error",
]

Json = dict[str, Any]
Responder = Callable[[Json], "str | Json | Reply | Awaitable[str | Json | Reply]"]
API_KEY_HEADER = "x-goog-api-key"

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True)
class Reply:
    """One answer: an HTTP status, a body (JSON-able, or bytes sent as they are), after ``delay_s``."""

    status: int
    body: Any
    delay_s: float = 0.0
    content_type: str = "application/json"


def gemini_text_response(
    text: str,
    *,
    model: str = "gemini-stub",
    finish_reason: str = "STOP",
    prompt_tokens: int = 1,
    output_tokens: int = 1,
) -> Json:
    """A ``generateContent`` response whose one candidate says ``text``."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens,
        },
        "modelVersion": model,
    }


def answer(obj: Any, *, prompt_tokens: int = 1200, output_tokens: int = 300, delay_s: float = 0.0) -> Reply:
    """A 200 whose candidate's text is ``obj`` as JSON (or ``obj`` itself if it is a string: malformed output)."""
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    body = gemini_text_response(text, model="stub", prompt_tokens=prompt_tokens, output_tokens=output_tokens)
    return Reply(200, body, delay_s)


def _error(status: int, message: str, details: list[Json] | None = None) -> Json:
    error: Json = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if details is not None:
        error["details"] = details
    return {"error": error}


def rate_limited(*, per_day: bool = False, retry_delay_s: float | None = 1.0) -> Reply:
    """A 429 ``RESOURCE_EXHAUSTED`` with a ``QuotaFailure`` (per-minute or per-day) and a ``RetryInfo``."""
    quota_id = (
        "GenerateRequestsPerDayPerProjectPerModel"
        if per_day
        else "GenerateRequestsPerMinutePerProjectPerModel"
    )
    details: list[Json] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": "stub"},
                    "quotaValue": "10",
                }
            ],
        }
    ]
    if retry_delay_s is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_s}s"}
        )
    return Reply(429, _error(429, "You exceeded your current quota.", details))


def server_error(status: int = 503) -> Reply:
    """A 5xx ``UNAVAILABLE``."""
    return Reply(status, _error(status, "The model is overloaded."))


def bad_request() -> Reply:
    """A 400 ``INVALID_ARGUMENT``."""
    return Reply(400, _error(400, "Invalid request."))


def request_text(request: Json) -> str:
    """All text parts of a request's contents, joined by newlines."""
    return "\n".join(
        part["text"]
        for content in request.get("contents", [])
        for part in content.get("parts", [])
        if "text" in part
    )


def request_schema(request: Json) -> Json | None:
    """The structured-output schema a request asked for (``responseSchema`` or ``responseJsonSchema``)."""
    config = request.get("generationConfig", {})
    schema = config.get("responseSchema") or config.get("responseJsonSchema")
    return schema if isinstance(schema, dict) else None


def count_tokens(request: Json) -> int:
    """The stub's token count of a request: four characters a token."""
    return len(request_text(request)) // 4 + 1


_TIMED = re.compile(r"^\[(\d+(?::\d\d)+)\] (.+)$")


def analysis_reply(request: dict[str, Any]) -> Reply:
    """What a model that follows the prompt answers: chapters at the first sentence of each quarter, highlights
    quoting sentences (the transcript block is one ``[m:ss] sentence`` a line)."""
    timed = []
    for line in request_text(request).splitlines():
        m = _TIMED.match(line)
        if m:
            parts = [int(p) for p in m.group(1).split(":")]
            timed.append((float(sum(p * 60**i for i, p in enumerate(reversed(parts)))), m.group(2)))
    step = max(1, len(timed) // 4)
    chapters = [
        {"start_s": timed[k][0], "title": f"Part {n + 1}"} for n, k in enumerate(range(0, len(timed), step))
    ]
    chapters = chapters[:4] if len(timed) >= 4 else chapters
    highlights = [
        {"start_s": timed[k][0], "end_s": timed[k][0] + 5, "quote": timed[k][1], "reason": "a key moment"}
        for k in range(0, len(timed), max(1, len(timed) // 3))
    ][:3]
    body = {
        "title": "A talk",
        "summary": " ".join(t for _, t in timed[:3]),
        "key_points": [t for _, t in timed[:3]],
        "chapters": chapters,
        "highlights": highlights,
        "keywords": ["solar", "bread", "football", "moon"],
    }
    text = json.dumps(body, ensure_ascii=False)
    return answer(text, prompt_tokens=count_tokens(request), output_tokens=len(text) // 4 + 1)


def assert_chapters_follow_the_rules(chapters: list[Json], *, duration_s: float) -> None:
    """YouTube's chapter rules, checked on an analysis result as the API shows it: at least 3 chapters, the first
    at 0:00, ascending, each at least 10 s long (the last one too), titles of 1 to 49 characters, every start
    inside the video."""
    starts = [c["start_s"] for c in chapters]
    assert len(chapters) >= 3, chapters
    assert starts[0] == 0, chapters
    assert all(later - earlier >= 10 for earlier, later in itertools.pairwise(starts)), chapters
    assert duration_s - starts[-1] >= 10, (duration_s, chapters)
    assert all(0 < len(c["title"]) <= 49 for c in chapters), chapters


class GeminiStub(LocalServer):
    """The stub server: ``base_url`` and ``api_key`` for the client, ``requests`` seen, replies scripted."""

    api_key = "stub-gemini-key"

    def __init__(self) -> None:
        self.responder: Responder | None = None
        self.requests: list[Json] = []
        self.models: list[str] = []
        self.api_keys: list[str] = []
        self.count_requests: list[Json] = []
        self.requests_per_window: int | None = None
        self.tokens_per_window: int | None = None
        self.window_s = 60.0
        self.delay_s = 0.0
        self.refused = 0  # requests answered 429 by the quota
        self._queue: deque[Reply] = deque()
        self._sent: deque[tuple[float, int]] = deque()

    def then(self, *replies: Reply) -> GeminiStub:
        """Answer the next requests with these replies, in order."""
        self._queue.extend(replies)
        return self

    def fail(
        self, status: int, *, times: int = 1, retry_delay_s: float | None = None, message: str = ""
    ) -> None:
        """Answer the next ``times`` requests with a Google API error (``RetryInfo`` when ``retry_delay_s``)."""
        details = []
        if retry_delay_s is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_s}s"}
            )
        for _ in range(times):
            self._queue.append(Reply(status, _error(status, message or f"stub error {status}", details)))

    def reply_text(self, text: str, *, times: int = 1) -> None:
        """Answer the next ``times`` requests with a 200 whose candidate says ``text`` (e.g. garbage)."""
        for _ in range(times):
            self._queue.append(Reply(200, gemini_text_response(text)))

    def reply_raw(self, status: int, body: bytes, *, content_type: str = "text/html") -> None:
        """Answer the next request with exactly these bytes."""
        self._queue.append(Reply(status, body, content_type=content_type))

    def _over_quota(self, tokens: int) -> float | None:
        """Seconds until the window has room, if this request is one too many (it is then not counted)."""
        if self.requests_per_window is None and self.tokens_per_window is None:
            return None
        now = time.monotonic()
        while self._sent and self._sent[0][0] <= now - self.window_s:
            self._sent.popleft()
        too_many = self.requests_per_window is not None and len(self._sent) >= self.requests_per_window
        used = sum(t for _, t in self._sent)
        too_big = self.tokens_per_window is not None and used + tokens > self.tokens_per_window
        if (too_many or too_big) and self._sent:
            return self._sent[0][0] + self.window_s - now
        self._sent.append((now, tokens))
        return None

    async def _reply(self, body: Json) -> Reply:
        wait = self._over_quota(count_tokens(body))
        if wait is not None:
            self.refused += 1
            return rate_limited(retry_delay_s=round(wait, 3))
        if self._queue:
            return self._queue.popleft()
        if self.responder is None:
            return Reply(500, _error(500, "no responder"))
        made = self.responder(body)
        if inspect.isawaitable(made):
            made = await made
        if isinstance(made, Reply):
            return made
        return Reply(200, gemini_text_response(made) if isinstance(made, str) else made)

    async def _generate(self, request: web.Request, model: str) -> web.Response:
        key = request.headers.get(API_KEY_HEADER, "")
        if key != self.api_key:
            return web.json_response(_error(400, "API key not valid."), status=400)
        body: Json = await request.json()
        self.requests.append(body)
        self.models.append(model)
        self.api_keys.append(key)
        reply = await self._reply(body)
        if self.delay_s or reply.delay_s:
            await asyncio.sleep(self.delay_s + reply.delay_s)
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        return web.Response(status=reply.status, body=data, content_type=reply.content_type)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["call"].rpartition(":")
        if method == "generateContent":
            return await self._generate(request, model)
        if method == "countTokens":
            body = await request.json()
            self.count_requests.append(body)
            return web.json_response({"totalTokens": count_tokens(body)})
        return web.json_response(_error(404, "not found"), status=404)

    def routes(self, app: web.Application) -> None:
        """``POST /{version}/models/{model}:{method}``."""
        app.router.add_post("/{version}/models/{call}", self._route)


@pytest.fixture
async def gemini_stub() -> AsyncIterator[GeminiStub]:
    """A started Gemini stub for one test."""
    async with GeminiStub() as stub:
        yield stub
