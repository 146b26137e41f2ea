"""Queueing a URL import: the one path shared by ``POST /imports`` and the ``video.import_requested.v1`` command.

Either way an import is an ``import`` job (the owner sees it in the gateway's jobs) plus its ``imports`` row,
written in the caller's transaction; the worker's job runner does the rest (SSRF checks, download, probe, store)
and answers ``video.ingested.v1`` / ``video.ingest_failed.v1`` with the import's ``request_id`` as correlation id.
"""

from __future__ import annotations

import uuid

import asyncpg

from common.jobs import Job, create_job

from . import store
from .runner import PRODUCER

#: the longest URL an import takes
MAX_URL = 4096
MAX_TITLE = 500


def url_refusal(url: str) -> str | None:
    """Why ``url`` cannot even be recorded as an import (None when it can); the SSRF rules come later, in the job."""
    if not url or len(url) > MAX_URL:
        return f"url must be a non-empty http(s) URL of at most {MAX_URL} characters"
    if "\x00" in url:
        return "url contains a NUL character"
    return None


async def queue(
    conn: asyncpg.Connection,
    *,
    owner_id: uuid.UUID,
    url: str,
    title: str,
    allow_audio_only: bool = False,
    correlation_id: str = "",
    request_id: str | None = None,
) -> tuple[Job, uuid.UUID]:
    """Create a queued import job and its import row in the caller's transaction: ``(job, import_id)``."""
    import_id = uuid.uuid4()
    params = {"url": url, "import_id": str(import_id)}
    if request_id is not None:
        params["request_id"] = request_id
    job = await create_job(
        conn,
        kind="import",
        owner_id=owner_id,
        producer=PRODUCER,
        stage="queued",
        params=params,
        correlation_id=correlation_id,
    )
    await store.create_import(
        conn,
        import_id=import_id,
        job_id=job.id,
        owner_id=owner_id,
        url=url,
        title=title[:MAX_TITLE],
        allow_audio_only=allow_audio_only,
        request_id=request_id,
    )
    return job, import_id
