"""Events: tagged msgspec structs that round-trip, route by type, and evolve only additively."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from common import events
from common.events.base import Event, all_event_types, decode, decode_as, encode, json_schemas
from common.events.ingest import VideoIngested
from common.events.jobs import JobProgress

SNAPSHOT = Path(__file__).with_name("event_schemas.snapshot.json")


def test_round_trip_keeps_every_field() -> None:
    e = VideoIngested(
        video_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        storage_key="originals/x/source.mp4",
        duration_s=12.5,
        width=1920,
        height=1080,
        producer="ingest",
        correlation_id="req-1",
    )
    body = encode(e)
    assert json.loads(body)["type"] == "video.ingested.v1"
    back = decode(body)
    assert back == e and isinstance(back, VideoIngested) and back.type == "video.ingested.v1"


def test_decode_restricted_to_expected_types_rejects_others() -> None:
    e = JobProgress(job_id=uuid.uuid4(), owner_id=uuid.uuid4(), kind="import", status="running")
    with pytest.raises(msgspec.ValidationError):
        decode_as(encode(e), VideoIngested)


def test_unknown_fields_from_a_newer_producer_are_ignored() -> None:
    doc = json.loads(
        encode(JobProgress(job_id=uuid.uuid4(), owner_id=uuid.uuid4(), kind="k", status="queued"))
    )
    doc["added_in_a_later_version"] = 42
    assert isinstance(decode(json.dumps(doc).encode()), JobProgress)


def test_events_are_frozen() -> None:
    e = JobProgress(job_id=uuid.uuid4(), owner_id=uuid.uuid4(), kind="k", status="queued")
    with pytest.raises(AttributeError):
        e.status = "running"  # type: ignore[misc]


def test_every_event_is_versioned_and_past_tense_or_a_request() -> None:
    for tag in all_event_types():
        name, version = tag.rsplit(".", 1)
        assert version.startswith("v") and version[1:].isdigit(), tag
        assert "." in name, tag
    assert events.__all__


def _props(schema: dict[str, Any], name: str) -> tuple[dict[str, Any], set[str]]:
    defs = schema.get("$defs", {})
    body = defs.get(name) or schema
    return body.get("properties", {}), set(body.get("required", []))


def test_event_schemas_only_change_additively() -> None:
    """Fails when a field is removed, retyped, or added without a default. New events are fine.

    After an additive change, refresh the snapshot with ``UPDATE_EVENT_SNAPSHOT=1 make test``.
    """
    current = json_schemas()
    if not SNAPSHOT.exists() or os.environ.get("UPDATE_EVENT_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    snapshot: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    problems: list[str] = []
    for tag, old in snapshot.items():
        if tag not in current:
            problems.append(f"{tag}: event removed (publish a new version beside it instead)")
            continue
        cls_name = all_event_types()[tag].__name__
        old_props, old_req = _props(old, cls_name)
        new_props, new_req = _props(current[tag], cls_name)
        for field, spec in old_props.items():
            if field not in new_props:
                problems.append(f"{tag}: field {field!r} removed")
            elif json.dumps(spec, sort_keys=True) != json.dumps(new_props[field], sort_keys=True):
                problems.append(f"{tag}: field {field!r} changed type")
        for field in new_req - old_req:
            problems.append(f"{tag}: new field {field!r} is required (give it a default)")
    assert not problems, "non-additive event changes:\n" + "\n".join(problems)


def test_subclass_without_tag_is_not_registered() -> None:
    class Abstract(Event, frozen=True, kw_only=True):
        pass

    assert Abstract not in all_event_types().values()
