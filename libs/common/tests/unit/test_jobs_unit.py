"""Job model rules that need no database."""

from __future__ import annotations

import uuid

from common.events.jobs import JobProgress
from common.jobs import TERMINAL, Job, JobFailure, JobStatus


def test_job_snapshot_event_carries_error_and_progress() -> None:
    job = Job(
        id=uuid.uuid4(),
        kind="import",
        owner_id=uuid.uuid4(),
        status="failed",
        progress=41.237,
        error={"code": "source.unavailable", "message": "gone"},
        seq=3,
    )
    ev = job.to_event(producer="ingest")
    assert isinstance(ev, JobProgress)
    assert (
        ev.percent == 41.24 and ev.error is not None and ev.error.code == "source.unavailable" and ev.seq == 3
    )
    assert job.public()["error"] == {"code": "source.unavailable", "message": "gone"}


def test_terminal_statuses() -> None:
    assert {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED} == set(TERMINAL)
    assert Job(id=uuid.uuid4(), kind="k", owner_id=uuid.uuid4(), status="canceled").terminal


def test_failure_has_code_and_message() -> None:
    f = JobFailure("media.unreadable", "not a video")
    assert (f.code, f.message) == ("media.unreadable", "not a video") and "media.unreadable" in str(f)
