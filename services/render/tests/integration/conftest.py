"""The render service wired for integration tests: its api app and its worker's runner and router, on a real
Postgres schema and RabbitMQ, with the real billing service (``common.testing.saga.SagaStack``: subprocesses).

Ingest's part is played where ingest's contract is: its HTTP API (``GET /api/v1/searches/{id}`` and
``/api/v1/videos/{id}``, answering with ingest's documented shapes from its recorded search fixtures) is served
on 127.0.0.1, and ``video.ingested.v1`` / ``video.ingest_failed.v1`` are published on the bus with the
originals put in the object store, as ingest does. The whole platform (real ingest) is driven in tests/e2e.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from aiohttp import web

from common.bus.base import Bus, Delivery
from common.bus.router import Router
from common.events.ingest import VideoIngested
from common.events.jobs import JobProgress
from common.jobrunner import JobContext, LeasedJobRunner
from common.jobs import Job, JobFailure
from common.storage.fs import FileStore
from common.testing.auth import TokenFactory
from common.testing.bus import unique_name
from common.testing.http import serving
from common.testing.saga import PaidJobAdapter, SagaStack
from render import handlers
from render.app import create_app
from render.compose import probe_clip
from render.config import RenderSettings
from render.jobs import PRODUCER, RenderJobs

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
INGEST_FIXTURES = Path(__file__).resolve().parents[4] / "services/ingest/tests/fixtures"


class RenderWorker(PaidJobAdapter):
    """Render's worker: its runner runs ``render`` jobs (and the saga's trivial kind), its router is render's."""

    producer = PRODUCER
    kind = "saga.trivial"
    migrations_dir = MIGRATIONS  # the trivial kind keeps the suite's default price (it needs >= 2 a unit)

    def __init__(self, settings: RenderSettings, objects: FileStore) -> None:
        super().__init__()
        self.settings, self.objects = settings, objects
        self.jobs: RenderJobs | None = None
        self.render_runs: dict[uuid.UUID, int] = {}

    async def dispatch(self, ctx: JobContext) -> None:
        """Render jobs go to render's job function, the saga's to the trivial one."""
        if ctx.job.kind != "render":
            await self.run(ctx)
            return
        assert self.jobs is not None
        self.render_runs[ctx.job.id] = self.render_runs.get(ctx.job.id, 0) + 1
        await self.jobs.run(ctx)

    async def on_any_failure(self, conn: asyncpg.Connection, job: Job, failure: JobFailure) -> None:
        """Render's failure hook for render jobs; the suite records every failure."""
        if job.kind == "render" and self.jobs is not None:
            await self.jobs.on_failure(conn, job, failure)
        await self.on_failure(conn, job, failure)

    async def subscribe(self, pool: asyncpg.Pool, bus: Bus, *, queue: str) -> None:
        """Render's own router: read model, import answers, cancels, billing's answers."""
        self.jobs = RenderJobs(settings=self.settings, pool=pool, objects=self.objects)
        await handlers.router(runner=None, on_failure=self.on_any_failure, objects=self.objects).subscribe(
            bus, queue=queue, pool=pool
        )

    def runner(self, pool: asyncpg.Pool, bus: Bus, *, lease_s: float, worker_id: str) -> LeasedJobRunner:
        """Render's runner (both kinds)."""
        self.jobs = RenderJobs(settings=self.settings, pool=pool, objects=self.objects)
        return LeasedJobRunner(
            pool=pool,
            bus=bus,
            kinds=[self.kind, "render"],
            handler=self.dispatch,
            producer=self.producer,
            concurrency=2,
            lease_s=lease_s,
            poll_interval_s=0.2,
            progress_interval_s=0.2,
            worker_id=worker_id,
            on_failure=self.on_any_failure,
        )


@dataclass
class IngestDouble:
    """Ingest's HTTP answers for the searches and videos a test stored, per owner."""

    searches: dict[uuid.UUID, tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=dict)
    videos: dict[uuid.UUID, tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=dict)
    owners: dict[str, uuid.UUID] = field(default_factory=dict)  # bearer token → user

    def app(self) -> web.Application:
        """``GET /api/v1/searches/{id}`` and ``GET /api/v1/videos/{id}`` as ingest answers them."""

        def lookup(
            request: web.Request, table: dict[uuid.UUID, tuple[uuid.UUID, dict[str, Any]]]
        ) -> web.Response:
            owner = self.owners.get(request.headers.get("Authorization", ""))
            found = table.get(uuid.UUID(request.match_info["id"]))
            if owner is None:
                return web.json_response({"code": "auth.missing_token"}, status=401)
            if found is None or found[0] != owner:
                return web.json_response({"code": "not_found"}, status=404)
            return web.json_response(found[1])

        async def search(request: web.Request) -> web.Response:
            return lookup(request, self.searches)

        async def video(request: web.Request) -> web.Response:
            return lookup(request, self.videos)

        app = web.Application()
        app.router.add_get("/api/v1/searches/{id}", search)
        app.router.add_get("/api/v1/videos/{id}", video)
        return app

    def store_search(self, owner: uuid.UUID, *fixtures: str) -> uuid.UUID:
        """A succeeded search whose results are the entries of ingest's recorded yt-dlp fixtures."""
        search_id = uuid.uuid4()
        results = []
        for name in fixtures:
            for e in json.loads((INGEST_FIXTURES / name).read_text())["entries"]:
                results.append(
                    {
                        "position": len(results) + 1,
                        "id": e.get("id") or "",
                        "url": e["url"],
                        "title": e.get("title") or "",
                        "uploader": e.get("uploader") or e.get("channel") or "",
                        "view_count": e.get("view_count"),
                        "like_count": e.get("like_count"),
                        "comment_count": e.get("comment_count"),
                        "duration_s": e.get("duration"),
                        "thumbnail_url": None,
                        "published_at": None,
                    }
                )
        self.searches[search_id] = (
            owner,
            {
                "id": str(search_id),
                "job_id": str(uuid.uuid4()),
                "platform": "youtube",
                "query": "cat fails",
                "limit": len(results),
                "status": "succeeded",
                "progress": 100,
                "error": None,
                "sort": "relevance",
                "created_at": "2026-12-01T09:30:00+00:00",
                "results": results,
            },
        )
        return search_id


@dataclass
class RenderHarness:
    """What a test drives: render's api (base URL), the saga stack (billing, bus, pool), ingest's part."""

    stack: SagaStack
    worker: RenderWorker
    ingest: IngestDouble
    settings: RenderSettings
    objects: FileStore
    tokens: TokenFactory
    base: str
    http: aiohttp.ClientSession
    progress: list[JobProgress]

    def stages(self, job_id: str) -> list[str]:
        """The stages the job's ``job.progress.v1`` snapshots went through, in order, without repeats."""
        out: list[str] = []
        # direct progress snapshots overtake the outbox's status changes: their seq says the real order
        for e in sorted((e for e in self.progress if str(e.job_id) == job_id), key=lambda e: e.seq):
            if not out or out[-1] != e.stage:
                out.append(e.stage)
        return out

    async def user(self) -> tuple[uuid.UUID, dict[str, str]]:
        """A new user with an open account (the signup grant) and their Authorization header."""
        owner = await self.stack.open_account()
        headers = self.tokens.headers(owner)
        self.ingest.owners[headers["Authorization"]] = owner
        return owner, headers

    async def ingest_video(self, owner: uuid.UUID, path: Path, *, title: str = "") -> uuid.UUID:
        """What ingest does with an upload: the original in storage, ``video.ingested.v1``, and its API answers."""
        video_id = uuid.uuid4()
        key = f"originals/{video_id}/source.mp4"
        await self.objects.put_file(key, path, content_type="video/mp4")
        info = probe_clip(path)
        await self.stack.bus.publish(
            VideoIngested(
                video_id=video_id,
                owner_id=owner,
                storage_key=key,
                duration_s=info.duration_s,
                width=info.width,
                height=info.height,
                audio_codec="aac" if info.has_audio else "",
                title=title,
                producer="ingest",
            )
        )
        self.ingest.videos[video_id] = (
            owner,
            {
                "id": str(video_id),
                "title": title,
                "source": "upload",
                "source_url": None,
                "duration_s": info.duration_s,
                "created_at": datetime.now(UTC).isoformat(),
            },
        )
        return video_id

    async def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """One request to render's api: status and JSON (or None)."""
        async with self.http.request(method, self.base + path, json=body, headers=headers or {}) as r:
            try:
                return r.status, await r.json(content_type=None)
            except ValueError:
                return r.status, None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def harness(
    database_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RenderHarness]:
    """Render (api in-process, runner and router in-process), billing (subprocesses), ingest's part."""
    workdir = tmp_path_factory.mktemp("render-service")
    objects = FileStore(workdir / "objects")
    ingest = IngestDouble()
    tokens = TokenFactory()
    async with serving(ingest.app()) as (host, port):
        settings = RenderSettings(
            database_url=database_url,
            ingest_url=f"http://{host}:{port}",
            tmp_dir=str(workdir / "tmp"),
            job_progress_interval_s=0.2,
            source_poll_s=0.2,
            source_wait_s=120,
        )
        worker = RenderWorker(settings, objects)
        async with SagaStack(worker, database_url=database_url, amqp_url=amqp_url, workdir=workdir) as stack:
            settings = settings.with_(
                db_schema=stack.schema, billing_url=stack.prices.url.removesuffix("/api/v1/billing/prices")
            )
            worker.settings = settings
            progress: list[JobProgress] = []

            async def on_progress(event: JobProgress, delivery: Delivery) -> None:
                progress.append(event)

            watch = Router()
            watch.add(JobProgress, on_progress, inbox=False)
            await watch.subscribe(stack.bus, queue=unique_name("render-progress"), exclusive=True)
            app = create_app(
                settings,
                role="api",
                bus=stack.bus,
                store=objects,
                verifier=tokens.verifier(),
                run_relay=False,
            )
            async with serving(app) as (api_host, api_port), aiohttp.ClientSession() as http:
                yield RenderHarness(
                    stack=stack,
                    worker=worker,
                    ingest=ingest,
                    settings=settings,
                    objects=objects,
                    tokens=tokens,
                    base=f"http://{api_host}:{api_port}",
                    http=http,
                    progress=progress,
                )
