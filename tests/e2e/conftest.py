"""The e2e stack fixture: the whole platform as real processes, driven only through the gateway."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from common.testing.bus import delete_queues, service_queues
from common.testing.gemini import GeminiStub, request_text

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


@pytest.fixture(scope="session")
def gemini() -> Iterator[GeminiStub]:
    """The Gemini REST stub, on its own loop in a thread, alive for the whole e2e session."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gemini-stub", daemon=True)
    thread.start()
    stub = GeminiStub()
    stub.responder = _reversed_words
    asyncio.run_coroutine_threadsafe(stub.start(), loop).result(10)
    try:
        yield stub
    finally:
        asyncio.run_coroutine_threadsafe(stub.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory, gemini: GeminiStub) -> Iterator[Stack]:
    """Every service's api and worker, migrated and ready (translation through the Gemini stub)."""

    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    workdir: Path = tmp_path_factory.mktemp("stack")
    gemini_env = {"GEMINI_API_KEY": gemini.api_key, "GEMINI_BASE_URL": gemini.base_url}
    stack = make_stack(
        workdir, database_url=database_url, amqp_url=amqp_url, redis_url=redis_url, extra_env=gemini_env
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
