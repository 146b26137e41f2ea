"""Serving another service (ARCHITECTURE §5a): ``captions.transcript_requested.v1`` → a transcript in storage.

The captions worker app in-process on a fresh schema and queue, the real RabbitMQ bus, real faster-whisper and the
filesystem store: the request is answered by ``captions.completed.v1`` (correlated by the request id) naming a
transcript JSON with segment and word times, or by ``captions.failed.v1``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from captions.transcript import Transcript
from common.events.analysis import CaptionsTranscriptRequested
from common.events.captions import CaptionsCompleted, CaptionsFailed
from common.events.ingest import VideoIngested
from common.storage import ObjectStore
from common.testing.speech import SpeechSample
from common.testing.waiting import wait_for

pytestmark = pytest.mark.xdist_group("whisper")
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
ROOT = Path(__file__).resolve().parents[4]


async def test_a_transcript_request_is_answered_with_a_transcript_in_storage(
    captions_app: Callable[..., Awaitable[Any]],
    rabbit_bus: Any,
    fs_store: ObjectStore,
    speech_sample: SpeechSample,
    tmp_path: Path,
) -> None:
    answers: list[Any] = []

    async def collect(event: Any, delivery: Any) -> None:
        answers.append(event)

    queue = f"captions-{uuid.uuid4().hex[:10]}"
    await rabbit_bus.subscribe(f"{queue}.observer", [CaptionsCompleted, CaptionsFailed], collect)
    await captions_app(
        "worker",
        bus_queue=queue,
        tmp_dir=str(tmp_path / "scratch"),
        whisper_cache_dir=str(ROOT / "var/cache/whisper"),
        whisper_beam_size=1,
        bus_retry_delays_ms=("200", "500", "1000"),
        video_wait_attempts=2,
    )
    owner, vid = uuid.uuid4(), uuid.uuid4()
    key = f"originals/{vid}/source.mp4"
    await fs_store.put(key, speech_sample.path.read_bytes())
    await rabbit_bus.publish(
        VideoIngested(
            video_id=vid,
            owner_id=owner,
            storage_key=key,
            duration_s=speech_sample.duration_s,
            audio_codec="aac",
            producer="ingest",
        )
    )
    # the request may race the video's own announcement: it is retried until captions knows the video
    await rabbit_bus.publish(
        CaptionsTranscriptRequested(
            request_id="req-1", video_id=vid, owner_id=owner, producer="analysis", correlation_id="req-1"
        )
    )
    # a request for a video nobody announced is answered with a failure, never dropped
    await rabbit_bus.publish(
        CaptionsTranscriptRequested(
            request_id="req-2",
            video_id=uuid.uuid4(),
            owner_id=owner,
            producer="analysis",
            correlation_id="req-2",
        )
    )

    def answer(request_id: str) -> Any:
        return next((a for a in answers if a.correlation_id == request_id), None)

    done = await wait_for(lambda: answer("req-1"), timeout=180, interval=0.2)
    assert isinstance(done, CaptionsCompleted) and done.video_id == vid and done.tracks == []
    transcript = msgspec.json.decode(await fs_store.read_bytes(done.transcript_key), type=Transcript)
    assert transcript.language == "en" and transcript.segments
    words = transcript.words()
    assert words and all(w.start <= w.end for w in words)
    assert "library" in " ".join(w.text.lower() for w in words)

    failed = await wait_for(lambda: answer("req-2"), timeout=60, interval=0.2)
    assert isinstance(failed, CaptionsFailed) and failed.code == "video.not_found"
