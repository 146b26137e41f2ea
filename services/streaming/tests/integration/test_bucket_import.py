"""``python -m streaming import-bucket --prefix ...``: every object under the prefix is requested once, across runs,
from the filesystem store and from S3 (moto); the requests reach RabbitMQ."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from common.bus.rabbit import RabbitBus
from common.events.base import Event, decode_as
from common.events.streaming import MigrationRequested
from common.storage import ObjectStore
from common.storage.fs import FileStore
from common.storage.s3 import S3Store
from common.testing.bus import RabbitBusFactory
from common.testing.waiting import wait_for
from streaming.bucket_import import canonical_source_url, request_migrations, run_bucket_import
from streaming.config import StreamingSettings

REPO_ROOT = Path(__file__).resolve().parents[4]
COURSE = {
    "courses/go/01-intro.mp4": b"v" * 1000,
    "courses/go/02_setup.mov": b"w" * 2000,
    "courses/rust/01.mkv": b"x" * 300,
    "courses/rust/": b"",  # an S3 "folder" (skipped on the fs store, which cannot hold it)
    "courses/empty.mp4": b"",
    "other/elsewhere.mp4": b"y" * 10,
}


async def _seed(store: ObjectStore) -> None:
    for key, data in COURSE.items():
        if key.endswith("/"):
            if isinstance(store, S3Store):
                s3 = await store.client()
                await s3.put_object(Bucket=store.bucket, Key=key, Body=b"")
            continue
        await store.put(key, data)


async def _outbox(pool: asyncpg.Pool) -> list[MigrationRequested]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT routing_key, body FROM outbox ORDER BY seq")
    assert {r["routing_key"] for r in rows} <= {"video.migration_requested.v1"}
    return [decode_as(bytes(r["body"]), MigrationRequested) for r in rows]


def _source_url(store: ObjectStore) -> str:
    if isinstance(store, S3Store):
        return f"s3://{store.bucket}"
    assert isinstance(store, FileStore)
    return f"file://{store.root}"


async def _all_received(listener: RabbitBus, got: list[MigrationRequested]) -> list[MigrationRequested]:
    """Everything published before now: a marker sent after it arrives after it (one queue keeps order)."""
    marker = MigrationRequested(
        source_url="marker", source_key="marker", owner_id=uuid.uuid4(), producer="test"
    )
    await listener.publish(marker)
    await wait_for(lambda: any(e.id == marker.id for e in got), timeout=30)
    return [e for e in got if e.id != marker.id]


async def test_each_object_is_requested_once_across_runs(
    store: ObjectStore, streaming_pool: asyncpg.Pool
) -> None:
    await _seed(store)
    owner = uuid.uuid4()
    source_url = _source_url(store)
    progress: list[tuple[int, int, str, str]] = []
    first = await request_migrations(
        streaming_pool,
        store,
        source_url=source_url,
        prefix="courses/",
        owner_id=owner,
        progress=lambda *a: progress.append(a),
    )
    assert sorted(first.requested) == [
        "courses/go/01-intro.mp4",
        "courses/go/02_setup.mov",
        "courses/rust/01.mkv",
    ]
    assert "courses/empty.mp4" in first.skipped
    assert progress[-1][:2] == (first.total, first.total)  # N/M progress reached M

    events = await _outbox(streaming_pool)
    assert sorted(e.source_key for e in events) == sorted(first.requested)
    by_key = {e.source_key: e for e in events}
    intro = by_key["courses/go/01-intro.mp4"]
    assert intro.source_url == source_url and intro.owner_id == owner
    assert intro.size_bytes == 1000 and intro.title == "01 intro"

    second = await request_migrations(
        streaming_pool, store, source_url=source_url, prefix="courses/", owner_id=owner
    )
    assert second.requested == [] and sorted(second.already) == sorted(first.requested)
    assert len(await _outbox(streaming_pool)) == 3  # nothing new published

    # a new object under the prefix is picked up by the next run, and only it
    await store.put("courses/go/03-more.mp4", b"z" * 50)
    third = await request_migrations(
        streaming_pool, store, source_url=source_url, prefix="courses/", owner_id=owner
    )
    assert third.requested == ["courses/go/03-more.mp4"]


async def _collect(rabbit_bus: RabbitBus) -> list[MigrationRequested]:
    got: list[MigrationRequested] = []

    async def handler(event: Event, _: Any) -> None:
        assert isinstance(event, MigrationRequested)
        got.append(event)

    await rabbit_bus.subscribe(f"ingest-{uuid.uuid4().hex[:8]}", [MigrationRequested], handler)
    return got


async def test_the_command_publishes_requests_from_s3_and_a_rerun_publishes_nothing(
    s3_store: S3Store,
    moto_server: str,
    streaming_settings: StreamingSettings,
    streaming_pool: asyncpg.Pool,
    rabbit_bus_factory: RabbitBusFactory,
) -> None:
    await _seed(s3_store)
    listener = await rabbit_bus_factory()
    got = await _collect(listener)
    settings = streaming_settings.with_(
        bus_exchange=rabbit_bus_factory.exchange,
        bus_dlx=rabbit_bus_factory.dlx,
        storage_url="file:///nonexistent-configured-store",
        s3_endpoint_url=moto_server,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    owner = uuid.uuid4()
    out = io.StringIO()
    report = await run_bucket_import(
        settings, prefix="courses/", owner_id=owner, source=f"s3://{s3_store.bucket}/", out=out
    )
    assert report.published == 3 and len(report.requested) == 3
    await wait_for(lambda: len(got) == 3, timeout=30)
    assert {e.source_url for e in got} == {f"s3://{s3_store.bucket}"}
    text = out.getvalue()
    assert f"{report.total}/{report.total}" in text and "3 requested" in text

    out = io.StringIO()
    again = await run_bucket_import(
        settings, prefix="courses/", owner_id=owner, source=f"s3://{s3_store.bucket}", out=out
    )
    assert (
        again.requested == []
        and again.published == 0
        and "0 requested, 3 already requested" in out.getvalue()
    )
    assert len(await _all_received(listener, got)) == 3


async def test_the_cli_imports_a_filesystem_prefix_once(
    fs_store: FileStore,
    streaming_settings: StreamingSettings,
    rabbit_bus_factory: RabbitBusFactory,
) -> None:
    await _seed(fs_store)
    listener = await rabbit_bus_factory()
    got = await _collect(listener)
    owner = uuid.uuid4()
    env = {
        **os.environ,
        "DATABASE_URL": streaming_settings.database_url,
        "DB_SCHEMA": streaming_settings.schema,
        "BUS_EXCHANGE": rabbit_bus_factory.exchange,
        "BUS_DLX": rabbit_bus_factory.dlx,
        "STORAGE_URL": f"file://{fs_store.root}",
        "LOG_FORMAT": "console",
    }
    argv = [sys.executable, "-m", "streaming", "import-bucket", "--prefix", "courses/", "--owner", str(owner)]
    for run in (1, 2):
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, stderr.decode()
        text = stdout.decode()
        if run == 1:
            assert (
                "] 4/4 courses/rust/01.mkv requested" in text and "3 requested, 0 already requested" in text
            )
            await wait_for(lambda: len(got) == 3, timeout=30)
        else:
            assert "0 requested, 3 already requested" in text
    requests = await _all_received(listener, got)
    assert len(requests) == 3
    assert {e.source_url for e in requests} == {canonical_source_url(f"file://{fs_store.root}")}
    assert all(e.owner_id == owner for e in requests)


async def _run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streaming",
        *args,
        env={**os.environ, "LOG_FORMAT": "console"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


async def test_import_bucket_needs_a_prefix_and_an_owner_and_migrate_takes_neither() -> None:
    code, err = await _run("import-bucket", "--owner", str(uuid.uuid4()))
    assert code == 2 and "--prefix" in err
    code, err = await _run("import-bucket", "--prefix", "courses/")
    assert code == 2 and "--owner" in err
    code, err = await _run("migrate", "--prefix", "courses/")
    assert code == 2 and "unrecognized arguments" in err
