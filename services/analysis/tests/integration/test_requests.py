"""The work analysis asks other services for, through the real RabbitMQ bus: the test plays ingest and captions at
the contract boundary (it receives ``video.import_requested.v1`` / ``captions.transcript_requested.v1`` and
publishes their answers as those services do). An import that fails or a transcription that fails fails the
analysis with its code and releases its credits; a job restarted (its worker SIGKILLed) after it sent an import
waits for that import's answer instead of sending a second one."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from common.bus.rabbit import RabbitBus
from common.events.analysis import CaptionsTranscriptRequested
from common.events.base import Event, decode_as
from common.events.billing import CreditsSettleRequested
from common.events.captions import CaptionsCompleted, CaptionsFailed
from common.events.ingest import VideoImportRequested, VideoIngested, VideoIngestFailed
from common.storage.fs import FileStore
from common.testing.gemini import GeminiStub
from common.testing.subtitles import SubtitleServer
from common.testing.waiting import wait_for

from ..conftest import ENGLISH_TOPICS
from .conftest import WorkerFactory
from .service import PRICE, Service, talk_lines

pytestmark = pytest.mark.xdist_group("analysis_service")


async def _listen(bus: RabbitBus, kind: type[Any], answer: Callable[[Any], Event] | None) -> list[Any]:
    """Every ``kind`` command published, answered with ``answer(command)`` (as the service that owns it would)."""
    seen: list[Any] = []

    async def on(event: Any, delivery: Any) -> None:
        seen.append(event)
        if answer is not None:
            await bus.publish(answer(event))

    await bus.subscribe(f"plays-{kind.__name__.lower()}-{uuid.uuid4().hex[:8]}", [kind], on)
    return seen


def _refused(command: VideoImportRequested | CaptionsTranscriptRequested, code: str, message: str) -> Event:
    """Ingest's or captions' refusal of ``command``, correlated by its request id."""
    why = {
        "owner_id": command.owner_id,
        "code": code,
        "message": message,
        "correlation_id": command.request_id,
    }
    if isinstance(command, VideoImportRequested):
        return VideoIngestFailed(source_url=command.url, producer="ingest", **why)
    return CaptionsFailed(caption_job_id=uuid.uuid4(), video_id=command.video_id, producer="captions", **why)


def _ingested(svc: Service, video_id: uuid.UUID, **more: Any) -> VideoIngested:
    """Ingest's announcement of a video of the user's."""
    return VideoIngested(
        video_id=video_id,
        owner_id=svc.user,
        storage_key=f"originals/{video_id}/source.mp4",
        producer="ingest",
        **{"duration_s": 170.0, **more},
    )


async def _settle(svc: Service, job_id: str) -> CreditsSettleRequested:
    """The settle the job's end wrote for billing (it captures ``capture`` and releases the rest of the hold)."""

    async def written() -> CreditsSettleRequested | None:
        async with svc.pool.acquire() as conn:
            hold = await conn.fetchval(
                "SELECT hold_ref FROM credit_holds WHERE job_id = $1", uuid.UUID(job_id)
            )
            rows = await conn.fetch(
                "SELECT body FROM outbox WHERE routing_key = 'credits.settle_requested.v1'"
            )
        settles = [decode_as(bytes(r["body"]), CreditsSettleRequested) for r in rows]
        mine = [s for s in settles if s.hold_ref == hold]
        return mine[0] if mine else None

    found: CreditsSettleRequested = await wait_for(written, timeout=30, interval=1.0)
    return found


async def _outbox_count(svc: Service, routing_key: str) -> int:
    async with svc.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE routing_key = $1", routing_key))


async def _ask(svc: Service, body: dict[str, Any]) -> dict[str, Any]:
    status, accepted = await svc.post("/api/v1/analyses", body)
    assert status == 202, accepted
    await svc.grant_holds()
    return accepted


async def test_a_url_whose_import_fails_fails_with_the_source_code_and_releases_its_credits(
    analysis_service: Callable[..., Awaitable[Service]],
    subtitle_server: SubtitleServer,
    rabbit_bus: RabbitBus,
) -> None:
    svc = await analysis_service()

    # ingest: the page's video cannot be fetched
    message = "the video file could not be downloaded"
    refuse = functools.partial(_refused, code="source.unavailable", message=message)
    imports = await _listen(rabbit_bus, VideoImportRequested, refuse)
    url = subtitle_server.add("silent", [], formats=(), title="No subtitles")  # a page without subtitles
    accepted = await _ask(svc, {"url": url})
    failed = await svc.ended(accepted["analysis"]["id"], timeout=120)

    assert failed["state"] == "failed" and failed["error"]["code"] == "source.unavailable", failed
    assert failed["error"]["message"] == "the video file could not be downloaded" and failed["credits"] == 0
    [command] = imports
    assert command.url == url and command.owner_id == svc.user and command.title.startswith("No subtitles")
    settle = await _settle(svc, accepted["job"]["id"])
    assert settle.capture == 0  # the whole hold released


async def test_a_transcription_that_fails_fails_the_analysis_with_its_code_and_releases_its_credits(
    analysis_service: Callable[..., Awaitable[Service]], rabbit_bus: RabbitBus
) -> None:
    svc = await analysis_service()
    video_id = uuid.uuid4()
    # ingest announced the user's video (no captions yet): the analysis must ask captions for a transcript
    await rabbit_bus.publish(_ingested(svc, video_id, title="A silent film"))

    async def known() -> bool:
        async with svc.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT count(*) FROM videos WHERE video_id = $1", video_id))

    await wait_for(known, timeout=30, interval=1.0)

    # captions: nothing to transcribe
    refuse = functools.partial(
        _refused, code="media.no_audio_stream", message="the media has no audio stream"
    )
    asked = await _listen(rabbit_bus, CaptionsTranscriptRequested, refuse)
    accepted = await _ask(svc, {"video_id": str(video_id)})
    failed = await svc.ended(accepted["analysis"]["id"], timeout=120)

    assert failed["state"] == "failed" and failed["error"]["code"] == "media.no_audio_stream", failed
    assert failed["credits"] == 0
    [command] = asked
    assert command.video_id == video_id and command.owner_id == svc.user
    assert (await _settle(svc, accepted["job"]["id"])).capture == 0


async def test_a_job_restarted_after_it_sent_an_import_waits_for_that_import(
    analysis_service: Callable[..., Awaitable[Service]],
    workers: WorkerFactory,
    subtitle_server: SubtitleServer,
    gemini_stub: GeminiStub,
    rabbit_bus: RabbitBus,
    tmp_path: Path,
) -> None:
    svc = await analysis_service(workers=0)
    imports = await _listen(rabbit_bus, VideoImportRequested, None)  # ingest answers later, by hand
    transcripts = await _listen(rabbit_bus, CaptionsTranscriptRequested, None)
    url = subtitle_server.add("silent", [], formats=(), title="Only audio")
    first = await workers(svc)  # its queue is there before billing's grant is published
    accepted = await _ask(svc, {"url": url})
    analysis_id = accepted["analysis"]["id"]
    await wait_for(lambda: imports, timeout=120, interval=1.0)  # the import was sent...
    first.kill()  # ...and its worker dies (SIGKILL) before ingest answers
    await workers(svc)  # another worker takes the job over once the lease lapses, and reads the page again
    await wait_for(lambda: subtitle_server.hits["v/silent"] >= 2, timeout=120, interval=1.0)

    # ingest answers the one import; the restarted job, waiting on it, asks captions for the transcript
    video_id = uuid.uuid4()
    duration = float(talk_lines(ENGLISH_TOPICS)[-1][1])
    imported = _ingested(
        svc, video_id, duration_s=duration, source="import", source_url=url, title="Only audio"
    )
    await rabbit_bus.publish(msgspec.structs.replace(imported, correlation_id=imports[0].request_id))
    await wait_for(lambda: transcripts, timeout=120, interval=1.0)
    [asked] = transcripts
    assert asked.video_id == video_id
    key = f"captions/{video_id}/transcript.json"  # captions writes the transcript where the worker reads it
    segments = [{"start": s, "end": e, "text": t} for s, e, t in talk_lines(ENGLISH_TOPICS)]
    store = FileStore(tmp_path / "store")
    await store.put(key, msgspec.json.encode({"language": "en", "segments": segments}))
    await store.close()
    await rabbit_bus.publish(
        CaptionsCompleted(
            caption_job_id=uuid.uuid4(),
            video_id=video_id,
            owner_id=svc.user,
            transcript_key=key,
            language="en",
            producer="captions",
            correlation_id=asked.request_id,
        )
    )

    done = await svc.ended(analysis_id, timeout=120)
    assert done["state"] == "succeeded" and done["source"] == "audio" and done["credits"] == PRICE, done
    # one import command in all, sent by the first run; the second run waited for its answer
    assert await _outbox_count(svc, "video.import_requested.v1") == 1 and len(imports) == 1
    assert await _outbox_count(svc, "captions.transcript_requested.v1") == 1
    async with svc.pool.acquire() as conn:
        attempts = await conn.fetchval("SELECT attempts FROM analyses WHERE id = $1", uuid.UUID(analysis_id))
    assert attempts == 2  # it did run twice
    assert (await _settle(svc, accepted["job"]["id"])).capture == PRICE
