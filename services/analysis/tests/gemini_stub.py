"""A scriptable stub of the Gemini REST API (``v1beta``) on 127.0.0.1, for the real google-genai client.

``POST /v1beta/models/{model}:generateContent`` answers the next scripted ``Reply``, else what ``respond`` makes of
the request, else 500; with ``requests_per_window`` set it first answers 429 (``RetryInfo``: when the oldest request
leaves the window) to requests beyond that many per ``window_s``, like the real quota. ``:countTokens`` answers a
length-based count. Every generateContent body is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY_HEADER = "x-goog-api-key"


@dataclass(frozen=True)
class Reply:
    """One scripted answer: an HTTP status, a JSON body (or raw text), after ``delay_s``."""

    status: int
    body: Any
    delay_s: float = 0.0


def answer(obj: Any, *, prompt_tokens: int = 1200, output_tokens: int = 300, delay_s: float = 0.0) -> Reply:
    """A 200 whose candidate's text is ``obj`` as JSON (or ``obj`` itself if it is a string: malformed output)."""
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    body = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens,
        },
        "modelVersion": "stub",
    }
    return Reply(200, body, delay_s)


def rate_limited(*, per_day: bool = False, retry_delay_s: float | None = 1.0) -> Reply:
    """A 429 ``RESOURCE_EXHAUSTED`` with a ``QuotaFailure`` (per-minute or per-day) and a ``RetryInfo``."""
    quota_id = (
        "GenerateRequestsPerDayPerProjectPerModel"
        if per_day
        else "GenerateRequestsPerMinutePerProjectPerModel"
    )
    details: list[dict[str, Any]] = [
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
    error = {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED"}
    return Reply(429, {"error": {**error, "details": details}})


def server_error(status: int = 503) -> Reply:
    """A 5xx ``UNAVAILABLE``."""
    return Reply(
        status, {"error": {"code": status, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    )


def bad_request() -> Reply:
    """A 400 ``INVALID_ARGUMENT``."""
    return Reply(400, {"error": {"code": 400, "message": "Invalid request.", "status": "INVALID_ARGUMENT"}})


@dataclass
class GeminiStub:
    """The stub server; ``script`` replies in order to generateContent calls."""

    script: deque[Reply] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    count_requests: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)
    respond: Callable[[dict[str, Any]], Reply] | None = None
    requests_per_window: int | None = None
    window_s: float = 60.0
    refused: int = 0
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _sent: deque[float] = field(default_factory=deque)

    def then(self, *replies: Reply) -> GeminiStub:
        """Append replies to the script."""
        self.script.extend(replies)
        return self

    def _over_limit(self) -> float | None:
        """Seconds until the window has room, if this request is one too many (it is then not counted)."""
        if self.requests_per_window is None:
            return None
        now = time.monotonic()
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()
        if len(self._sent) >= self.requests_per_window:
            return self._sent[0] + self.window_s - now
        self._sent.append(now)
        return None

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.api_keys.append(request.headers.get(API_KEY_HEADER, ""))
        wait = self._over_limit()
        if wait is not None:
            self.refused += 1
            reply = rate_limited(retry_delay_s=round(wait, 3))
        elif self.script:
            reply = self.script.popleft()
        elif self.respond is not None:
            reply = self.respond(body)
        else:
            reply = Reply(500, {"error": {"code": 500, "message": "no scripted reply", "status": "INTERNAL"}})
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        return web.json_response(reply.body, status=reply.status)

    async def _count(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.count_requests.append(body)
        text = "".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))
        return web.json_response({"totalTokens": len(text) // 4 + 1})

    async def _route(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if method.endswith(":generateContent"):
            return await self._generate(request)
        if method.endswith(":countTokens"):
            return await self._count(request)
        return web.json_response(
            {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, status=404
        )

    async def start(self) -> str:
        """Listen on a free port of 127.0.0.1; returns the base URL to give the client."""
        app = web.Application()
        app.router.add_post("/v1beta/models/{method}", self._route)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
