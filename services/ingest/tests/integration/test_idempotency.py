"""Issue 14 item 6: ``Idempotency-Key`` on uploads and imports, through the real API, Postgres and object store."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from common.bus import MemoryBus
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.waiting import wait_for
from ingest.config import IngestSettings

from ..conftest import AppFactory, MediaServer, originals

UPLOAD = "/api/v1/videos"
Client = TestClient[Any, Any]


@pytest.fixture
async def api(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: MemoryBus,
    media_server: MediaServer,
) -> Client:
    """The ingest API (imports from the test media server allowed)."""
    allowed = settings.with_(import_allowed_hosts=(media_server.hostport,))
    return await start_app(allowed, bus=memory_bus, store=fs_store)


def _form(data: bytes, *, title: str = "clip") -> aiohttp.FormData:
    form = aiohttp.FormData()  # a new random boundary each time, as a client's retry would have
    form.add_field("title", title)
    form.add_field("file", data, filename="clip.mp4", content_type="video/mp4")
    return form


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql))


async def test_a_retried_upload_gets_the_first_video_and_one_copy_is_stored(
    api: Client, fs_store: ObjectStore, token_factory: TokenFactory, mp4_bytes: bytes, pool: asyncpg.Pool
) -> None:
    user = uuid.uuid4()
    headers = {**token_factory.headers(user), "Idempotency-Key": "upload-1"}
    first = await api.post(UPLOAD, data=_form(mp4_bytes), headers=headers)
    assert first.status == 201, await first.text()
    video = await first.json()
    again = await api.post(UPLOAD, data=_form(mp4_bytes), headers=headers)
    assert again.status == 201 and await again.json() == video
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"] == f"/api/v1/videos/{video['id']}"
    assert await _count(pool, "SELECT count(*) FROM videos") == 1
    assert await originals(fs_store) == [f"originals/{video['id']}/source.mp4"]
    # the same key with another body (another title) is refused, and nothing is stored
    other = await api.post(UPLOAD, data=_form(mp4_bytes, title="another"), headers=headers)
    assert other.status == 409 and (await other.json())["code"] == "idempotency.key_reused"
    # keys are per user: another user's "upload-1" is theirs
    theirs = await api.post(
        UPLOAD,
        data=_form(mp4_bytes),
        headers={**token_factory.headers(uuid.uuid4()), "Idempotency-Key": "upload-1"},
    )
    assert theirs.status == 201 and (await theirs.json())["id"] != video["id"]
    # without a key every upload is a new video
    plain = await api.post(UPLOAD, data=_form(mp4_bytes), headers=token_factory.headers(user))
    assert plain.status == 201 and (await plain.json())["id"] != video["id"]
    assert await _count(pool, "SELECT count(*) FROM videos") == 3
    bad = await api.post(UPLOAD, data=_form(mp4_bytes), headers={**headers, "Idempotency-Key": "é" * 3})
    assert bad.status == 400 and (await bad.json())["code"] == "idempotency.key_invalid"


class _GatedUpload:
    """A multipart upload whose body stops half-way until ``gate`` opens: a request still in flight."""

    def __init__(self, data: bytes) -> None:
        self.data, self.gate = data, asyncio.Event()
        self.boundary = f"b{uuid.uuid4().hex}"

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    async def body(self) -> AsyncIterator[bytes]:
        yield (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nclip\r\n'
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode() + self.data[:1000]
        await self.gate.wait()
        yield self.data[1000:] + f"\r\n--{self.boundary}--\r\n".encode()


async def _held(pool: asyncpg.Pool) -> bool:
    return await _count(pool, "SELECT count(*) FROM idempotency_keys WHERE status IS NULL") == 1


async def test_a_retry_while_the_first_upload_runs_is_409_in_progress(
    api: Client, fs_store: ObjectStore, token_factory: TokenFactory, mp4_bytes: bytes, pool: asyncpg.Pool
) -> None:
    headers = {**token_factory.headers(uuid.uuid4()), "Idempotency-Key": "slow-upload"}
    gated = _GatedUpload(mp4_bytes)
    first = asyncio.create_task(
        api.post(UPLOAD, data=gated.body(), headers={**headers, "Content-Type": gated.content_type})
    )
    await wait_for(lambda: _held(pool), timeout=10, interval=0.05)
    busy = await api.post(UPLOAD, data=_form(mp4_bytes), headers=headers)
    assert busy.status == 409 and (await busy.json())["code"] == "idempotency.in_progress"
    assert busy.headers["Retry-After"] == "1"
    gated.gate.set()
    done = await first
    assert done.status == 201, await done.text()
    video = await done.json()
    # the retry's boundary differs from the first request's: the parts are what is compared
    replay = await api.post(UPLOAD, data=_form(mp4_bytes), headers=headers)
    assert replay.status == 201 and (await replay.json())["id"] == video["id"]
    assert await originals(fs_store) == [f"originals/{video['id']}/source.mp4"]


async def test_a_failed_or_abandoned_request_leaves_the_key_free_for_the_retry(
    api: Client, fs_store: ObjectStore, token_factory: TokenFactory, mp4_bytes: bytes, pool: asyncpg.Pool
) -> None:
    headers = {**token_factory.headers(uuid.uuid4()), "Idempotency-Key": "k-1"}
    # an error answer is not kept: the client fixes its request and retries with the same key
    broken = await api.post(UPLOAD, data=_form(b"not a video" * 100), headers=headers)
    assert broken.status == 422
    # a client that hangs up mid-upload holds the key no longer than its request lives
    gated = _GatedUpload(mp4_bytes)
    first = asyncio.create_task(
        api.post(UPLOAD, data=gated.body(), headers={**headers, "Content-Type": gated.content_type})
    )
    await wait_for(lambda: _held(pool), timeout=10, interval=0.05)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)

    async def retried() -> Any:
        r = await api.post(UPLOAD, data=_form(mp4_bytes), headers=headers)
        return r if r.status != 409 else None

    done = await wait_for(retried, timeout=10, interval=0.1)
    assert done.status == 201, await done.text()
    assert await _count(pool, "SELECT count(*) FROM videos") == 1


async def test_a_retried_import_gets_the_first_job(
    api: Client, token_factory: TokenFactory, media_server: MediaServer, pool: asyncpg.Pool
) -> None:
    headers = {**token_factory.headers(uuid.uuid4()), "Idempotency-Key": "import-1"}
    url = media_server.url("/media/clip.mp4")
    first = await api.post("/api/v1/imports", json={"url": url, "title": "t"}, headers=headers)
    assert first.status == 202, await first.text()
    # the same JSON written another way (key order, spacing) is the same request
    body = json.dumps({"title": "t", "url": url}, indent=2)
    again = await api.post(
        "/api/v1/imports", data=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert (again.status, await again.json()) == (202, await first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await api.post("/api/v1/imports", json={"url": url, "title": "u"}, headers=headers)
    assert other.status == 409 and (await other.json())["code"] == "idempotency.key_reused"
    assert await _count(pool, "SELECT count(*) FROM imports") == 1
    assert await _count(pool, "SELECT count(*) FROM jobs WHERE kind = 'import'") == 1


async def test_a_long_upload_keeps_its_key_and_a_dead_holders_key_is_taken_over(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    memory_bus: MemoryBus,
    token_factory: TokenFactory,
    mp4_bytes: bytes,
    pool: asyncpg.Pool,
) -> None:
    api = await start_app(settings.with_(idempotency_lease_s=0.6), bus=memory_bus, store=fs_store)
    user = uuid.uuid4()
    headers = {**token_factory.headers(user), "Idempotency-Key": "long"}
    gated = _GatedUpload(mp4_bytes)
    first = asyncio.create_task(
        api.post(UPLOAD, data=gated.body(), headers={**headers, "Content-Type": gated.content_type})
    )
    await wait_for(lambda: _held(pool), timeout=10, interval=0.05)
    # three leases later the upload still runs: its lease is renewed, nobody takes the key over
    await asyncio.sleep(1.8)
    busy = await api.post(UPLOAD, data=_form(mp4_bytes), headers=headers)
    assert busy.status == 409 and (await busy.json())["code"] == "idempotency.in_progress"
    gated.gate.set()
    assert (await first).status == 201
    # a process killed mid-request leaves its key held with a lease nobody renews; once it has run out, the
    # retry runs (written here as the dead process left it)
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO idempotency_keys (owner_id, key, token, locked_until, expires_at)"
            " VALUES ($1, 'crashed', $2, now() - interval '1 second', now() + interval '1 day')",
            user,
            uuid.uuid4(),
        )
    retry = await api.post(UPLOAD, data=_form(mp4_bytes), headers={**headers, "Idempotency-Key": "crashed"})
    assert retry.status == 201, await retry.text()
    assert await _count(pool, "SELECT count(*) FROM videos") == 2
