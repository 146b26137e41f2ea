"""``python -m streaming import-bucket --prefix courses/ --owner <uuid> [--source s3://bucket]``: a bucket → videos.

Each object under the prefix becomes one ``video.migration_requested.v1`` (ingest copies, probes and registers it,
then streaming transcodes it as usual). Requests are recorded in ``migrated_objects`` in the same transaction as
their outbox row, so a re-run — or a run interrupted half-way and started again — never requests an object twice.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TextIO

import asyncpg

from common import db, outbox
from common.bus import Bus, create_bus
from common.events.streaming import MigrationRequested
from common.logging import get_logger
from common.outbox import OutboxRelay
from common.settings import ServiceSettings
from common.storage import ObjectInfo, ObjectStore, create_store

from . import store

log = get_logger(__name__)


@dataclass
class MigrationReport:
    """What a run did."""

    source_url: str
    prefix: str
    total: int = 0
    requested: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    published: int = 0


def canonical_source_url(url: str) -> str:
    """One spelling per store, so the idempotency key is stable: ``file:///abs/path`` or ``s3://bucket[/prefix]``."""
    url = url.strip()
    if url.startswith("file://"):
        return "file://" + str(Path(url.removeprefix("file://")).expanduser().resolve())
    if url.startswith("s3://"):
        rest = url.removeprefix("s3://").strip("/")
        if not rest:
            raise ValueError("--source s3:// needs a bucket")
        return "s3://" + rest
    raise ValueError(f"unsupported source {url!r} (use s3://bucket[/prefix] or file:///path)")


def title_for(key: str) -> str:
    """A readable title from an object key: ``courses/intro_to-go.mp4`` → ``intro to go``."""
    stem = PurePosixPath(key).stem
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or stem


def _skip_reason(info: ObjectInfo) -> str | None:
    if info.key.endswith("/"):
        return "folder marker"
    if info.size == 0:
        return "empty object"
    return None


ProgressFn = Callable[[int, int, str, str], None]


async def request_migrations(
    pool: asyncpg.Pool,
    source: ObjectStore,
    *,
    source_url: str,
    prefix: str,
    owner_id: uuid.UUID,
    progress: ProgressFn | None = None,
    dry_run: bool = False,
) -> MigrationReport:
    """List ``prefix`` in ``source`` and record + outbox one migration request per object not requested before."""
    report = MigrationReport(source_url=source_url, prefix=prefix)
    objects = [o async for o in source.list(prefix)]
    report.total = len(objects)
    async with pool.acquire() as conn:
        done = await store.migrated_keys(conn, source_url=source_url, prefix=prefix)
    for n, info in enumerate(objects, start=1):
        reason = _skip_reason(info)
        if reason is not None:
            report.skipped.append(info.key)
            outcome = f"skipped ({reason})"
        elif info.key in done:
            report.already.append(info.key)
            outcome = "already requested"
        elif dry_run:
            report.requested.append(info.key)
            outcome = "would request"
        else:
            event = MigrationRequested(
                source_url=source_url,
                source_key=info.key,
                owner_id=owner_id,
                size_bytes=info.size,
                title=title_for(info.key),
                producer="streaming",
                correlation_id=f"migrate:{source_url}",
            )
            async with pool.acquire() as conn, conn.transaction():
                fresh = await store.record_migration(
                    conn,
                    source_url=source_url,
                    source_key=info.key,
                    owner_id=owner_id,
                    size_bytes=info.size,
                    event_id=event.id,
                )
                if fresh:
                    await outbox.add(conn, event)
            (report.requested if fresh else report.already).append(info.key)
            outcome = "requested" if fresh else "already requested"
        if progress is not None:
            progress(n, report.total, info.key, outcome)
    return report


def progress_printer(out: TextIO, *, width: int = 24) -> ProgressFn:
    """One line per object: ``[#####.....] 5/10 courses/a.mp4 requested``."""

    def show(n: int, total: int, key: str, outcome: str) -> None:
        filled = round(width * n / total) if total else width
        out.write(f"[{'#' * filled}{'.' * (width - filled)}] {n}/{total} {key} {outcome}\n")
        out.flush()

    return show


async def publish_outbox(pool: asyncpg.Pool, bus: Bus, *, schema: str, service: str) -> int:
    """Publish what the outbox holds now (so the command does not depend on a running streaming service)."""
    relay = OutboxRelay(pool, bus, schema=schema, service=service)
    total = 0
    while sent := await relay.publish_pending():
        total += sent
    return total


async def run_bucket_import(
    settings: ServiceSettings,
    *,
    prefix: str,
    owner_id: uuid.UUID,
    source: str | None = None,
    dry_run: bool = False,
    bus: Bus | None = None,
    out: TextIO = sys.stdout,
) -> MigrationReport:
    """The whole command: list, record, publish; progress and a summary on ``out``."""
    source_url = canonical_source_url(source or settings.storage_url)
    objects = create_store(settings.with_(storage_url=source_url))
    pool = await db.create_pool(settings.database_url, schema=settings.schema, min_size=1, max_size=2)
    try:
        out.write(f"import-bucket: listing {source_url} under {prefix!r}\n")
        report = await request_migrations(
            pool,
            objects,
            source_url=source_url,
            prefix=prefix,
            owner_id=owner_id,
            progress=progress_printer(out),
            dry_run=dry_run,
        )
        if not dry_run:
            report.published = await _publish(settings, pool, bus, out)
    finally:
        await pool.close()
        await objects.close()
    verb = "would request" if dry_run else "requested"
    out.write(
        f"import-bucket: {report.total} objects under {prefix!r}: {len(report.requested)} {verb},"
        f" {len(report.already)} already requested, {len(report.skipped)} skipped\n"
    )
    return report


async def _publish(settings: ServiceSettings, pool: asyncpg.Pool, bus: Bus | None, out: TextIO) -> int:
    own = bus is None
    the_bus = bus or create_bus(settings)
    try:
        if own:
            await the_bus.start()
        return await publish_outbox(pool, the_bus, schema=settings.schema, service=settings.service)
    except Exception as exc:
        # the rows stay in the outbox; the streaming service's relay publishes them when it runs
        log.warning("import_bucket.publish_deferred", error=repr(exc))
        out.write(
            f"import-bucket: could not publish now ({exc!r}); the streaming service will publish the requests\n"
        )
        return 0
    finally:
        if own:
            await the_bus.close()


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``python -m streaming import-bucket``."""
    parser.add_argument(
        "--prefix",
        required=True,
        help="import every object under this key prefix of the source (e.g. courses/)",
    )
    parser.add_argument(
        "--owner", required=True, type=uuid.UUID, help="the user (uuid) who will own the imported videos"
    )
    parser.add_argument(
        "--source", help="the source store: s3://bucket[/prefix] or file:///path (default: STORAGE_URL)"
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be requested, change nothing")


async def import_bucket_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    """``import-bucket``: request every object under ``--prefix`` once (the schema must be migrated)."""
    try:
        await run_bucket_import(
            settings, prefix=args.prefix, owner_id=args.owner, source=args.source, dry_run=args.dry_run
        )
    except ValueError as e:
        sys.stderr.write(f"import-bucket: {e}\n")
        return 2
    return 0
