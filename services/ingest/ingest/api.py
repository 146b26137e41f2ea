"""HTTP handlers: parse, authorize, call the domain, answer. Everything is owner-scoped (others get 404)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

from common import outbox
from common.auth import require_user
from common.events.ingest import VideoDeleted
from common.http import Problem, json_response, parse_uuid, read_json
from common.jobs import JobFailure, create_job
from common.logging import get_logger
from common.service import POOL, SETTINGS, STORE
from common.storage import StorageError

from . import netguard, pipeline, search, store
from .config import IngestSettings
from .openapi import spec
from .runner import PRODUCER, limits_of, policy_of
from .tmpfiles import workspace

log = get_logger(__name__)

routes = web.RouteTableDef()

_WRITE_CHUNK = 1024 * 1024
#: room for the multipart boundaries and the small form fields around the file
_MULTIPART_SLACK = 64 * 1024
_FIELD_LIMIT = 4096
_MAX_URL = 4096


def _settings(request: web.Request) -> IngestSettings:
    s = request.app[SETTINGS]
    assert isinstance(s, IngestSettings)
    return s


def _problem(failure: JobFailure) -> Problem:
    status = 413 if failure.code == "upload.too_large" else 422
    return Problem(status, failure.code, failure.message)


# -- videos -------------------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


async def _save_part(part: BodyPartReader, path: Path, limit: int) -> int:
    """Stream a file part to ``path``, ~1 MiB per write, stopping as soon as ``limit`` is passed."""
    loop = asyncio.get_running_loop()
    f = await loop.run_in_executor(None, path.open, "wb")
    size = 0
    try:
        pending = bytearray()
        while chunk := await part.read_chunk(256 * 1024):
            size += len(chunk)
            if size > limit:
                raise _TooLarge()
            pending += chunk
            if len(pending) >= _WRITE_CHUNK:
                await loop.run_in_executor(None, f.write, bytes(pending))
                pending.clear()
        if pending:
            await loop.run_in_executor(None, f.write, bytes(pending))
    finally:
        f.close()
    return size


async def _field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(_FIELD_LIMIT):
        data += chunk
        if len(data) > _FIELD_LIMIT:
            raise Problem(422, "validation.invalid", f"form field {part.name!r} is too long")
    return data.decode("utf-8", errors="replace").strip()


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@routes.post("/api/v1/videos")
async def upload_video(request: web.Request) -> web.Response:
    """Upload a video (multipart, field ``file``): streamed to a temp file, probed, stored as the original."""
    principal = await require_user(request)
    settings = _settings(request)
    limit = settings.max_upload_bytes
    too_large = Problem(413, "upload.too_large", f"uploads are limited to {limit} bytes")
    if request.content_length is not None and request.content_length > limit + _MULTIPART_SLACK:
        raise too_large
    if not request.content_type.startswith("multipart/"):
        raise Problem(415, "request.unsupported_media_type", "send multipart/form-data with a 'file' field")
    settings.ingest_tmp.mkdir(parents=True, exist_ok=True)
    store_ = request.app[STORE]
    video_id = uuid.uuid4()
    async with workspace(settings.ingest_tmp, "upload") as ws:
        local = ws / "upload"
        filename: str | None = None
        got_file = False
        title = ""
        allow_audio_only = False
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Problem(422, "validation.invalid", "nested multipart bodies are not accepted")
            if part.name == "file" and not got_file:
                filename = part.filename
                try:
                    await _save_part(part, local, limit)
                except _TooLarge:
                    raise too_large from None
                got_file = True
            elif part.name == "title":
                title = (await _field(part))[:500]
            elif part.name == "allow_audio_only":
                allow_audio_only = _truthy(await _field(part))
            else:
                await part.release()
        if not got_file:
            raise Problem(422, "validation.invalid", "the form has no 'file' field")
        try:
            video = await pipeline.store_original(
                store_,
                local,
                video_id=video_id,
                owner_id=principal.user_id,
                limits=limits_of(settings),
                source="upload",
                title=title or pipeline.title_from_filename(filename),
                allow_audio_only=allow_audio_only,
            )
        except JobFailure as failure:
            raise _problem(failure) from None
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            inserted = await store.insert_video(conn, video=video)
            assert inserted is not None
            await outbox.add(conn, inserted.ingested(correlation_id=request.headers.get("X-Request-ID", "")))
    except BaseException:
        await pipeline.discard_original(store_, video_id)
        raise
    log.info("ingest.uploaded", video_id=str(video_id), size=inserted.size_bytes)
    return json_response(inserted.public(), status=201, headers={"Location": f"/api/v1/videos/{video_id}"})


def _cursor(video_created: datetime, video_id: uuid.UUID) -> str:
    raw = f"{video_created.isoformat()}|{video_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(value: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        ts, _, vid = raw.partition("|")
        return datetime.fromisoformat(ts), uuid.UUID(vid)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(422, "validation.invalid", "malformed cursor") from exc


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise Problem(422, "validation.invalid", f"{name} must be an integer") from exc
    if not lo <= value <= hi:
        raise Problem(422, "validation.invalid", f"{name} must be between {lo} and {hi}")
    return value


@routes.get("/api/v1/videos")
async def list_videos(request: web.Request) -> web.Response:
    """The caller's videos, newest first, with a keyset cursor."""
    principal = await require_user(request)
    limit = _int_param(request, "limit", 50, 1, 100)
    before = _parse_cursor(request.query["cursor"]) if request.query.get("cursor") else None
    async with request.app[POOL].acquire() as conn:
        videos = await store.list_videos(conn, owner_id=principal.user_id, limit=limit + 1, before=before)
    more = len(videos) > limit
    videos = videos[:limit]
    last = videos[-1] if videos else None
    next_cursor = _cursor(last.created_at, last.id) if more and last and last.created_at else None
    return json_response({"items": [v.public() for v in videos], "next_cursor": next_cursor})


@routes.get("/api/v1/videos/{video_id}")
async def get_video(request: web.Request) -> web.Response:
    """One of the caller's videos."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    async with request.app[POOL].acquire() as conn:
        video = await store.get_video(conn, video_id=video_id, owner_id=principal.user_id)
    if video is None:
        raise Problem(404, "video.not_found", "no such video")
    return json_response(video.public())


@routes.delete("/api/v1/videos/{video_id}")
async def delete_video(request: web.Request) -> web.Response:
    """Delete one of the caller's videos and its original; announces ``video.deleted.v1``."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        video = await store.delete_video(conn, video_id=video_id, owner_id=principal.user_id)
        if video is None:
            raise Problem(404, "video.not_found", "no such video")
        await outbox.add(conn, VideoDeleted(video_id=video_id, owner_id=principal.user_id, producer=PRODUCER))
    # the worker deletes it too on video.deleted.v1 (retried), so a failure here only delays the removal
    with contextlib.suppress(StorageError, OSError):
        await request.app[STORE].delete_prefix(pipeline.original_prefix(video_id))
    return web.Response(status=204)


# -- imports ------------------------------------------------------------------------------------------------


class ImportRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /imports."""

    url: str
    title: str = ""
    allow_audio_only: bool = False


def _import_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "job_id": str(row["job_id"]),
        "url": row["url"],
        "title": row["title"],
        "status": row["status"],
        "progress": round(float(row["progress"]), 2),
        "stage": row["stage"],
        "error": row["error"],
        "video_id": str(row["video_id"]) if row["video_id"] else None,
        "allow_audio_only": row["allow_audio_only"],
        "created_at": row["created_at"].isoformat(),
    }


@routes.post("/api/v1/imports")
async def create_import(request: web.Request) -> web.Response:
    """Import a video from a URL (yt-dlp, in the worker): 202 with the job; the same running import is reused."""
    principal = await require_user(request)
    body = await read_json(request, ImportRequest)
    url = body.url.strip()
    if not url or len(url) > _MAX_URL:
        raise Problem(422, "validation.invalid", "url must be a non-empty http(s) URL")
    try:
        # fast refusal here; the guard proxy checks again on every connection the download makes
        await netguard.check_url(url, policy_of(_settings(request)))
    except JobFailure as failure:
        raise _problem(failure) from None
    owner = principal.user_id
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await store.lock_import_key(conn, owner_id=owner, url=url)
        existing = await store.active_import(conn, owner_id=owner, url=url)
        if existing is not None:
            return json_response(
                {"job_id": str(existing["job_id"]), "import_id": str(existing["id"]), "deduplicated": True},
                status=200,
            )
        import_id = uuid.uuid4()
        job = await create_job(
            conn,
            kind="import",
            owner_id=owner,
            producer=PRODUCER,
            stage="queued",
            params={"url": url, "import_id": str(import_id)},
            correlation_id=request.headers.get("X-Request-ID", ""),
        )
        await store.create_import(
            conn,
            import_id=import_id,
            job_id=job.id,
            owner_id=owner,
            url=url,
            title=body.title[:500],
            allow_audio_only=body.allow_audio_only,
        )
    return json_response(
        {"job_id": str(job.id), "import_id": str(import_id), "deduplicated": False},
        status=202,
        headers={"Location": f"/api/v1/imports/{import_id}"},
    )


@routes.get("/api/v1/imports/{import_id}")
async def get_import(request: web.Request) -> web.Response:
    """One of the caller's imports with its job state and, when done, its video."""
    principal = await require_user(request)
    import_id = parse_uuid(request.match_info["import_id"], what="import")
    async with request.app[POOL].acquire() as conn:
        row = await store.get_import(conn, import_id=import_id, owner_id=principal.user_id)
    if row is None:
        raise Problem(404, "import.not_found", "no such import")
    return json_response(_import_view(row))


# -- searches -----------------------------------------------------------------------------------------------


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /searches."""

    platform: str
    query: str
    limit: int = 20


@routes.post("/api/v1/searches")
async def create_search(request: web.Request) -> web.Response:
    """Search a platform with yt-dlp (no download), in the worker: 202 with the job."""
    principal = await require_user(request)
    body = await read_json(request, SearchRequest)
    if body.platform not in search.PLATFORMS:
        raise Problem(422, "validation.invalid", f"platform must be one of {', '.join(search.PLATFORMS)}")
    query = body.query.strip()
    if not query or len(query) > 200:
        raise Problem(422, "validation.invalid", "query must be 1 to 200 characters")
    if not 1 <= body.limit <= search.MAX_LIMIT:
        raise Problem(422, "validation.invalid", f"limit must be between 1 and {search.MAX_LIMIT}")
    try:
        target = search.target_for(body.platform, query, body.limit)
    except JobFailure as failure:
        raise _problem(failure) from None
    search_id = uuid.uuid4()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        job = await create_job(
            conn,
            kind="search",
            owner_id=principal.user_id,
            producer=PRODUCER,
            stage="queued",
            params={
                "platform": body.platform,
                "query": query,
                "limit": body.limit,
                "search_id": str(search_id),
            },
            correlation_id=request.headers.get("X-Request-ID", ""),
        )
        await store.create_search(
            conn,
            search_id=search_id,
            job_id=job.id,
            owner_id=principal.user_id,
            platform=body.platform,
            query=query,
            max_results=body.limit,
            target=target,
        )
    return json_response(
        {"job_id": str(job.id), "search_id": str(search_id)},
        status=202,
        headers={"Location": f"/api/v1/searches/{search_id}"},
    )


@routes.get("/api/v1/searches/{search_id}")
async def get_search(request: web.Request) -> web.Response:
    """A search with its results, sorted by ``views``, ``likes``, ``comments``, ``recent`` or ``relevance``."""
    principal = await require_user(request)
    search_id = parse_uuid(request.match_info["search_id"], what="search")
    sort = request.query.get("sort", "relevance")
    if sort not in store.SORTS:
        raise Problem(422, "validation.invalid", f"sort must be one of {', '.join(store.SORTS)}")
    async with request.app[POOL].acquire() as conn:
        row = await store.get_search(conn, search_id=search_id, owner_id=principal.user_id)
        if row is None:
            raise Problem(404, "search.not_found", "no such search")
        results = await store.search_results(conn, search_id=search_id, sort=sort)
    return json_response(
        {
            "id": str(row["id"]),
            "job_id": str(row["job_id"]),
            "platform": row["platform"],
            "query": row["query"],
            "limit": row["max_results"],
            "status": row["status"],
            "progress": round(float(row["progress"]), 2),
            "error": row["error"],
            "sort": sort,
            "created_at": row["created_at"].isoformat(),
            "results": [r.public() for r in results],
        }
    )


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the ingest API."""
    return json_response(spec())
