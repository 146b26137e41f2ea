"""A stub of the Gemini REST API on 127.0.0.1, for tests that run the real ``google-genai`` client.

``POST /v1beta/models/{model}:generateContent`` answers from a queue of scripted replies first (errors such as 429
with a ``RetryInfo``, 500, a garbage body, a given text), then from the test's responder: a function from the request
JSON to the text of the model's answer (or to a whole response body). Every request is recorded.

    async def test_x(gemini_stub):
        gemini_stub.responder = lambda request: json.dumps({"c1": "hola"})
        gemini_stub.fail(429, retry_delay_s=0.01)
        client = genai.Client(api_key=gemini_stub.api_key, http_options=types.HttpOptions(
            base_url=gemini_stub.base_url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)))
"""

from __future__ import annotations

import inspect
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

__all__ = ["GeminiStub", "gemini_stub", "gemini_text_response", "request_schema", "request_text"]

Json = dict[str, Any]
Responder = Callable[[Json], "str | Json | Awaitable[str | Json]"]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str


def gemini_text_response(text: str, *, model: str = "gemini-stub", finish_reason: str = "STOP") -> Json:
    """A ``generateContent`` response whose one candidate says ``text``."""
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
        "modelVersion": model,
    }


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


class GeminiStub:
    """The stub server: ``base_url`` and ``api_key`` for the client, ``requests`` seen, replies scripted."""

    api_key = "stub-gemini-key"

    def __init__(self) -> None:
        self.responder: Responder | None = None
        self.requests: list[Json] = []
        self.models: list[str] = []
        self._queue: deque[_Reply] = deque()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def fail(
        self, status: int, *, times: int = 1, retry_delay_s: float | None = None, message: str = ""
    ) -> None:
        """Answer the next ``times`` requests with a Google API error (``RetryInfo`` when ``retry_delay_s``)."""
        details = []
        if retry_delay_s is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_s}s"}
            )
        error = {
            "code": status,
            "message": message or f"stub error {status}",
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
            "details": details,
        }
        for _ in range(times):
            self._queue.append(_Reply(status, json.dumps({"error": error}).encode(), "application/json"))

    def reply_text(self, text: str, *, times: int = 1) -> None:
        """Answer the next ``times`` requests with a 200 whose candidate says ``text`` (e.g. garbage)."""
        body = json.dumps(gemini_text_response(text)).encode()
        for _ in range(times):
            self._queue.append(_Reply(200, body, "application/json"))

    def reply_raw(self, status: int, body: bytes, *, content_type: str = "text/html") -> None:
        """Answer the next request with exactly these bytes."""
        self._queue.append(_Reply(status, body, content_type))

    async def _generate(self, request: web.Request) -> web.Response:
        if request.headers.get("x-goog-api-key") != self.api_key:
            error = {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}
            return web.json_response({"error": error}, status=400)
        body: Json = await request.json()
        self.requests.append(body)
        self.models.append(request.match_info["model"])
        if self._queue:
            reply = self._queue.popleft()
            return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type)
        if self.responder is None:
            return web.json_response(
                {"error": {"code": 500, "message": "no responder", "status": "INTERNAL"}}, status=500
            )
        answer = self.responder(body)
        if inspect.isawaitable(answer):
            answer = await answer
        response = gemini_text_response(answer) if isinstance(answer, str) else answer
        return web.json_response(response)

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the base URL."""
        app = web.Application()
        app.router.add_post("/{version}/models/{model}:generateContent", self._generate)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.base_url

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def gemini_stub() -> AsyncIterator[GeminiStub]:
    """A started Gemini stub for one test."""
    stub = GeminiStub()
    await stub.start()
    yield stub
    await stub.close()
