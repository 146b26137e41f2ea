"""Keeping originals without orphans: the intent is committed before an object is written, the video's row removes
it in the transaction that registers the video, and a sweep deletes what a crash left in between (docs/ingest.md).

The order, for every way a video comes in (upload, import, render output, migration):

1. probe the local file (nothing is written for a file that is refused);
2. commit an ``original_intents`` row for the video id;
3. write ``originals/<video_id>/source.<ext>``;
4. insert the video and delete the intent in one transaction (``store.insert_video``).

A process killed between 3 and 4 leaves an intent row naming the object. A retry of the same work uses the same
video id (``import_video_id`` / ``event_video_id``), so it writes the same key again: one copy, and its commit
clears the intent. What is never retried (an upload whose client gave up, an import canceled after the crash)
is deleted by ``sweep`` once its intent is older than ``ORIGINALS_ORPHAN_AGE_S``.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg

from common.logging import get_logger
from common.storage import ObjectStore
from common.views import view_of

from . import store
from .config import IngestSettings
from .media import Limits, probe
from .models import Video
from .pipeline import MAX_DESCRIPTION, original_prefix

log = get_logger(__name__)

#: names the video ids derived from what they are made of (a namespace of our own for uuid5)
_NAMESPACE = uuid.UUID("6f1d0f5e-6a53-4c1b-9a59-2f1f3c7d2b10")
#: intents swept per transaction
_SWEEP_BATCH = 100


def import_video_id(import_id: uuid.UUID) -> uuid.UUID:
    """The video id of an import: the same on every attempt of its job, so a retry rewrites the same object."""
    return uuid.uuid5(_NAMESPACE, f"import:{import_id}")


def event_video_id(source_ref: str, event_id: uuid.UUID) -> uuid.UUID:
    """The video id a registration event gives: the same for a redelivery of that event (the bus's retry), a new
    one for another event (so a video deleted by its owner is never brought back under its old id)."""
    return uuid.uuid5(_NAMESPACE, f"{source_ref}#{event_id}")


class Originals:
    """Stores probed originals with their intent recorded first; ``sweep`` removes what crashes left behind."""

    def __init__(
        self, *, pool: asyncpg.Pool, objects: ObjectStore, limits: Limits, pause_after_put_s: float = 0.0
    ) -> None:
        self.pool, self.objects, self.limits = pool, objects, limits
        self.pause_after_put_s = pause_after_put_s

    @classmethod
    def of(cls, settings: IngestSettings, *, pool: asyncpg.Pool, objects: ObjectStore) -> Originals:
        """The originals of a service configured by ``settings``."""
        return cls(
            pool=pool,
            objects=objects,
            limits=Limits(
                max_duration_s=settings.max_duration_s,
                max_dimension=settings.max_dimension,
                min_dimension=settings.min_dimension,
            ),
            pause_after_put_s=settings.fault_pause_after_original_s,
        )

    async def keep(
        self,
        path: Path,
        *,
        video_id: uuid.UUID,
        owner_id: uuid.UUID,
        source: str,
        title: str = "",
        description: str = "",
        source_url: str | None = None,
        source_ref: str | None = None,
        allow_audio_only: bool = False,
        uploader: str = "",
        platform: str = "",
    ) -> Video:
        """Probe ``path`` (``JobFailure`` with a ``media.*`` code when refused), record the intent, store it as the
        original; the caller registers the returned video with ``store.insert_video``."""
        info = await asyncio.to_thread(probe, path, self.limits, allow_audio_only=allow_audio_only)
        async with self.pool.acquire() as conn:
            await store.record_original_intent(conn, video_id=video_id)
        key = f"{original_prefix(video_id)}source.{info.container}"
        stored = await self.objects.put_file(key, path, content_type=info.content_type)
        if self.pause_after_put_s > 0:
            # fault injection for crash tests (FAULT_PAUSE_AFTER_ORIGINAL_S): the moment issue 14 item 4 is about
            log.warning(
                "ingest.fault_pause_after_original", video_id=str(video_id), seconds=self.pause_after_put_s
            )
            await asyncio.sleep(self.pause_after_put_s)
        # the probe's findings (dimensions, codecs, container, content type) and what the caller says
        return view_of(
            Video,
            info,
            id=video_id,
            owner_id=owner_id,
            title=title[:500],
            description=description[:MAX_DESCRIPTION],
            source=source,
            source_url=source_url,
            source_ref=source_ref,
            storage_key=key,
            size_bytes=stored.size,
            uploader=uploader[:200],
            platform=platform[:100],
        )

    async def discard(self, video_id: uuid.UUID) -> None:
        """Delete the original of a video that did not make it into the catalogue, and its intent (best effort:
        what fails here is left to ``sweep``). Only for an id no other attempt can be using."""
        try:
            await asyncio.shield(self.objects.delete_prefix(original_prefix(video_id)))
            async with self.pool.acquire() as conn:
                await store.forget_original_intents(conn, video_ids=[video_id])
        except Exception as exc:
            log.warning("ingest.discard_failed", video_id=str(video_id), error=repr(exc))

    async def sweep(self, *, older_than_s: float) -> int:
        """Delete the objects of intents older than ``older_than_s`` whose video was never registered; how many.

        The intents are locked (``SKIP LOCKED``) while their objects are deleted, so a late registration of one
        waits, then finds its intent gone and rolls back (``store.OriginalSwept``) instead of pointing at nothing.
        """
        swept = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                ids = await store.stale_original_intents(conn, older_than_s=older_than_s, limit=_SWEEP_BATCH)
                if not ids:
                    return swept
                registered = await store.registered_video_ids(conn, video_ids=ids)
                for video_id in ids:
                    if video_id not in registered:
                        await self.objects.delete_prefix(original_prefix(video_id))
                        swept += 1
                        log.info("ingest.orphan_swept", video_id=str(video_id))
                await store.forget_original_intents(conn, video_ids=ids)
            if len(ids) < _SWEEP_BATCH:
                return swept
