"""HTTP handlers of the render service and its one route table (the OpenAPI document is built from it)."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from common import credits, db, outbox, signing
from common.auth import owned, require_user
from common.credits import PRICES
from common.errors import CodedError, NotFound
from common.events.ingest import SearchResult, VideoImportRequested
from common.events.jobs import JobSubject
from common.http import json_response, parse_uuid, read_json, read_query
from common.openapi import Api, Route
from common.pagination import Page, Paging, page_of, page_request
from common.service import HTTP_CLIENT, POOL, STORE, settings_of
from common.storage import ObjectNotFound
from common.views import view_of

from . import ranking, store
from .config import RenderSettings
from .jobs import PRODUCER, JobParams
from .layout import layout_for
from .models import (
    MAX_ITEMS,
    MIN_ITEMS,
    DownloadQuery,
    ImportRef,
    ImportStatus,
    Item,
    ItemView,
    JobKind,
    LayoutView,
    OrderBy,
    Project,
    ProjectCreate,
    ProjectPatch,
    ProjectSummary,
    ProjectView,
    Render,
    RenderCode,
    RenderList,
    RenderView,
)

PRICE = "render_per_output_second"
PROJECTS = Paging(default=20, maximum=100)
ProjectKey = tuple[datetime, uuid.UUID]
_SORT = {
    OrderBy.VIEWS: "views",
    OrderBy.LIKES: "likes",
    OrderBy.COMMENTS: "comments",
    OrderBy.MANUAL: "relevance",
}


# -- ingest's HTTP API (with the caller's own token: ingest decides what the caller may see) -----------------


async def _ingest(request: web.Request, path: str) -> tuple[int, Any]:
    settings = settings_of(request, RenderSettings)
    url = settings.ingest_url.rstrip("/") + path
    try:
        async with request.app[HTTP_CLIENT].get(
            url,
            headers={"Authorization": request.headers.get("Authorization", "")},
            timeout=aiohttp.ClientTimeout(total=settings.ingest_timeout_s),
        ) as resp:
            body = await resp.json() if resp.status == 200 else None
            return resp.status, body
    except (aiohttp.ClientError, TimeoutError, ValueError) as e:
        raise CodedError(
            RenderCode.INGEST_UNAVAILABLE,
            "the video library cannot be read now; try again shortly",
            status=503,
        ) from e


async def _search_items(request: web.Request, body: ProjectCreate) -> list[Item]:
    status, search = await _ingest(
        request, f"/api/v1/searches/{body.source.search_id}?sort={_SORT[body.order_by]}"
    )
    if status == 404:
        raise NotFound("search")
    if status != 200:
        raise CodedError(
            RenderCode.INGEST_UNAVAILABLE, f"ingest answered {status} for the search", status=503
        )
    if search["status"] != "succeeded":
        raise CodedError(
            RenderCode.SEARCH_NOT_READY,
            f"the search is {search['status']}; rank it once it has succeeded",
            status=409,
        )
    # ingest's SearchResultView: the stored result, its ``platform_id`` shown as ``id``; a null keeps the default
    hits = [
        msgspec.convert(
            {"platform_id" if k == "id" else k: v for k, v in r.items() if v is not None},
            SearchResult,
            strict=False,
        )
        for r in search.get("results", [])
    ]
    top = ranking.top_hits(hits, n=body.n, order_by=body.order_by)
    if len(top) < body.n:
        raise CodedError(
            RenderCode.TOO_FEW_RESULTS, f"the search found {len(top)} videos; a Top {body.n} needs {body.n}"
        )
    counted_at = datetime.fromisoformat(search["created_at"])
    return [
        ranking.item_from_hit(h, rank=k + 1, clip_seconds=body.clip_seconds, counted_at=counted_at)
        for k, h in enumerate(top)
    ]


async def _video_item(request: web.Request, video_id: uuid.UUID, *, rank: int, clip_seconds: float) -> Item:
    status, video = await _ingest(request, f"/api/v1/videos/{video_id}")
    if status == 404:
        raise NotFound("video", f"no video {video_id} in your library")
    if status != 200:
        raise CodedError(RenderCode.INGEST_UNAVAILABLE, f"ingest answered {status} for a video", status=503)
    imported = video.get("source") == "import"
    return ranking.item_from_video(
        video_id,
        rank=rank,
        clip_seconds=clip_seconds,
        title=video.get("title") or "",
        duration_s=video.get("duration_s"),
        source_url=(video.get("source_url") or "") if imported else None,
    )


async def _request_imports(conn: Any, *, owner_id: uuid.UUID, items: list[Item]) -> None:
    """Ask ingest to import every item that has no video yet (the answers carry each request id)."""
    for item in items:
        if item.video_id is None and item.request_id and item.source_url:
            await store.add_import(conn, request_id=item.request_id, owner_id=owner_id, url=item.source_url)
            await outbox.add(
                conn,
                VideoImportRequested(
                    request_id=item.request_id,
                    owner_id=owner_id,
                    url=item.source_url,
                    title=item.title,
                    producer=PRODUCER,
                    correlation_id=item.request_id,
                ),
            )


# -- views -------------------------------------------------------------------------------------------------------


def _item_view(item: Item, imports: dict[str, ImportRef]) -> ItemView:
    ref = imports.get(item.request_id or "")
    if item.video_id is not None or ref is None:
        return view_of(ItemView, item, status=ImportStatus.READY if item.video_id else ImportStatus.PENDING)
    return view_of(ItemView, item, video_id=ref.video_id, status=ref.status, error=ref.error)


async def _project_view(conn: Any, project: Project) -> ProjectView:
    imports = await store.get_imports(conn, request_ids=[i.request_id for i in project.items if i.request_id])
    return view_of(
        ProjectView,
        project,
        order=project.play_order,
        items=[_item_view(i, imports) for i in project.items],
        estimated_seconds=ranking.estimated_seconds(project),
        warnings=ranking.warnings(project),
        layout=LayoutView.of(layout_for(project.target)),
    )


def _download_sig(secret: str, render_id: uuid.UUID, expires: int) -> str:
    return signing.mac(secret, expires, f"render:{render_id}")


def _render_view(request: web.Request, r: Render) -> RenderView:
    url, expires_at = None, None
    if r.status == "succeeded" and r.output_key and r.output_deleted_at is None:
        settings = settings_of(request, RenderSettings)
        expires = int(time.time()) + settings.download_ttl_s
        sig = _download_sig(settings.download_secret, r.id, expires)
        url = f"/api/v1/renders/{r.id}/download?expires={expires}&sig={sig}"
        expires_at = datetime.fromtimestamp(expires, UTC)
    return view_of(
        RenderView,
        r,
        progress=round(r.progress, 2),
        estimated_seconds=r.estimated_s,
        download_url=url,
        download_expires_at=expires_at,
    )


async def _own_project(request: web.Request, *, conn: Any, for_update: bool = False) -> Project:
    user = await require_user(request)
    project_id = parse_uuid(request.match_info["project_id"], what="project")
    return owned(await store.get_project(conn, project_id=project_id, for_update=for_update), user, "project")


# -- handlers ----------------------------------------------------------------------------------------------------


async def create_project(request: web.Request) -> web.Response:
    """Create a ranking project from a stored search (top N by a count), URLs, or the caller's videos."""
    user = await require_user(request)
    body = await read_json(request, ProjectCreate)
    kind = body.source.kind
    if not kind:
        raise CodedError(RenderCode.INVALID_SOURCE, "give exactly one of search_id, urls or video_ids")
    if kind == "search":
        items = await _search_items(request, body)
        source: dict[str, Any] = {"search_id": str(body.source.search_id)}
    elif kind == "urls":
        urls = body.source.urls or []
        _check_count(len(urls))
        items = [
            ranking.item_from_url(u, rank=k + 1, clip_seconds=body.clip_seconds) for k, u in enumerate(urls)
        ]
        source = {"urls": urls}
    else:
        ids = body.source.video_ids or []
        _check_count(len(ids))
        items = [
            await _video_item(request, v, rank=k + 1, clip_seconds=body.clip_seconds)
            for k, v in enumerate(ids)
        ]
        source = {"video_ids": [str(v) for v in ids]}
    now = datetime.now(UTC)
    # the request's own settings by name (title, language, order_by, clip_seconds, target, options)
    project = view_of(
        Project,
        body,
        id=uuid.uuid4(),
        owner_id=user.user_id,
        n=len(items),
        play_order=body.order,
        source=source,
        version=1,
        created_at=now,
        updated_at=now,
        items=items,
    )
    async with db.transaction(request.app[POOL]) as conn:
        if kind == "video_ids":
            # the owner's videos that ingest imported are credited as ingest found them (render's read model)
            found = await store.get_videos(conn, video_ids=[i.video_id for i in items if i.video_id])
            by_item = {i.id: found[i.video_id] for i in items if i.video_id in found}
            project = msgspec.structs.replace(project, items=ranking.credited(items, by_item))
        await store.insert_project(conn, project=project)
        await _request_imports(conn, owner_id=user.user_id, items=project.items)
        view = await _project_view(conn, project)
    return json_response(view, status=201, headers={"Location": f"/api/v1/rankings/{project.id}"})


def _check_count(count: int) -> None:
    if not MIN_ITEMS <= count <= MAX_ITEMS:
        raise CodedError(
            RenderCode.INVALID_SOURCE, f"a ranking has {MIN_ITEMS} to {MAX_ITEMS} clips, not {count}"
        )


async def get_project(request: web.Request) -> web.Response:
    """A project, its items (rank 1 first) with their import state, its estimated length and warnings."""
    async with request.app[POOL].acquire() as conn:
        project = await _own_project(request, conn=conn)
        view = await _project_view(conn, project)
    return json_response(view)


async def list_projects(request: web.Request) -> web.Response:
    """The caller's projects, newest first."""
    user = await require_user(request)
    page = page_request(request, PROJECTS, ProjectKey)
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_projects(conn, owner_id=user.user_id, limit=page.limit + 1, after=page.after)
    return json_response(
        page_of(
            rows,
            page,
            key=lambda p: (p.created_at, p.id),
            view=lambda p: ProjectSummary(
                id=p.id,
                title=p.title,
                n=p.n,
                target=p.target,
                created_at=p.created_at,
                updated_at=p.updated_at,
            ),
        )
    )


async def _replacements(request: web.Request, patch: ProjectPatch, clip_seconds: float) -> dict[int, Item]:
    out: dict[int, Item] = {}
    for index, edit in enumerate(patch.items or []):
        if edit.id is not None:
            continue
        if edit.url is not None and edit.video_id is None:
            out[index] = ranking.item_from_url(edit.url, rank=index + 1, clip_seconds=clip_seconds)
        elif edit.video_id is not None and edit.url is None:
            out[index] = await _video_item(request, edit.video_id, rank=index + 1, clip_seconds=clip_seconds)
    return out


async def patch_project(request: web.Request) -> web.Response:
    """Edit a project: settings, and the whole item list (reorder, replace, trim, titles and captions)."""
    body = await read_json(request, ProjectPatch)
    async with request.app[POOL].acquire() as conn:
        current = await _own_project(request, conn=conn)
    replacements = await _replacements(
        request, body, current.clip_seconds
    )  # ingest is asked outside the lock
    async with db.transaction(request.app[POOL]) as conn:
        project = await _own_project(request, conn=conn, for_update=True)
        if body.base_version is not None and body.base_version != project.version:
            raise CodedError(
                RenderCode.VERSION_CONFLICT,
                f"the project is at version {project.version}, not {body.base_version}: reload and edit again",
                status=409,
            )
        items = None
        if body.items is not None:
            video_ids = [i.video_id for i in [*project.items, *replacements.values()] if i.video_id]
            videos = await store.get_videos(conn, video_ids=video_ids)
            try:
                items = ranking.apply_items(
                    project,
                    body.items,
                    replacements=replacements,
                    durations={v: ref.duration_s for v, ref in videos.items()},
                )
            except ranking.EditError as e:
                raise CodedError(RenderCode.INVALID_EDIT, str(e), problems=e.problems) from e
        updated = await store.update_project(
            conn, project=ranking.patched(project, body, items), items_changed=items is not None
        )
        await _request_imports(conn, owner_id=project.owner_id, items=list(replacements.values()))
        view = await _project_view(conn, updated)
    return json_response(view)


async def request_render(request: web.Request) -> web.Response:
    """Render the project as it is now: a paid job priced per second of its estimated output."""
    async with request.app[POOL].acquire() as conn:
        project = await _own_project(request, conn=conn)
    seconds = ranking.estimated_seconds(project)
    price = await request.app[PRICES].price(PRICE)
    amount = price * max(1, math.ceil(seconds))
    render_id = uuid.uuid4()
    async with db.transaction(request.app[POOL]) as conn:
        await credits.request_paid_job(
            conn,
            kind=JobKind.RENDER,
            owner_id=project.owner_id,
            params=JobParams(render_id=render_id, project_id=project.id, price_per_second=price).to_params(),
            amount=amount,
            reason=f"render of ranking {project.id} ({seconds:.1f} s)",
            producer=PRODUCER,
            ttl_s=settings_of(request, RenderSettings).hold_ttl_s,
            job_id=render_id,
            subject=JobSubject(kind="ranking", id=str(project.id), title=project.title),
        )
        await store.insert_render(
            conn,
            render_id=render_id,
            project_id=project.id,
            owner_id=project.owner_id,
            spec=msgspec.to_builtins(project),
            estimated_s=seconds,
            credits=amount,
        )
        render = await store.get_render(conn, render_id=render_id)
    assert render is not None
    return json_response(
        _render_view(request, render), status=202, headers={"Location": f"/api/v1/renders/{render_id}"}
    )


async def list_renders(request: web.Request) -> web.Response:
    """A project's renders, newest first."""
    async with request.app[POOL].acquire() as conn:
        project = await _own_project(request, conn=conn)
        renders = await store.list_renders(conn, project_id=project.id)
    return json_response(RenderList(items=[_render_view(request, r) for r in renders]))


async def get_render(request: web.Request) -> web.Response:
    """A render's status, progress, error, and once done its video and a signed download URL."""
    user = await require_user(request)
    render_id = parse_uuid(request.match_info["render_id"], what="render")
    async with request.app[POOL].acquire() as conn:
        render = owned(await store.get_render(conn, render_id=render_id), user, "render")
    return json_response(_render_view(request, render))


async def download_render(request: web.Request) -> web.StreamResponse:
    """The rendered MP4, for whoever holds a fresh signed link (no token: links work in a plain <a href>)."""
    render_id = parse_uuid(request.match_info["render_id"], what="render")
    q = read_query(request, DownloadQuery)
    settings = settings_of(request, RenderSettings)
    fresh = q.expires >= time.time()
    if not fresh or not signing.matches_any(
        _download_sig(settings.download_secret, render_id, q.expires), [q.sig]
    ):
        raise CodedError(RenderCode.LINK_INVALID, "the download link is invalid or has expired", status=403)
    async with request.app[POOL].acquire() as conn:
        render = await store.get_render(conn, render_id=render_id)
    if render is None or not render.output_key:
        raise NotFound("render")
    if render.output_deleted_at is not None:
        raise CodedError(
            RenderCode.OUTPUT_DELETED,
            "the render's file was deleted with the video it became",
            status=410,
        )
    objects = request.app[STORE]
    presigned = await objects.presigned_url(
        render.output_key, expires_in=max(1, q.expires - int(time.time()))
    )
    if presigned is not None:
        raise web.HTTPFound(presigned)
    try:
        info = await objects.stat(render.output_key)
        if info is None:
            raise ObjectNotFound(render.output_key)
        resp = web.StreamResponse(
            headers={
                "Content-Type": "video/mp4",
                "Content-Length": str(info.size),
                "Content-Disposition": f'attachment; filename="render-{render_id}.mp4"',
                "Cache-Control": "private, no-store",
            }
        )
        await resp.prepare(request)
        async for chunk in objects.get(render.output_key):
            await resp.write(chunk)
    except ObjectNotFound as e:
        raise NotFound("render", "the render's file is gone") from e
    await resp.write_eof()
    return resp


_PROJECT = "/api/v1/rankings/{project_id}"
_RENDER = "/api/v1/renders/{render_id}"
_SOURCE_ERRORS = [RenderCode.INVALID_SOURCE, RenderCode.TOO_FEW_RESULTS]
_NO_PROJECT = {404: [RenderCode.PROJECT_NOT_FOUND]}
_NO_RENDER = {404: [RenderCode.RENDER_NOT_FOUND]}
ROUTES = (
    Route(
        "POST",
        "/api/v1/rankings",
        create_project,
        body=ProjectCreate,
        response=ProjectView,
        status=201,
        errors={
            404: [RenderCode.SEARCH_NOT_FOUND, RenderCode.VIDEO_NOT_FOUND],
            409: [RenderCode.SEARCH_NOT_READY],
            422: _SOURCE_ERRORS,
            503: [RenderCode.INGEST_UNAVAILABLE],
        },
        description=(
            "`source`: exactly one of `{search_id}` (a search of yours that succeeded: its top `n` results by"
            " `order_by`, with a snapshot of their counts and `counted_at`), `{urls}` or `{video_ids}` (3 to 10)."
            " Clips that are not in your library yet are imported by ingest (you see the import jobs)."
        ),
    ),
    Route("GET", "/api/v1/rankings", list_projects, response=Page[ProjectSummary], paging=PROJECTS),
    Route("GET", _PROJECT, get_project, response=ProjectView, errors=_NO_PROJECT),
    Route(
        "PATCH",
        _PROJECT,
        patch_project,
        body=ProjectPatch,
        response=ProjectView,
        errors={
            404: [RenderCode.PROJECT_NOT_FOUND, RenderCode.VIDEO_NOT_FOUND],
            409: [RenderCode.VERSION_CONFLICT],
            422: [RenderCode.INVALID_EDIT],
            503: [RenderCode.INGEST_UNAVAILABLE],
        },
        description=(
            "`items` is the whole new list, rank 1 first: each entry is an existing item (`id`) or a replacement"
            " (`url` or `video_id`), with optional `title`, `caption`, `start_s`, `end_s` (a window of 1 to 60 s)."
        ),
    ),
    Route(
        "POST",
        _PROJECT + "/renders",
        request_render,
        response=RenderView,
        status=202,
        errors={**_NO_PROJECT, 503: [credits.CreditCode.PRICES_UNAVAILABLE]},
        idempotent=True,
        description=(
            "A paid job (credits: render_per_output_second per started second of the estimated output; the"
            " actual seconds are captured on success, nothing on failure or cancel). Follow it here or at"
            " /api/v1/jobs/{id} (the same id); cancel it with POST /api/v1/jobs/{id}/cancel."
        ),
    ),
    Route("GET", _PROJECT + "/renders", list_renders, response=RenderList, errors=_NO_PROJECT),
    Route("GET", _RENDER, get_render, response=RenderView, errors=_NO_RENDER),
    Route(
        "GET",
        _RENDER + "/download",
        download_render,
        query=DownloadQuery,
        public=True,
        raw={200: "the rendered MP4", 302: "a redirect to the object store's own short-lived URL"},
        errors={403: [RenderCode.LINK_INVALID], **_NO_RENDER, 410: [RenderCode.OUTPUT_DELETED]},
    ),
)
API = Api(
    title="Reelforge render",
    description='"Top N" ranking shorts: projects from a search, URLs or your videos, rendered to 1080x1920 MP4.',
    routes=ROUTES,
)

__all__ = ["API"]
