"""The media pipeline, by concern.

Pure PyAV work on local files (no database, no bus, no object store; CPU-heavy functions are synchronous and
run in a worker thread): ``probe`` (describe and check a source), ``ladder`` (which rungs, encoder settings),
``remux`` (stream copy), ``encode`` (one decode → every rung, the audio, the thumbnails), ``audio``,
``thumbnails``, ``dash``, ``hls`` (playlists: parse, measure, write), ``output`` (where renditions are written),
``errors``.

The job around it: ``layout`` (storage keys, the master playlist from the rows), ``publish`` (upload, then
record), ``lifecycle`` (playable / ready / failed with their events), ``transcode`` (the job's steps) and
``worker`` (the event entry points and the job runner).
"""

from .encode import LadderResult, transcode_ladder
from .errors import (
    CANCELED,
    MEDIA_NO_VIDEO,
    MEDIA_UNREADABLE,
    MEDIA_UNSUPPORTED_CODEC,
    TRANSCODE_FAILED,
    MediaError,
)
from .ladder import LADDER, EncoderSettings, Rung, plan_ladder
from .probe import SourceInfo, probe
from .thumbnails import ThumbnailPlan, plan_thumbnails

__all__ = [
    "CANCELED",
    "LADDER",
    "MEDIA_NO_VIDEO",
    "MEDIA_UNREADABLE",
    "MEDIA_UNSUPPORTED_CODEC",
    "TRANSCODE_FAILED",
    "EncoderSettings",
    "LadderResult",
    "MediaError",
    "Rung",
    "SourceInfo",
    "ThumbnailPlan",
    "plan_ladder",
    "plan_thumbnails",
    "probe",
    "transcode_ladder",
]
