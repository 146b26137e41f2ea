"""The event envelope: a frozen msgspec Struct tagged by its type (routing key)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, TypeVar, Union

import msgspec

E = TypeVar("E", bound="Event")


def _now() -> datetime:
    return datetime.now(UTC)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=False):
    """Base of every bus event. Subclasses set ``tag="<name>.v<N>"``; the tag is the routing key.

    Evolution is additive: a new field must have a default. A breaking change is a new ``.v2`` class.
    """

    id: uuid.UUID = msgspec.field(default_factory=uuid.uuid4)
    occurred_at: datetime = msgspec.field(default_factory=_now)
    correlation_id: str = ""
    producer: str = ""

    #: high-volume events may be published directly instead of through the outbox
    direct: ClassVar[bool] = False

    @property
    def type(self) -> str:
        """The event type, e.g. ``video.ingested.v1`` (also the routing key)."""
        return str(self.__struct_config__.tag)

    @classmethod
    def event_type(cls) -> str:
        """The event type of this class."""
        tag = cls.__struct_config__.tag
        if not isinstance(tag, str):
            raise TypeError(f"{cls.__name__} has no tag")
        return tag


class VideoEvent(Event, frozen=True, kw_only=True):
    """Base of the events about one video of one owner (its fields come first)."""

    video_id: uuid.UUID
    owner_id: uuid.UUID


def all_event_types() -> dict[str, type[Event]]:
    """Every concrete event class imported so far, by type."""
    out: dict[str, type[Event]] = {}
    stack = list(Event.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        tag = cls.__struct_config__.tag
        # with a tag_field, msgspec tags an untagged subclass by its class name: that is not an event type
        if isinstance(tag, str) and tag != cls.__name__:
            if tag in out and out[tag] is not cls:
                raise TypeError(f"two event classes share the type {tag!r}: {out[tag]} and {cls}")
            out[tag] = cls
    return out


_encoder = msgspec.json.Encoder()


def encode(event: Event) -> bytes:
    """JSON bytes of an event (including its ``type``)."""
    return _encoder.encode(event)


@cache
def _decoder(types: tuple[type[Event], ...]) -> msgspec.json.Decoder[Any]:
    if len(types) == 1:
        return msgspec.json.Decoder(types[0])
    return msgspec.json.Decoder(Union[types])  # noqa: UP007


def decode(body: bytes, types: tuple[type[Event], ...] | None = None) -> Event:
    """Decode bytes into the matching event class (by its ``type`` tag)."""
    if types is None:
        types = tuple(sorted(all_event_types().values(), key=lambda c: c.event_type()))
    result: Event = _decoder(types).decode(body)
    return result


def decode_as(body: bytes, cls: type[E]) -> E:
    """Decode bytes as one known event class."""
    result: E = _decoder((cls,)).decode(body)
    return result


def json_schemas() -> dict[str, Any]:
    """JSON schema of every imported event, by type (for the compatibility snapshot)."""
    out: dict[str, Any] = {}
    for tag, cls in sorted(all_event_types().items()):
        if cls.__module__.startswith("common.events."):  # the contract, not classes tests define
            out[tag] = msgspec.json.schema(cls)
    return out
