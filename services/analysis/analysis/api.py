"""HTTP handlers of the analysis service and its one route table (the OpenAPI document is built from it)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import msgspec
from aiohttp import web

from common import credits, db
from common.auth import owned, require_user
from common.credits import PriceList
from common.errors import CodedError, NotFound
from common.events.jobs import JobSubject
from common.http import form_field, form_parts, json_response, parse_uuid, part_chunks, read_json, read_query
from common.jobs import ErrorCode, JobStatus, create_job, get_job, request_cancel
from common.openapi import Api, Handler, Route
from common.pagination import Page, PageRequest, Paging, page_of, page_request
from common.service import POOL, STORE, settings_of
from common.storage import ObjectNotFound
from common.views import view_of

from . import store
from .config import AnalysisSettings
from .jobs import JobParams, end_batch_job
from .models import (
    THROUGHPUT_WINDOW_S,
    AnalysesQuery,
    AnalysisAccepted,
    AnalysisErrorCode,
    AnalysisOptions,
    AnalysisRecord,
    AnalysisRequest,
    AnalysisView,
    BatchAccepted,
    BatchCsvForm,
    BatchCsvQuery,
    BatchItemIn,
    BatchRecord,
    BatchRequest,
    BatchState,
    BatchView,
    Detail,
    ItemsQuery,
    ItemState,
    JobKind,
    QuotaView,
    SegmentView,
    TranscriptView,
    batch_pace,
)
from .sources import PRODUCER
from .transcript import Transcript

R = TypeVar("R")
PRICES: web.AppKey[PriceList] = web.AppKey("prices", PriceList)
PRICE_NAME = "analysis_per_video"
ANALYSES = Paging(default=20, maximum=100)
ITEMS = Paging(default=100, maximum=1000)
Code = AnalysisErrorCode


def analysis_view(a: AnalysisRecord) -> AnalysisView:
    """The view of a row."""
    return view_of(AnalysisView, a)


async def _owned(
    request: web.Request, what: str, get: Callable[[asyncpg.Connection, uuid.UUID], Awaitable[R | None]]
) -> R:
    """The caller's ``what`` named by the path's ``<what>_id``; 404 ``<what>.not_found`` for anyone else's."""
    user = await require_user(request)
    found_id = parse_uuid(request.match_info[f"{what}_id"], what=what)
    async with request.app[POOL].acquire() as conn:
        found = await get(conn, found_id)
    if found is None or getattr(found, "owner_id", None) != user.user_id:
        raise NotFound(what)
    return found


async def _own_analysis(request: web.Request) -> AnalysisRecord:
    return await _owned(request, "analysis", lambda conn, i: store.get_analysis(conn, analysis_id=i))


async def _own_batch(request: web.Request) -> BatchRecord:
    return await _owned(request, "batch", lambda conn, i: store.get_batch(conn, batch_id=i))


# -- one analysis ----------------------------------------------------------------------------------------------


async def request_analysis(request: web.Request) -> web.Response:
    """Analyse one video of yours or one URL: a paid job (``analysis_per_video``; a cached result costs nothing)."""
    user = await require_user(request)
    body = await read_json(request, AnalysisRequest)
    if (body.video_id is None) == (body.url is None):
        raise CodedError(Code.INVALID_SOURCE, "give exactly one of video_id and url", status=422)
    subject = JobSubject(kind="url", id=body.url or "")  # names what it analyses in the job list
    if body.video_id is not None:
        async with request.app[POOL].acquire() as conn:
            video = owned(await store.get_video(conn, video_id=body.video_id), user, "video")
        subject = JobSubject(kind="video", id=str(video.video_id), title=video.title)
    price = await request.app[PRICES].cost(PRICE_NAME)
    analysis_id = uuid.uuid4()
    settings = settings_of(request, AnalysisSettings)
    async with db.transaction(request.app[POOL]) as conn:
        job = await credits.request_paid_job(
            conn,
            kind=JobKind.ANALYSIS,
            owner_id=user.user_id,
            params=JobParams(price=price, analysis_id=analysis_id).to_params(),
            amount=price,
            reason=f"analysis {analysis_id}",
            producer=PRODUCER,
            ttl_s=settings.hold_ttl_s,
            subject=subject,
        )
        created = await store.create_analysis(
            conn,
            analysis_id=analysis_id,
            owner_id=user.user_id,
            job_id=job.id,
            options=body.options,
            video_id=body.video_id,
            url=body.url or "",
        )
    return json_response(AnalysisAccepted(analysis=analysis_view(created), job=job.public()), status=202)


async def list_analyses(request: web.Request) -> web.Response:
    """Your analyses (not batch items), newest first (``?video_id=``: only those of that video)."""
    query = read_query(request, AnalysesQuery)
    async with request.app[POOL].acquire() as conn:
        page, rows = await _owned_page(request, conn, AnalysisRecord, video_id=query.video_id)
    return json_response(page_of(rows, page, key=lambda a: (a.created_at, a.id), view=analysis_view))


async def _owned_page(
    request: web.Request,
    conn: asyncpg.Connection,
    kind: type[store.Owned],
    *,
    video_id: uuid.UUID | None = None,
) -> tuple[PageRequest[Any], list[store.Owned]]:
    """The page asked for of the signed-in user's single analyses (of ``video_id``, if given) or batches (``kind``),
    one row more to see a next."""
    user = await require_user(request)
    page = page_request(request, ANALYSES, tuple[datetime, uuid.UUID])
    return page, await store.list_owned(
        conn, kind, owner_id=user.user_id, limit=page.limit + 1, after=page.after, video_id=video_id
    )


async def get_analysis(request: web.Request) -> web.Response:
    """An analysis: its state, the transcript's source and language, and the result."""
    return json_response(analysis_view(await _own_analysis(request)))


async def _transcript(request: web.Request) -> tuple[AnalysisRecord, Transcript]:
    found = await _own_analysis(request)
    if not found.transcript_key:
        raise NotFound("transcript", "the analysis has no transcript yet")
    try:
        data = await request.app[STORE].read_bytes(found.transcript_key)
    except ObjectNotFound as e:
        raise NotFound("transcript", "the transcript is gone") from e
    return found, msgspec.json.decode(data, type=Transcript)


def _transcript_view(found: AnalysisRecord, t: Transcript) -> TranscriptView:
    return TranscriptView(
        analysis_id=found.id,
        source=t.source.value,
        language=t.language,
        segments=[SegmentView(start_s=s.start_s, end_s=s.end_s, text=s.text) for s in t.segments],
    )


async def get_transcript(request: web.Request) -> web.Response:
    """The transcript the analysis used, with segment times."""
    found, t = await _transcript(request)
    return json_response(_transcript_view(found, t))


async def get_transcript_file(request: web.Request) -> web.Response:
    """The transcript as plain text (``.txt``, a segment a line) or JSON (``.json``)."""
    ext = request.match_info["ext"]
    if ext not in ("txt", "json"):
        raise NotFound("transcript", "transcripts are served as .txt or .json")
    found, t = await _transcript(request)
    disposition = {"Content-Disposition": f'inline; filename="{found.id}.{ext}"'}
    if ext == "json":
        return json_response(_transcript_view(found, t), headers=disposition)
    text = "\n".join(s.text for s in t.segments) + "\n"
    return web.Response(text=text, content_type="text/plain", charset="utf-8", headers=disposition)


# -- batches ---------------------------------------------------------------------------------------------------


async def batch_view(conn: asyncpg.Connection, batch: BatchRecord) -> BatchView:
    """A batch with its counts, throughput, ETA and quota state."""
    counts = await store.batch_counts(conn, batch_id=batch.id)
    recent = await store.finished_since(conn, batch_id=batch.id, seconds=THROUGHPUT_WINDOW_S)
    now = datetime.now(UTC)
    per_min, eta = batch_pace(
        remaining=counts[ItemState.QUEUED] + counts[ItemState.RUNNING],
        ended_recently=recent,
        running_s=(now - batch.created_at).total_seconds(),
    )
    if batch.parked_until is not None and batch.parked_until > now:
        quota = QuotaView(
            state="parked",
            until=batch.parked_until,
            message=f"waiting for the per-day quota to reset at {batch.parked_until.isoformat()}",
        )
    else:
        quota = QuotaView(state="ok")
    return view_of(
        BatchView,
        batch,
        counts=counts,
        throughput_per_min=round(per_min, 2),
        eta_s=round(eta, 1) if eta is not None else None,
        quota=quota,
        credits=await store.batch_credits(conn, batch_id=batch.id),
    )


def _chunks(items: list[BatchItemIn], size: int) -> list[list[tuple[uuid.UUID | None, str]]]:
    pairs = [(i.video_id, i.url or "") for i in items]
    return [pairs[k : k + size] for k in range(0, len(pairs), size)]


async def _create_batch(
    request: web.Request, items: list[BatchItemIn], options: AnalysisOptions
) -> web.Response:
    user = await require_user(request)
    settings = settings_of(request, AnalysisSettings)
    if not items:
        raise CodedError(Code.BATCH_EMPTY, "a batch needs at least one item", status=422)
    if len(items) > settings.batch_max_items:
        raise CodedError(
            Code.BATCH_TOO_LARGE, f"a batch holds at most {settings.batch_max_items} items", status=422
        )
    bad = [n for n, i in enumerate(items) if (i.video_id is None) == (i.url is None)]
    if bad:
        raise CodedError(
            Code.INVALID_SOURCE, f"items {bad[:20]} need exactly one of video_id and url", status=422
        )
    price = await request.app[PRICES].cost(PRICE_NAME)
    batch_id = uuid.uuid4()
    async with db.transaction(request.app[POOL]) as conn:
        job = await create_job(
            conn,
            kind=JobKind.BATCH,
            owner_id=user.user_id,
            producer=PRODUCER,
            params={"batch_id": str(batch_id), "items": len(items)},
            stage="queued",
        )
        batch = await store.create_batch(
            conn, batch_id=batch_id, owner_id=user.user_id, job_id=job.id, options=options, total=len(items)
        )
        for n, chunk in enumerate(_chunks(items, settings.batch_chunk_size)):
            await _add_chunk(
                conn, batch, chunk, price=price, first=n * settings.batch_chunk_size, settings=settings
            )
        view = await batch_view(conn, batch)
    return json_response(BatchAccepted(batch=view, job=job.public()), status=202)


def _batch_subject(batch: BatchRecord) -> JobSubject:
    """What a batch's chunk jobs name in the job list: their batch."""
    return JobSubject(kind="analysis_batch", id=str(batch.id))


async def _add_chunk(
    conn: asyncpg.Connection,
    batch: BatchRecord,
    chunk: list[tuple[uuid.UUID | None, str]],
    *,
    price: int,
    first: int,
    settings: AnalysisSettings,
) -> uuid.UUID:
    """A paid chunk job holding ``price`` per item, and its items."""
    job = await credits.request_paid_job(
        conn,
        kind=JobKind.BATCH_CHUNK,
        owner_id=batch.owner_id,
        params=JobParams(price=price, batch_id=batch.id).to_params(),
        amount=price * len(chunk),
        reason=f"analysis batch {batch.id}: {len(chunk)} items",
        producer=PRODUCER,
        ttl_s=settings.hold_ttl_s,
        subject=_batch_subject(batch),
    )
    await store.add_items(conn, batch, job_id=job.id, first_position=first, items=chunk)
    return job.id


CSV_TYPES = ("text/csv", "application/csv")


async def create_batch(request: web.Request) -> web.Response:
    """Analyse up to 10,000 videos or URLs: one paid chunk job (one credit hold) per 100 items.

    The body is JSON (``{items, options}``), or a CSV of URLs or video ids (first column, a header row skipped):
    uploaded as ``multipart/form-data`` (``file``, ``detail``, ``output_language``) or sent as a ``text/csv`` body
    (the options in the query: ``?detail=&output_language=``)."""
    if request.content_type == "multipart/form-data":
        return await create_batch_csv(request)
    if request.content_type in CSV_TYPES:
        query = read_query(request, BatchCsvQuery)
        options = AnalysisOptions(detail=query.detail, output_language=query.output_language or None)
        return await _create_batch(request, parse_csv(await request.read()), options)
    body = await read_json(request, BatchRequest)
    return await _create_batch(request, body.items, body.options)


def parse_csv(data: bytes) -> list[BatchItemIn]:
    """Items from a CSV's first column: a video id or an http(s) URL a row; a header row is skipped."""
    items: list[BatchItemIn] = []
    bad: list[int] = []
    rows = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace")))
    for n, row in enumerate(rows, start=1):
        cell = row[0].strip() if row else ""
        if not cell:
            continue
        try:
            items.append(BatchItemIn(video_id=uuid.UUID(cell)))
            continue
        except ValueError:
            pass
        try:
            if len(cell) > 2048:
                raise ValueError("too long")
            items.append(BatchItemIn(url=cell))
        except ValueError:
            if n > 1 or items:
                bad.append(n)
    if bad:
        raise CodedError(Code.INVALID_CSV, f"rows {bad[:20]} hold neither a video id nor a URL", status=422)
    return items


async def create_batch_csv(request: web.Request) -> web.Response:
    """Analyse the videos or URLs of an uploaded CSV (first column), with the same options as a JSON batch (the
    multipart form of ``POST /analyses/batches``, kept at ``/analyses/batches/csv`` for the web app)."""
    data = bytearray()
    fields: dict[str, str] = {}
    async for part in form_parts(request):
        if part.name == "file":
            async for chunk in part_chunks(part):
                data += chunk
        elif part.name in ("detail", "output_language"):
            fields[part.name] = await form_field(part, limit=64)
    try:
        options = AnalysisOptions(
            detail=Detail(fields.get("detail") or Detail.STANDARD),
            output_language=fields.get("output_language") or None,
        )
    except ValueError as e:
        raise CodedError("validation.invalid", f"detail: {e}", status=422) from e
    return await _create_batch(request, parse_csv(bytes(data)), options)


async def list_batches(request: web.Request) -> web.Response:
    """Your batches, newest first."""
    async with request.app[POOL].acquire() as conn:
        page, rows = await _owned_page(request, conn, BatchRecord)
        views = {b.id: await batch_view(conn, b) for b in rows[: page.limit]}
    return json_response(page_of(rows, page, key=lambda b: (b.created_at, b.id), view=lambda b: views[b.id]))


async def get_batch(request: web.Request) -> web.Response:
    """A batch: counts by state, throughput, ETA and the model quota's state."""
    batch = await _own_batch(request)
    async with request.app[POOL].acquire() as conn:
        return json_response(await batch_view(conn, batch))


async def list_items(request: web.Request) -> web.Response:
    """A batch's items in order (``?state=failed``: only its failures): state, error code, result."""
    batch = await _own_batch(request)
    page = page_request(request, ITEMS, int)
    query = read_query(request, ItemsQuery)
    async with request.app[POOL].acquire() as conn:
        rows = await store.list_items(
            conn, batch_id=batch.id, limit=page.limit + 1, after=page.after, state=query.state
        )
    return json_response(page_of(rows, page, key=lambda a: a.position, view=analysis_view))


CSV_COLUMNS = (
    "position", "video_id", "url", "state", "source", "language", "title", "error_code", "error_message",
    "summary", "key_points", "chapters", "highlights", "keywords", "engine", "model", "prompt_version", "credits",
)  # fmt: skip


def _csv_row(a: AnalysisRecord) -> list[str]:
    r = a.result

    def js(value: object) -> str:
        return msgspec.json.encode(value).decode() if value is not None else ""

    return [
        str(a.position), str(a.video_id or ""), a.url, a.state.value, a.source or "", a.language or "", a.title,
        a.error.code if a.error else "", a.error.message if a.error else "",
        r.summary if r else "", js(r.key_points if r else None), js(r.chapters if r else None),
        js(r.highlights if r else None), js(r.keywords if r else None),
        r.engine.value if r else "", r.model if r else "", r.prompt_version if r else "", str(a.credits),
    ]  # fmt: skip


async def _export_rows(request: web.Request, batch: BatchRecord) -> AsyncIterator[list[AnalysisRecord]]:
    after: int | None = None
    while True:
        async with request.app[POOL].acquire() as conn:
            rows = await store.list_items(conn, batch_id=batch.id, limit=500, after=after)
        if not rows:
            return
        yield rows
        after = rows[-1].position


async def export_batch(request: web.Request) -> web.StreamResponse:
    """Every item of a batch as JSON lines (``?format=jsonl``, the default) or CSV (``?format=csv``), streamed."""
    batch = await _own_batch(request)
    fmt = request.query.get("format", "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise CodedError("validation.invalid", "format is jsonl or csv", status=422, field="format")
    content_type = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    response = web.StreamResponse(
        headers={
            "Content-Type": f"{content_type}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="batch-{batch.id}.{fmt}"',
        }
    )
    await response.prepare(request)
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerow(CSV_COLUMNS)
        await response.write(buf.getvalue().encode())
    async for rows in _export_rows(request, batch):
        if fmt == "jsonl":
            await response.write(b"".join(msgspec.json.encode(analysis_view(a)) + b"\n" for a in rows))
        else:
            buf = io.StringIO()
            csv.writer(buf).writerows(_csv_row(a) for a in rows)
            await response.write(buf.getvalue().encode())
    await response.write_eof()
    return response


async def _transition(request: web.Request, to: BatchState, allowed: list[BatchState]) -> BatchRecord:
    batch = await _own_batch(request)
    async with db.transaction(request.app[POOL]) as conn:
        if to == BatchState.CANCELED:
            # the order a chunk's end takes its locks (its job, then the batch): a cancel racing it cannot deadlock
            for job_id in sorted(await store.chunk_jobs(conn, batch_id=batch.id)):
                await get_job(conn, job_id, for_update=True)
        moved = await store.set_batch_state(conn, batch_id=batch.id, state=to, allowed_from=allowed)
        if moved is None:
            raise CodedError(Code.BATCH_ENDED, f"the batch is {batch.state}; it cannot be {to}", status=409)
        if to == BatchState.CANCELED:
            await _cancel_waiting_chunks(conn, moved)
    return moved


async def _cancel_waiting_chunks(conn: asyncpg.Connection, batch: BatchRecord) -> None:
    """Chunks not running yet end now (their holds settle at 0); running ones stop at their next item."""
    for job_id in sorted(await store.chunk_jobs(conn, batch_id=batch.id)):
        job = await get_job(conn, job_id, for_update=True)
        if job is not None and job.status == JobStatus.QUEUED:
            await store.end_items(
                conn,
                job_id=job_id,
                state=ItemState.CANCELED,
                code=ErrorCode.CANCELED,
                message="the batch was canceled",
            )
            await request_cancel(conn, job_id, producer=PRODUCER)
    await end_batch_job(
        conn,
        batch.job_id,
        status=JobStatus.CANCELED,
        error={"code": ErrorCode.CANCELED, "message": "canceled by the user"},
    )


async def _answer(request: web.Request, batch: BatchRecord) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        return json_response(await batch_view(conn, batch))


async def pause_batch(request: web.Request) -> web.Response:
    """Stop starting items (those running finish)."""
    return await _answer(request, await _transition(request, BatchState.PAUSED, [BatchState.RUNNING]))


async def resume_batch(request: web.Request) -> web.Response:
    """Start items again (also after a per-day quota park: the model is asked again now)."""
    return await _answer(
        request, await _transition(request, BatchState.RUNNING, [BatchState.PAUSED, BatchState.RUNNING])
    )


async def cancel_batch(request: web.Request) -> web.Response:
    """End the batch: items not started are canceled and their credits released."""
    return await _answer(
        request, await _transition(request, BatchState.CANCELED, [BatchState.RUNNING, BatchState.PAUSED])
    )


async def retry_failed(request: web.Request) -> web.Response:
    """Run the failed items again, in new chunk jobs with new credit holds."""
    batch = await _own_batch(request)
    if batch.state == BatchState.CANCELED:
        raise CodedError(Code.BATCH_ENDED, "the batch was canceled", status=409)
    price = await request.app[PRICES].cost(PRICE_NAME)
    settings = settings_of(request, AnalysisSettings)
    async with db.transaction(request.app[POOL]) as conn:
        for _old_job, ids in await store.retry_failed(conn, batch_id=batch.id):
            count = len(ids)
            new_job = await credits.request_paid_job(
                conn,
                kind=JobKind.BATCH_CHUNK,
                owner_id=batch.owner_id,
                params=JobParams(price=price, batch_id=batch.id).to_params(),
                amount=price * count,
                reason=f"analysis batch {batch.id}: retrying {count} items",
                producer=PRODUCER,
                ttl_s=settings.hold_ttl_s,
                subject=_batch_subject(batch),
            )
            await store.move_items(conn, item_ids=ids, to_job=new_job.id)
        moved = await store.set_batch_state(
            conn,
            batch_id=batch.id,
            state=BatchState.RUNNING,
            allowed_from=[BatchState.DONE, BatchState.RUNNING],
        )
    return await _answer(request, moved or batch)


_BATCH_404: dict[int, list[str]] = {404: ["batch.not_found"]}
_BATCH_409: dict[int, list[str]] = {404: ["batch.not_found"], 409: [Code.BATCH_ENDED.value]}
_TRANSCRIPT_404: dict[int, list[str]] = {404: ["analysis.not_found", "transcript.not_found"]}
_PAID: dict[int, list[str]] = {
    503: [credits.CreditCode.PRICES_UNAVAILABLE.value, credits.CreditCode.UNKNOWN_PRICE.value]
}


def _batch_creation(path: str, handler: Handler, *invalid: Code, **given: Any) -> Route:
    """A route that starts a batch (from JSON items or a CSV upload): 202 with the batch and its first job."""
    errors: dict[int, list[str]] = {422: [Code.BATCH_EMPTY, Code.BATCH_TOO_LARGE, *invalid], **_PAID}
    return Route(
        "POST", path, handler, response=BatchAccepted, status=202, errors=errors, idempotent=True, **given
    )


ROUTES = (
    _batch_creation(
        "/api/v1/analyses/batches",
        create_batch,
        Code.INVALID_SOURCE,
        Code.INVALID_CSV,
        body=BatchRequest,
        form=BatchCsvForm,
        query=BatchCsvQuery,
        description="The items as JSON, or a CSV of URLs or video ids (first column; a header row is skipped):"
        " a `multipart/form-data` upload (`file`, `detail`, `output_language`) or a `text/csv` body with the"
        " options in the query (`detail`, `output_language`; only for `text/csv`)."
        " Credits: `analysis_per_video` per item, held per chunk of 100 and captured per analysed item;"
        " cached items and items that fail cost nothing.",
    ),
    _batch_creation("/api/v1/analyses/batches/csv", create_batch_csv, Code.INVALID_CSV, form=BatchCsvForm),
    Route("GET", "/api/v1/analyses/batches", list_batches, response=Page[BatchView], paging=ANALYSES),
    Route("GET", "/api/v1/analyses/batches/{batch_id}", get_batch, response=BatchView, errors=_BATCH_404),
    Route(
        "GET",
        "/api/v1/analyses/batches/{batch_id}/items",
        list_items,
        query=ItemsQuery,
        response=Page[AnalysisView],
        paging=ITEMS,
        errors=_BATCH_404,
    ),
    Route(
        "GET",
        "/api/v1/analyses/batches/{batch_id}/export",
        export_batch,
        raw={200: "every item as JSON lines (`format=jsonl`) or CSV (`format=csv`), streamed"},
        errors={404: ["batch.not_found"], 422: ["validation.invalid"]},
    ),
    *(  # the moves of a batch's state, each answered with the batch
        Route(
            "POST",
            f"/api/v1/analyses/batches/{{batch_id}}/{move}",
            handler,
            response=BatchView,
            errors=_BATCH_409,
        )
        for move, handler in (("pause", pause_batch), ("resume", resume_batch), ("cancel", cancel_batch))
    ),
    Route(
        "POST",
        "/api/v1/analyses/batches/{batch_id}/retry-failed",
        retry_failed,
        response=BatchView,
        errors={**_BATCH_409, **_PAID},
        idempotent=True,  # paid: each retry holds credits for the items it requeues
        description="Requeue the failed items in new chunk jobs, each with a new credit hold (paid like the batch)."
        " With an `Idempotency-Key`, a repeated call answers the first answer and holds nothing more.",
    ),
    Route(
        "POST",
        "/api/v1/analyses",
        request_analysis,
        body=AnalysisRequest,
        response=AnalysisAccepted,
        status=202,
        errors={404: ["video.not_found"], 422: [Code.INVALID_SOURCE], **_PAID},
        idempotent=True,
        description="A paid job (credits: `analysis_per_video`; captured only when the video is analysed, 0 when an"
        " identical earlier analysis is returned from the cache). Follow the job at /api/v1/jobs/{id}.",
    ),
    Route(
        "GET",
        "/api/v1/analyses",
        list_analyses,
        query=AnalysesQuery,
        response=Page[AnalysisView],
        paging=ANALYSES,
    ),
    Route(
        "GET",
        "/api/v1/analyses/{analysis_id}/transcript.{ext}",
        get_transcript_file,
        raw={200: "the transcript as text (`.txt`) or JSON with segment times (`.json`)"},
        path_types={"ext": str},
        errors=_TRANSCRIPT_404,
    ),
    Route(
        "GET",
        "/api/v1/analyses/{analysis_id}/transcript",
        get_transcript,
        response=TranscriptView,
        errors=_TRANSCRIPT_404,
    ),
    Route(
        "GET",
        "/api/v1/analyses/{analysis_id}",
        get_analysis,
        response=AnalysisView,
        errors={404: ["analysis.not_found"]},
    ),
)
API = Api(
    title="Reelforge analysis",
    description="Transcripts and AI analyses (summary, key points, chapters, highlights, keywords) of videos and"
    " URLs, one at a time or in batches of up to 10,000.",
    routes=ROUTES,
)

__all__ = ["API", "PRICES"]
