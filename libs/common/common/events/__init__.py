"""Every bus event, one module per producer. Importing this package registers them all."""

from . import analysis, billing, captions, gateway, ingest, jobs, render, streaming
from .base import Event, all_event_types, decode, decode_as, encode, json_schemas

__all__ = [
    "Event",
    "all_event_types",
    "analysis",
    "billing",
    "captions",
    "decode",
    "decode_as",
    "encode",
    "gateway",
    "ingest",
    "jobs",
    "json_schemas",
    "render",
    "streaming",
]
