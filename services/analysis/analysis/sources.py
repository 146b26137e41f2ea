"""Where an analysis's transcript comes from, cheapest first; each step recorded on the analysis and counted.

1. ``caption_track``: a transcript captions already made of the video (``captions.completed.v1`` named its key);
2. ``platform_subtitles``: for a URL, the platform's own subtitles through yt-dlp, without the video;
3. ``audio``: a URL is imported by ingest (``video.import_requested.v1``), then a video is transcribed by captions
   (``captions.transcript_requested.v1``), each command correlated by its request id (ARCHITECTURE §5a).

A command is recorded in ``requests`` in the transaction that puts it in the outbox, once per request id (derived
from the analysis id), so a retried job waits for the answer to the command it already sent instead of sending
another. The answer's handler (``handlers.py``) writes the row; the job reads it.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg
import msgspec
from prometheus_client import Counter

from common import db, outbox
from common.addresses import AddressPolicy, ForbiddenAddress, UnresolvableHost, split_http_url
from common.events.analysis import CaptionsTranscriptRequested
from common.events.ingest import VideoImportRequested
from common.jobrunner import JobContext
from common.jobs import ErrorCode, JobFailure
from common.storage import ObjectNotFound, ObjectStore

from . import store
from .config import AnalysisSettings
from .models import AnalysisErrorCode, AnalysisRecord, OutboundRequest, RequestState
from .quota import HostBackoff
from .subtitles import PageInfo, SubtitleError, fetch_subtitles, warm_up
from .transcript import Segment, Transcript, TranscriptSource

PRODUCER = "analysis"
SOURCE_ATTEMPTS = Counter(
    "analysis_transcript_source_attempts_total",
    "Transcript sources tried, by source and outcome (served, none, failed)",
    ["source", "outcome"],
)
for _source in TranscriptSource:  # every series is scraped from the start, at 0
    for _outcome in ("served", "none", "failed"):
        SOURCE_ATTEMPTS.labels(_source.value, _outcome)


class _CaptionsSegment(msgspec.Struct):
    start: float
    end: float
    text: str


class _CaptionsTranscript(msgspec.Struct):
    """The part of captions' transcript JSON (``transcript_key``) an analysis reads."""

    language: str
    segments: list[_CaptionsSegment] = []


@dataclass(frozen=True)
class Found:
    """A transcript and what is known of its video."""

    transcript: Transcript
    source_id: str  # the content cache's source part: the same video whoever asks
    title: str = ""
    duration_s: float | None = None


def read_captions_transcript(data: bytes, *, source: TranscriptSource) -> Transcript:
    """Captions' transcript JSON as an analysis transcript."""
    doc = msgspec.json.decode(data, type=_CaptionsTranscript)
    segments = [
        Segment(start_s=s.start, end_s=s.end, text=s.text.strip()) for s in doc.segments if s.text.strip()
    ]
    return Transcript(segments=segments, language=doc.language, source=source)


class TranscriptFinder:
    """Finds an analysis's transcript by the cheapest source that works."""

    def __init__(
        self,
        *,
        settings: AnalysisSettings,
        pool: asyncpg.Pool,
        objects: ObjectStore,
        hosts: HostBackoff | None = None,
    ) -> None:
        self.settings, self.pool, self.objects = settings, pool, objects
        self.hosts = hosts  # a platform's 429 backs every worker off it (without Redis: each item on its own)
        self.policy = AddressPolicy.of(allow_private=settings.import_allow_private)
        # yt-dlp blocks: its own threads, so pages of many items are read at once (mostly waiting on the network)
        self.threads = ThreadPoolExecutor(settings.subtitle_threads, thread_name_prefix="subtitles")
        # the first page's one-off CPU (every extractor imported and its URL pattern compiled, about 2 s) is spent
        # now, in the background, not by the first item that reads a page
        self.threads.submit(
            warm_up, proxy=settings.subtitle_proxy, socket_timeout=settings.subtitle_socket_timeout_s
        )

    def close(self) -> None:
        """Let the page-reading threads go."""
        self.threads.shutdown(wait=False, cancel_futures=True)

    async def find(self, ctx: JobContext, item: AnalysisRecord) -> Found:
        """The transcript of ``item`` (a video of the owner's, or a URL)."""
        if item.video_id is not None:
            return await self._of_video(ctx, item, item.video_id)
        return await self._of_url(ctx, item)

    # -- a video of the owner's ---------------------------------------------------------------------------------

    async def _of_video(self, ctx: JobContext, item: AnalysisRecord, video_id: uuid.UUID) -> Found:
        async with self.pool.acquire() as conn:
            video = await store.get_video(conn, video_id=video_id)
        if video is None or video.owner_id != item.owner_id:
            raise JobFailure(AnalysisErrorCode.VIDEO_NOT_FOUND, "no such video of yours")
        source_id = f"video:{video_id}"
        if video.transcript_key:
            try:
                data = await self.objects.read_bytes(video.transcript_key)
            except ObjectNotFound:
                SOURCE_ATTEMPTS.labels(TranscriptSource.CAPTION_TRACK, "failed").inc()
            else:
                SOURCE_ATTEMPTS.labels(TranscriptSource.CAPTION_TRACK, "served").inc()
                transcript = read_captions_transcript(data, source=TranscriptSource.CAPTION_TRACK)
                return Found(transcript, source_id, video.title, video.duration_s or None)
        else:
            SOURCE_ATTEMPTS.labels(TranscriptSource.CAPTION_TRACK, "none").inc()
        transcript = await self._transcribe(ctx, item, video_id)
        return Found(transcript, source_id, video.title, video.duration_s or None)

    async def _transcribe(self, ctx: JobContext, item: AnalysisRecord, video_id: uuid.UUID) -> Transcript:
        request_id = f"analysis:{item.id}:transcript:{video_id}"
        answer = await self._ask(
            ctx,
            item,
            request_id,
            "transcript",
            CaptionsTranscriptRequested(
                request_id=request_id,
                video_id=video_id,
                owner_id=item.owner_id,
                producer=PRODUCER,
                correlation_id=request_id,
            ),
            stage="transcribing the audio",
        )
        if answer.state != RequestState.DONE or not answer.transcript_key:
            SOURCE_ATTEMPTS.labels(TranscriptSource.AUDIO, "failed").inc()
            raise JobFailure(
                answer.code or AnalysisErrorCode.TRANSCRIPT_UNAVAILABLE,
                answer.message or "the audio could not be transcribed",
            )
        SOURCE_ATTEMPTS.labels(TranscriptSource.AUDIO, "served").inc()
        data = await self.objects.read_bytes(answer.transcript_key)
        return read_captions_transcript(data, source=TranscriptSource.AUDIO)

    # -- a URL ----------------------------------------------------------------------------------------------------

    async def _check_url(self, url: str) -> None:
        try:
            _, host, port = split_http_url(url)
            await self.policy.resolve(host, port)
        except ForbiddenAddress as exc:
            raise JobFailure(ErrorCode.SOURCE_FORBIDDEN, str(exc)) from exc
        except (UnresolvableHost, ValueError) as exc:
            raise JobFailure(
                AnalysisErrorCode.SOURCE_UNAVAILABLE, f"the URL cannot be reached: {exc}"
            ) from exc

    async def _page(self, ctx: JobContext, url: str) -> PageInfo:
        s = self.settings
        delays: Sequence[float] = [float(d) for d in s.subtitle_backoff_s]
        _, host, port = split_http_url(url)
        attempt = 0
        while True:
            if self.hosts is not None:
                await self.hosts.wait(host, port)
            try:
                fetch = functools.partial(
                    fetch_subtitles,
                    url,
                    languages=s.subtitle_languages,
                    proxy=s.subtitle_proxy,
                    socket_timeout=s.subtitle_socket_timeout_s,
                )
                return await asyncio.get_running_loop().run_in_executor(self.threads, fetch)
            except SubtitleError as exc:
                SOURCE_ATTEMPTS.labels(TranscriptSource.PLATFORM_SUBTITLES, "failed").inc()
                if exc.code != AnalysisErrorCode.SOURCE_RATE_LIMITED or attempt >= len(delays):
                    raise JobFailure(exc.code, exc.message) from exc
                # the host is held before anything else awaits: items admitted meanwhile wait too
                if self.hosts is not None:
                    await self.hosts.hold(host, port, delays[attempt])  # waited for at the loop's top
                await ctx.checkpoint(5, "the platform is rate limiting: backing off", force=True)
                if self.hosts is None:
                    await asyncio.sleep(delays[attempt])
                attempt += 1

    async def _of_url(self, ctx: JobContext, item: AnalysisRecord) -> Found:
        await self._check_url(item.url)
        page = await self._page(ctx, item.url)
        if page.transcript is not None:
            SOURCE_ATTEMPTS.labels(TranscriptSource.PLATFORM_SUBTITLES, "served").inc()
            return Found(page.transcript, page.source_id, page.title, page.duration_s)
        SOURCE_ATTEMPTS.labels(TranscriptSource.PLATFORM_SUBTITLES, "none").inc()
        request_id = f"analysis:{item.id}:import"
        answer = await self._ask(
            ctx,
            item,
            request_id,
            "import",
            VideoImportRequested(
                request_id=request_id,
                owner_id=item.owner_id,
                url=item.url,
                title=page.title,
                producer=PRODUCER,
                correlation_id=request_id,
            ),
            stage="importing the video",
        )
        if answer.state != RequestState.DONE or answer.video_id is None:
            SOURCE_ATTEMPTS.labels(TranscriptSource.AUDIO, "failed").inc()
            raise JobFailure(
                answer.code or AnalysisErrorCode.SOURCE_UNAVAILABLE,
                answer.message or "the video could not be imported",
            )
        transcript = await self._transcribe(ctx, item, answer.video_id)
        return Found(transcript, page.source_id, page.title, page.duration_s)

    # -- asking another service -----------------------------------------------------------------------------------

    async def _ask(
        self,
        ctx: JobContext,
        item: AnalysisRecord,
        request_id: str,
        kind: str,
        command: CaptionsTranscriptRequested | VideoImportRequested,
        *,
        stage: str,
    ) -> OutboundRequest:
        """Send ``command`` once (a retried job finds it sent) and wait for its answer."""
        async with db.transaction(self.pool) as conn:
            if await store.add_request(conn, request_id=request_id, analysis_id=item.id, kind=kind):
                await outbox.add(conn, command)
        await ctx.checkpoint(10, stage, force=True)
        deadline = time.monotonic() + self.settings.request_wait_s
        while True:
            async with self.pool.acquire() as conn:
                answer = await store.get_request(conn, request_id=request_id)
            if answer is not None and answer.state != RequestState.PENDING:
                return answer
            if time.monotonic() > deadline:
                raise JobFailure(ErrorCode.TIMEOUT, f"no answer to the {kind} request in time")
            await ctx.checkpoint(10, stage)
            await asyncio.sleep(self.settings.request_poll_s)
