"""Fixtures of the service's integration tests: the api and worker apps on a fresh schema (see ``service.py``), and
worker processes on a service's schema and queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from analysis.app import create_app
from analysis.config import AnalysisSettings
from common import db
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.bus import TEST_BUS_OPTIONS, RabbitBusFactory, delete_queues, service_queues
from common.testing.gemini import GeminiStub, analysis_reply
from common.testing.http import price_list
from common.testing.process import ServiceProcess, free_port, process_env

from ..conftest import REDIS_URL
from .service import MIGRATIONS, PRICE, Service, settings_for

ServiceFactory = Callable[..., Awaitable[Service]]
WorkerFactory = Callable[..., Awaitable[ServiceProcess]]
REPO = Path(__file__).resolve().parents[4]
#: worker processes of these tests: short leases, chunks of 50, the stub's model, pages on 127.0.0.1
WORKER_ENV = {
    "REDIS_URL": REDIS_URL,
    "GEMINI_MODEL": "gemini-stub",
    "GEMINI_RETRY_BASE_S": "0.05",
    "IMPORT_ALLOW_PRIVATE": "true",
    "JOB_LEASE_S": "5",
    "JOB_CONCURRENCY": "4",
    "BATCH_CHUNK_SIZE": "50",
    "BATCH_ITEM_CONCURRENCY": "12",
    "BUS_RETRY_DELAYS_MS": "200,1000",
}


@pytest.fixture
async def analysis_service(
    make_schema: Callable[..., Awaitable[str]],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    database_url: str,
    amqp_url: str,
    rabbit_bus: Any,
    fs_store: ObjectStore,
    token_factory: TokenFactory,
    gemini_stub: GeminiStub,
    tmp_path: Path,
) -> AsyncIterator[ServiceFactory]:
    """Starts the service (api + ``workers`` worker apps) with the Gemini stub answering like a model (``keyless``:
    no Gemini key, the offline engine)."""
    gemini_stub.responder = analysis_reply
    pools: list[asyncpg.Pool] = []
    queues: list[str] = []
    clients: list[TestClient[Any, Any]] = []

    async def start(*, workers: int = 1, keyless: bool = False, **kw: Any) -> Service:
        schema = await make_schema("analysis", MIGRATIONS)
        queue = f"analysis-{uuid.uuid4().hex[:10]}"
        queues.append(queue)
        settings: AnalysisSettings = settings_for(
            database_url=database_url,
            schema=schema,
            queue=queue,
            gemini=None if keyless else gemini_stub,
            redis_url=REDIS_URL,
            tmp=tmp_path,
            billing_url=f"http://127.0.0.1:{free_port()}",
            **kw,
        )
        api_app = create_app(
            settings, role="api", bus=rabbit_bus, store=fs_store, verifier=token_factory.verifier()
        )
        api_app.cleanup_ctx.insert(0, price_list(settings.billing_url, {"analysis_per_video": PRICE}))
        api = await aiohttp_client(api_app)
        clients.append(api)
        for _ in range(workers):
            clients.append(
                await aiohttp_client(create_app(settings, role="worker", bus=rabbit_bus, store=fs_store))
            )
        pool = await db.create_pool(settings.database_url, schema=settings.schema, min_size=1, max_size=2)
        pools.append(pool)
        user = uuid.uuid4()
        auth = {"Authorization": f"Bearer {token_factory.token(user)}"}
        return Service(api=api, pool=pool, queue=queue, bus=rabbit_bus, user=user, auth=auth)

    yield start
    # the apps stop and the bus closes before the queues go: a subscription whose queue is deleted under it would
    # otherwise be restored, declaring its queues again (the leaked ``analysis-*.retry.*``)
    for client in clients:
        await client.close()
    await rabbit_bus.close()
    for pool in pools:
        await pool.close()
    # the in-process bus's queues (its test retry delays), the settings' and those of worker processes (``workers``)
    retry = {str(d) for d in (*AnalysisSettings().bus_retry_delays_ms, *TEST_BUS_OPTIONS["retry_delays_ms"])}
    retry |= set(WORKER_ENV["BUS_RETRY_DELAYS_MS"].split(","))
    await delete_queues(amqp_url, [n for q in queues for n in service_queues(q, sorted(retry))])


@pytest.fixture
async def workers(
    analysis_service: ServiceFactory,  # set up before, torn down after: the processes stop before their queues go
    rabbit_bus_factory: RabbitBusFactory,
    database_url: str,
    gemini_stub: GeminiStub,
    tmp_path: Path,
) -> AsyncIterator[WorkerFactory]:
    """Starts analysis worker processes on a service's schema and queue (``WORKER_ENV``; ``env`` adds to it)."""
    started: list[ServiceProcess] = []
    prefix = f"test-quota-{uuid.uuid4().hex[:8]}"

    async def start(
        svc: Service, *, amqp_url: str | None = None, database_url: str = database_url, **env: str
    ) -> ServiceProcess:
        schema = await svc.pool.fetchval("SELECT current_schema()")
        port = free_port()
        gemini = {"GEMINI_API_KEY": gemini_stub.api_key, "GEMINI_BASE_URL": gemini_stub.base_url}
        where = {"database_url": database_url, "schema": schema, "queue": svc.queue, "files": tmp_path}
        settings = {**WORKER_ENV, **gemini, "GEMINI_QUOTA_PREFIX": prefix, **env}
        environ = process_env(bus=rabbit_bus_factory, port=port, **where, **settings)
        if amqp_url is not None:
            environ["AMQP_URL"] = amqp_url
        proc = ServiceProcess("analysis", environ, port, tmp_path / f"worker-{len(started)}.log", cwd=REPO)
        started.append(proc)
        await proc.start()
        return proc

    yield start
    for proc in started:
        proc.stop()
