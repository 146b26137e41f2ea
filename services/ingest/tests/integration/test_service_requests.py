"""What other services send ingest: ``video.import_requested.v1`` (import a URL for a user, ARCHITECTURE §5a) and
``render.completed.v1`` (register a rendered short as the owner's video).

Real RabbitMQ (the requester is a second bus on the same exchange), Postgres, the filesystem store, yt-dlp
against a media server on 127.0.0.1. The answer is ``video.ingested.v1`` / ``video.ingest_failed.v1`` with
``correlation_id`` = the command's ``request_id`` (the render id for a render); the owner sees the import job
like one of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from common.bus import Bus
from common.events.base import Event
from common.events.ingest import VideoImportRequested, VideoIngested, VideoIngestFailed
from common.events.jobs import JobProgress
from common.events.render import RenderCompleted
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.bus import RabbitBusFactory
from common.testing.waiting import wait_for
from ingest.config import IngestSettings

from ..conftest import AppFactory, MediaServer, originals

ANSWERS = (VideoIngested, VideoIngestFailed)


class Requester:
    """What render or analysis does: publish the command, collect the answers and the job snapshots."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.events: list[Event] = []

    async def listen(self) -> Requester:
        async def collect(event: Event, delivery: Any) -> None:
            self.events.append(event)

        await self.bus.subscribe(f"requester-{uuid.uuid4().hex[:8]}", [*ANSWERS, JobProgress], collect)
        return self

    async def ask(
        self, owner: uuid.UUID, url: str, title: str = "", request_id: str = ""
    ) -> VideoImportRequested:
        command = VideoImportRequested(
            request_id=request_id or f"render-item:{uuid.uuid4()}",
            owner_id=owner,
            url=url,
            title=title,
            producer="render",
        )
        await self.bus.publish(command)
        return command

    def answers(self, request_id: str) -> list[VideoIngested | VideoIngestFailed]:
        return [e for e in self.events if isinstance(e, ANSWERS) and e.correlation_id == request_id]

    async def answer(self, request_id: str, timeout: float = 40) -> VideoIngested | VideoIngestFailed:
        got = await wait_for(lambda: self.answers(request_id), timeout=timeout, interval=0.05)
        return got[0]

    def jobs(self, owner: uuid.UUID) -> list[JobProgress]:
        return [e for e in self.events if isinstance(e, JobProgress) and e.owner_id == owner]


Wired = Callable[..., Awaitable[tuple[TestClient[Any, Any], Requester]]]


@pytest.fixture
def wired(
    start_app: AppFactory,
    settings: IngestSettings,
    fs_store: ObjectStore,
    rabbit_bus_factory: RabbitBusFactory,
    media_server: MediaServer,
) -> Wired:
    """Start ingest's API and worker on RabbitMQ (the media server admitted) and a requester on the same exchange."""

    async def start(**overrides: Any) -> tuple[TestClient[Any, Any], Requester]:
        s = settings.with_(import_allowed_hosts=(media_server.hostport,), **overrides)
        bus = await rabbit_bus_factory()
        requester = await Requester(await rabbit_bus_factory()).listen()
        api = await start_app(s, bus=bus, store=fs_store)
        await start_app(s, bus=bus, store=fs_store, role="worker")
        return api, requester

    return start


async def test_a_requested_import_is_the_owners_job_and_answers_with_the_request_id(
    wired: Wired,
    fs_store: ObjectStore,
    token_factory: TokenFactory,
    media_server: MediaServer,
    mp4_bytes: bytes,
    pool: asyncpg.Pool,
) -> None:
    api, requester = await wired()
    owner = uuid.uuid4()
    url = media_server.url("/media/clip.mp4")
    command = await requester.ask(owner, url, title="Rank 3: the cat")

    answer = await requester.answer(command.request_id)
    assert isinstance(answer, VideoIngested), answer
    assert (answer.owner_id, answer.source, answer.title, answer.width) == (
        owner,
        "import",
        "Rank 3: the cat",
        320,
    )
    assert await fs_store.read_bytes(answer.storage_key) == mp4_bytes

    # the owner sees the import job (the gateway's jobs read model is built from these snapshots) ...
    def succeeded() -> list[JobProgress]:
        return [j for j in requester.jobs(owner) if j.status == "succeeded"]

    done = (await wait_for(succeeded, timeout=20, interval=0.05))[0]
    result = done.result or {}
    assert done.kind == "import" and result["video_id"] == str(answer.video_id)
    assert min(requester.jobs(owner), key=lambda j: j.seq).status == "queued"
    # ... and the import and the video through the API, as their own; nobody else does
    headers = token_factory.headers(owner)
    imp = await (await api.get(f"/api/v1/imports/{result['import_id']}", headers=headers)).json()
    assert (imp["status"], imp["url"], imp["video_id"], imp["job_id"]) == (
        "succeeded",
        url,
        str(answer.video_id),
        str(done.job_id),
    )
    video = await (await api.get(f"/api/v1/videos/{answer.video_id}", headers=headers)).json()
    assert (video["source"], video["source_url"], video["title"]) == ("import", url, "Rank 3: the cat")
    stranger = token_factory.headers(uuid.uuid4())
    assert (await api.get(f"/api/v1/videos/{answer.video_id}", headers=stranger)).status == 404
    rows = await pool.fetch("SELECT request_id, video_id FROM imports")
    assert [(r["request_id"], r["video_id"]) for r in rows] == [(command.request_id, answer.video_id)]


async def test_the_same_command_twice_imports_once(
    wired: Wired, fs_store: ObjectStore, media_server: MediaServer, pool: asyncpg.Pool
) -> None:
    _, requester = await wired()
    owner = uuid.uuid4()
    command = await requester.ask(owner, media_server.url("/media/clip.mp4"))
    await requester.bus.publish(command)  # redelivered: the same event
    await requester.bus.publish(
        msgspec.structs.replace(command, id=uuid.uuid4())
    )  # sent again by a requester
    await requester.bus.publish(
        msgspec.structs.replace(command, id=uuid.uuid4(), url=media_server.url("/page"))
    )

    async def all_handled() -> bool:
        n = await pool.fetchval("SELECT count(*) FROM inbox WHERE event_type = 'video.import_requested.v1'")
        return bool(n == 3)  # three distinct event ids, each handled (the repeated one once)

    await wait_for(all_handled, timeout=20, interval=0.05)
    answer = await requester.answer(command.request_id)
    assert isinstance(answer, VideoIngested)
    assert len(await pool.fetch("SELECT id FROM imports")) == 1
    assert [r["id"] for r in await pool.fetch("SELECT id FROM videos")] == [answer.video_id]
    assert await originals(fs_store) == [answer.storage_key]
    # the answer is written once, in the transaction that ended the one job
    sent = await pool.fetch("SELECT body FROM outbox WHERE routing_key = 'video.ingested.v1'")
    assert len(sent) == 1


async def test_refused_and_unavailable_urls_answer_ingest_failed_with_a_code(
    wired: Wired,
    fs_store: ObjectStore,
    token_factory: TokenFactory,
    media_server: MediaServer,
    pool: asyncpg.Pool,
) -> None:
    api, requester = await wired(job_concurrency=3)
    owner = uuid.uuid4()
    cases = {
        "http://169.254.169.254/latest/meta-data/": "source.forbidden_address",
        "http://127.0.0.1:9/v.mp4": "source.forbidden_address",  # loopback, but not the admitted media server
        media_server.url("/redirect?to=http://10.0.0.1/v.mp4"): "source.forbidden_address",
        "ftp://example.com/v.mp4": "source.unsupported",
        media_server.url("/media/missing.mp4"): "source.unavailable",
        media_server.url("/media/notes.mp4"): "media.unreadable",
        "http://exa\x00mple.com/v.mp4": "source.unsupported",  # cannot even be recorded: answered at once
    }
    commands = {url: await requester.ask(owner, url) for url in cases}
    for url, code in cases.items():
        answer = await requester.answer(commands[url].request_id)
        assert isinstance(answer, VideoIngestFailed), (url, answer)
        assert (answer.code, answer.owner_id) == (code, owner), (url, answer)
        assert "/tmp/" not in answer.message
    assert await pool.fetch("SELECT id FROM videos") == []
    assert await originals(fs_store) == []
    # every recorded one is a failed import job the owner can read, with the same code
    headers = token_factory.headers(owner)
    for url, code in cases.items():
        answer = requester.answers(commands[url].request_id)[0]
        assert isinstance(answer, VideoIngestFailed)
        if "\x00" in url:
            assert answer.job_id is None
            continue
        import_id = await pool.fetchval("SELECT id FROM imports WHERE job_id = $1", answer.job_id)
        imp = await (await api.get(f"/api/v1/imports/{import_id}", headers=headers)).json()
        assert (imp["status"], imp["error"]["code"]) == ("failed", code), imp


async def test_a_rendered_short_becomes_the_owners_video_with_its_attribution(
    wired: Wired,
    fs_store: ObjectStore,
    token_factory: TokenFactory,
    mp4_bytes: bytes,
    pool: asyncpg.Pool,
) -> None:
    api, requester = await wired()
    owner, render_id, project_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    key = f"renders/{render_id}/output.mp4"
    await fs_store.put(key, mp4_bytes, content_type="video/mp4")  # what render stored
    credits = (
        "#1 @catlover · youtube · https://youtu.be/abc\n#2 @dogfan · tiktok · https://tiktok.com/@dogfan/1"
    )
    ids: dict[str, Any] = {"render_id": render_id, "project_id": project_id, "owner_id": owner}
    event = RenderCompleted(
        **ids, storage_key=key, duration_s=2.0, title="Top 2 pet fails", description=credits
    )
    await requester.bus.publish(event)
    await requester.bus.publish(msgspec.structs.replace(event, id=uuid.uuid4()))  # sent again by render

    answer = await requester.answer(str(render_id))
    assert isinstance(answer, VideoIngested), answer
    assert (answer.source, answer.owner_id, answer.title, answer.duration_s) == (
        "render",
        owner,
        "Top 2 pet fails",
        2.0,
    )
    # probed and kept as an original of its own; the render's object stays where render put it
    assert answer.storage_key == f"originals/{answer.video_id}/source.mp4"
    assert await fs_store.read_bytes(answer.storage_key) == mp4_bytes and await fs_store.exists(key)
    headers = token_factory.headers(owner)
    video = await (await api.get(f"/api/v1/videos/{answer.video_id}", headers=headers)).json()
    assert (video["source"], video["title"], video["width"], video["video_codec"]) == (
        "render",
        "Top 2 pet fails",
        320,
        "h264",
    )
    assert str(project_id) in video["description"] and video["description"].endswith(credits)
    assert (
        await api.get(f"/api/v1/videos/{answer.video_id}", headers=token_factory.headers(uuid.uuid4()))
    ).status == 404

    async def both_handled() -> bool:
        n = await pool.fetchval("SELECT count(*) FROM inbox WHERE event_type = 'render.completed.v1'")
        return bool(n == 2)

    await wait_for(both_handled, timeout=20, interval=0.05)
    assert [r["id"] for r in await pool.fetch("SELECT id FROM videos")] == [answer.video_id]
    assert await originals(fs_store) == [answer.storage_key]

    # a render whose object is not there answers ingest_failed with the render id
    missing = msgspec.structs.replace(
        event, id=uuid.uuid4(), render_id=uuid.uuid4(), storage_key="renders/x/y.mp4"
    )
    await requester.bus.publish(missing)
    failed = await requester.answer(str(missing.render_id))
    assert isinstance(failed, VideoIngestFailed) and (failed.code, failed.owner_id) == (
        "source.unavailable",
        owner,
    )
