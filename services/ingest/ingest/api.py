"""HTTP handlers: parse, authorize, call the domain, answer. Everything is owner-scoped (others get 404)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from pathlib import Path

from aiohttp import BodyPartReader, web

from common import outbox
from common.auth import require_user
from common.errors import CommonCode, NotFound
from common.events.ingest import VideoDeleted
from common.http import (
    Problem,
    form_field,
    form_parts,
    json_response,
    parse_uuid,
    part_chunks,
    read_json,
    read_query,
    reject_nul,
)
from common.jobs import JobStatus
from common.logging import get_logger
from common.openapi import Api, Route
from common.pagination import Page, Paging, page_of, page_request
from common.service import POOL, STORE, settings_of
from common.storage import StorageError

from . import imports, netguard, pipeline, search, store
from .config import IngestSettings
from .models import (
    ImportAccepted,
    ImportRequest,
    ImportView,
    IngestCode,
    SearchAccepted,
    SearchQuery,
    SearchRequest,
    SearchResultView,
    SearchView,
    UploadForm,
    VideoPatch,
    VideosQuery,
    VideoView,
    job_error,
)
from .originals import Originals
from .runner import PRODUCER, policy_of
from .tmpfiles import workspace

log = get_logger(__name__)

_WRITE_CHUNK = 1024 * 1024
#: room for the multipart boundaries and the small form fields around the file
_MULTIPART_SLACK = 64 * 1024
VIDEO_PAGING = Paging(default=50, maximum=100)
#: the keyset position of a page of videos: the last one's (created_at, id)
VideoKey = tuple[datetime, uuid.UUID]


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
        async for chunk in part_chunks(part):
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


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


async def upload_video(request: web.Request) -> web.Response:
    """Upload a video (streamed to a temp file, probed before it is accepted, stored as the original)."""
    principal = await require_user(request)
    settings = settings_of(request, IngestSettings)
    limit = settings.max_upload_bytes
    too_large = Problem(413, IngestCode.UPLOAD_TOO_LARGE, f"uploads are limited to {limit} bytes")
    if request.content_length is not None and request.content_length > limit + _MULTIPART_SLACK:
        raise too_large
    if not request.content_type.startswith("multipart/"):
        raise Problem(415, "request.unsupported_media_type", "send multipart/form-data with a 'file' field")
    settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    originals = Originals.of(settings, pool=request.app[POOL], objects=request.app[STORE])
    video_id = uuid.uuid4()
    async with workspace(settings.scratch_dir, "upload") as ws:
        local = ws / "upload"
        filename: str | None = None
        got_file = False
        title = ""
        allow_audio_only = False
        async for part in form_parts(request):
            if part.name == "file" and not got_file:
                filename = part.filename
                try:
                    await _save_part(part, local, limit)
                except _TooLarge:
                    raise too_large from None
                got_file = True
            elif part.name == "title":
                title = (await form_field(part))[:500]
            elif part.name == "allow_audio_only":
                allow_audio_only = _truthy(await form_field(part))
            else:
                async for _ in part_chunks(part):
                    pass
        if not got_file:
            raise Problem(422, "validation.invalid", "the form has no 'file' field")
        if filename is not None:
            reject_nul(filename, where="the file name")
        video = await originals.keep(
            local,
            video_id=video_id,
            owner_id=principal.user_id,
            source="upload",
            title=title or pipeline.title_from_filename(filename),
            allow_audio_only=allow_audio_only,
        )
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            inserted = await store.insert_video(conn, video=video)
            assert inserted is not None
            await outbox.add(conn, inserted.ingested(correlation_id=request.headers.get("X-Request-ID", "")))
    except BaseException:
        await originals.discard(video_id)  # this request's own id: nobody else can be storing under it
        raise
    log.info("ingest.uploaded", video_id=str(video_id), size=inserted.size_bytes)
    return json_response(
        VideoView.of(inserted), status=201, headers={"Location": f"/api/v1/videos/{video_id}"}
    )


async def list_videos(request: web.Request) -> web.Response:
    """The caller's videos, newest first (only those whose title contains q, when it is given)."""
    principal = await require_user(request)
    q = reject_nul(read_query(request, VideosQuery).q, where="q").strip()
    page = page_request(request, VIDEO_PAGING, VideoKey)
    async with request.app[POOL].acquire() as conn:
        videos = await store.list_videos(
            conn, owner_id=principal.user_id, limit=page.limit + 1, before=page.after, title_contains=q
        )
    return json_response(page_of(videos, page, key=lambda v: (v.created_at, v.id), view=VideoView.of))


async def get_video(request: web.Request) -> web.Response:
    """One of the caller's videos."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    async with request.app[POOL].acquire() as conn:
        video = await store.get_video(conn, video_id=video_id, owner_id=principal.user_id)
    if video is None:
        raise NotFound("video")
    return json_response(VideoView.of(video))


async def update_video(request: web.Request) -> web.Response:
    """Rename one of the caller's videos and/or change its description."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    body = await read_json(request, VideoPatch)
    title = body.title.strip() if body.title is not None else None
    if title == "":
        raise Problem(422, CommonCode.VALIDATION, "title must not be blank", field="title")
    if title is None and body.description is None:
        raise Problem(422, CommonCode.VALIDATION, "give a title or a description to change")
    async with request.app[POOL].acquire() as conn:
        video = await store.update_video(
            conn,
            video_id=video_id,
            owner_id=principal.user_id,
            title=title,
            description=body.description.strip() if body.description is not None else None,
        )
    if video is None:
        raise NotFound("video")
    log.info("ingest.video_updated", video_id=str(video_id))
    return json_response(VideoView.of(video))


async def delete_video(request: web.Request) -> web.Response:
    """Delete one of the caller's videos and its original (announces ``video.deleted.v1``)."""
    principal = await require_user(request)
    video_id = parse_uuid(request.match_info["video_id"], what="video")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        video = await store.delete_video(conn, video_id=video_id, owner_id=principal.user_id)
        if video is None:
            raise NotFound("video")
        await outbox.add(conn, VideoDeleted(video_id=video_id, owner_id=principal.user_id, producer=PRODUCER))
    # the worker deletes it too on video.deleted.v1 (retried), so a failure here only delays the removal
    with contextlib.suppress(StorageError, OSError):
        await request.app[STORE].delete_prefix(pipeline.original_prefix(video_id))
    return web.Response(status=204)


# -- imports ------------------------------------------------------------------------------------------------


async def create_import(request: web.Request) -> web.Response:
    """Import a video from an http(s) URL with yt-dlp (a job of kind import; the same running import is reused)."""
    principal = await require_user(request)
    body = await read_json(request, ImportRequest)
    url = body.url.strip()
    if imports.url_refusal(url) is not None:
        raise Problem(422, "validation.invalid", "url must be a non-empty http(s) URL")
    # fast refusal here; the guard proxy checks again on every connection the download makes
    await netguard.check_url(url, policy_of(settings_of(request, IngestSettings)))
    owner = principal.user_id
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await store.lock_import_key(conn, owner_id=owner, url=url)
        existing = await store.active_import(conn, owner_id=owner, url=url)
        if existing is not None:
            return json_response(
                ImportAccepted(job_id=existing["job_id"], import_id=existing["id"], deduplicated=True)
            )
        job, import_id = await imports.queue(
            conn,
            owner_id=owner,
            url=url,
            title=body.title,
            allow_audio_only=body.allow_audio_only,
            correlation_id=request.headers.get("X-Request-ID", ""),
        )
    return json_response(
        ImportAccepted(job_id=job.id, import_id=import_id, deduplicated=False),
        status=202,
        headers={"Location": f"/api/v1/imports/{import_id}"},
    )


async def get_import(request: web.Request) -> web.Response:
    """One of the caller's imports with its job state and, when done, its video."""
    principal = await require_user(request)
    import_id = parse_uuid(request.match_info["import_id"], what="import")
    async with request.app[POOL].acquire() as conn:
        row = await store.IMPORTS.get(conn, row_id=import_id, owner_id=principal.user_id)
    if row is None:
        raise NotFound("import")
    return json_response(ImportView.of(row))


# -- searches -----------------------------------------------------------------------------------------------


async def create_search(request: web.Request) -> web.Response:
    """Search YouTube (keywords) or TikTok (#tag or @user) with yt-dlp, without downloading (a job)."""
    principal = await require_user(request)
    body = await read_json(request, SearchRequest)
    query = body.query.strip()
    if not query:
        raise Problem(422, "validation.invalid", "query must be 1 to 200 characters")
    target = search.target_for(body.platform, query, body.limit)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        job, search_id = await store.create_search(
            conn,
            owner_id=principal.user_id,
            platform=body.platform,
            query=query,
            max_results=body.limit,
            target=target,
            producer=PRODUCER,
            correlation_id=request.headers.get("X-Request-ID", ""),
        )
    return json_response(
        SearchAccepted(job_id=job.id, search_id=search_id),
        status=202,
        headers={"Location": f"/api/v1/searches/{search_id}"},
    )


async def get_search(request: web.Request) -> web.Response:
    """A search with its results, sorted by ``views``, ``likes``, ``comments``, ``recent`` or ``relevance``."""
    principal = await require_user(request)
    search_id = parse_uuid(request.match_info["search_id"], what="search")
    sort = read_query(request, SearchQuery).sort
    async with request.app[POOL].acquire() as conn:
        row = await store.SEARCHES.get(conn, row_id=search_id, owner_id=principal.user_id)
        if row is None:
            raise NotFound("search")
        results = await store.search_results(conn, search_id=search_id, sort=sort)
    return json_response(
        SearchView(
            id=row["id"],
            job_id=row["job_id"],
            platform=row["platform"],
            query=row["query"],
            limit=row["max_results"],
            status=JobStatus(row["status"]),
            progress=round(float(row["progress"]), 2),
            error=job_error(row["error"]),
            sort=sort,
            created_at=row["created_at"],
            results=[SearchResultView.of(r) for r in results],
        )
    )


_VIDEO = "/api/v1/videos/{video_id}"
_IMPORT = "/api/v1/imports/{import_id}"
_SEARCH = "/api/v1/searches/{search_id}"
_NO_VIDEO = {404: [IngestCode.VIDEO_NOT_FOUND]}
_NO_IMPORT = {404: [IngestCode.IMPORT_NOT_FOUND]}
_NO_SEARCH = {404: [IngestCode.SEARCH_NOT_FOUND]}
ROUTES = (
    Route(
        "GET",
        "/api/v1/videos",
        list_videos,
        query=VideosQuery,
        response=Page[VideoView],
        paging=VIDEO_PAGING,
        errors={400: [CommonCode.INVALID_CHARACTERS]},
    ),
    Route(
        "POST",
        "/api/v1/videos",
        upload_video,
        form=UploadForm,
        response=VideoView,
        status=201,
        errors={
            413: [IngestCode.UPLOAD_TOO_LARGE],
            422: ["media.unreadable", "media.unsupported_codec", "media.too_long"],
        },
        idempotent=True,
    ),
    Route("GET", _VIDEO, get_video, response=VideoView, errors=_NO_VIDEO),
    Route(
        "PATCH",
        _VIDEO,
        update_video,
        body=VideoPatch,
        response=VideoView,
        description="Rename a video (`title`, 1 to 500 characters, not blank) and/or describe it (`description`, up"
        " to 5000); a field left out or null is unchanged.",
        errors=_NO_VIDEO,
    ),
    Route("DELETE", _VIDEO, delete_video, status=204, errors=_NO_VIDEO),
    Route(
        "POST",
        "/api/v1/imports",
        create_import,
        body=ImportRequest,
        response=ImportAccepted,
        status=202,
        responses={200: (ImportAccepted, "the same URL is already being imported: that job")},
        errors={422: ["source.unsupported", "source.forbidden_address", "source.unavailable"]},
        idempotent=True,
    ),
    Route("GET", _IMPORT, get_import, response=ImportView, errors=_NO_IMPORT),
    Route(
        "POST",
        "/api/v1/searches",
        create_search,
        body=SearchRequest,
        response=SearchAccepted,
        status=202,
        errors={422: [IngestCode.SEARCH_UNSUPPORTED_QUERY]},
    ),
    Route("GET", _SEARCH, get_search, query=SearchQuery, response=SearchView, errors=_NO_SEARCH),
)
API = Api(
    title="Reelforge ingest",
    description="Uploads, URL imports and platform searches; the video catalogue.",
    routes=ROUTES,
)
