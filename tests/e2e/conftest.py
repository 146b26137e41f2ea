"""The e2e stack fixture: the whole platform as real processes, driven only through the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from common.testing.bus import delete_queues, service_queues
from common.testing.gemini import GeminiStub, Reply, analysis_reply, request_schema, request_text
from common.testing.media import make_video
from common.testing.subtitles import SubtitleServer

from .stack import SERVICES, Stack, drop_schemas, make_stack, migrate_all, start_all


def _reversed_words(request: dict[str, Any]) -> str:
    """The stub's "translation": each cue's words spelled backwards, condensed to the character budget the
    request states (as a model that follows its instructions would)."""
    batch = json.loads(request_text(request))
    system = "".join(p.get("text", "") for p in request.get("systemInstruction", {}).get("parts", []))
    if "language with code de." in system:
        return "Ich kann das nicht."  # German always answers garbage: the tests' failing translation
    budgets = json.loads(system[system.rindex("{") :]) if "{" in system else {}
    out = {}
    for cue_id, text in batch.items():
        words = [w[::-1] for w in text.split()]
        while len(words) > 1 and len(" ".join(words)) > budgets.get(cue_id, 10**6):
            words.pop()
        out[cue_id] = " ".join(words)
    return json.dumps(out)


def _model(request: dict[str, Any]) -> str | Reply:
    """Analyses (a request for the analysis schema) are answered like a model that follows the prompt; the rest
    are translations."""
    schema = request_schema(request) or {}
    if "chapters" in schema.get("properties", {}):
        return analysis_reply(request)
    return _reversed_words(request)


@contextlib.contextmanager
def _served(server: Any, name: str) -> Iterator[Any]:
    """``server`` (``start``/``close`` coroutines) on its own loop in a thread, alive while the block runs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture(scope="session")
def gemini() -> Iterator[GeminiStub]:
    """The Gemini REST stub, on its own loop in a thread, alive for the whole e2e session."""
    stub = GeminiStub()
    stub.responder = _model
    with _served(stub, "gemini-stub"):
        yield stub


@pytest.fixture(scope="session")
def platform() -> Iterator[SubtitleServer]:
    """A video platform with subtitles that yt-dlp reads, on 127.0.0.1, alive for the whole e2e session."""
    with _served(SubtitleServer(), "subtitle-platform") as server:
        yield server


@contextlib.contextmanager
def booted_stack(
    workdir: Path, gemini: GeminiStub, service_env: dict[str, dict[str, str]] | None = None
) -> Iterator[Stack]:
    """Every service's api and worker on private names, migrated and ready; removed again afterwards."""
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    gemini_env = {"GEMINI_API_KEY": gemini.api_key, "GEMINI_BASE_URL": gemini.base_url}
    stack = make_stack(
        workdir,
        database_url=database_url,
        amqp_url=amqp_url,
        redis_url=redis_url,
        extra_env=gemini_env,
        service_env=service_env,
    )
    migrate_all(stack)
    start_all(stack)
    try:
        asyncio.run(stack.wait_ready())
        yield stack
    finally:
        stack.stop()
        drop_schemas(stack, database_url)
        # quorum queues outlive their processes: hundreds of leftovers once wedged this machine's broker
        asyncio.run(delete_queues(amqp_url, _stack_queues(stack)))


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory, gemini: GeminiStub) -> Iterator[Stack]:
    """The platform shared by the e2e journeys (translation through the Gemini stub)."""
    with booted_stack(tmp_path_factory.mktemp("stack"), gemini) as stack:
        yield stack


def _stack_queues(stack: Stack) -> list[str]:
    """Every durable queue the stack's services declared (their own, the webhooks', dead letters, retries)."""
    delays = stack.env["BUS_RETRY_DELAYS_MS"].split(",")
    names: list[str] = []
    for svc in SERVICES:
        queue = stack.service_env(svc)["BUS_QUEUE"]
        names += service_queues(queue, delays) + service_queues(f"{queue}.webhooks", delays)
    return names


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to the gateway."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


@pytest.fixture
async def clip_url() -> AsyncIterator[str]:
    """The URL of a 2 s video served on 127.0.0.1 (what an import fetches); other paths there answer 404."""
    sample = make_video(seconds=2)
    app = web.Application()
    app.router.add_get("/clip.mp4", lambda _: web.FileResponse(sample))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/clip.mp4"
    finally:
        await runner.cleanup()
