"""Publishing finished work: renditions, thumbnails and DASH uploaded under their final keys, then recorded.

Each upload finishes before its row says it is complete, and playlists go up after their segments, so a player
never sees a playlist pointing at a file that is not there and a taken-over job redoes only what is missing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from common.storage import ObjectStore
from common.storage.content_types import content_type

from .. import store
from ..store import StreamRecord
from .dash import package_dash
from .encode import LadderResult
from .errors import CANCELED, MediaError
from .hls import measure_rendition
from .layout import listed_renditions, render_master, stream_prefix, thumbs_prefix
from .output import RenditionOutput


class Publisher:
    """Uploads to the object store and records in the stream's rows."""

    def __init__(self, *, pool: asyncpg.Pool, objects: ObjectStore, gop_s: float) -> None:
        self.pool, self.objects, self.gop_s = pool, objects, gop_s

    async def upload_dir(self, directory: Path, prefix: str) -> None:
        """Every file of ``directory`` under ``prefix``, playlists last."""
        files = await asyncio.to_thread(lambda: sorted(p for p in directory.iterdir() if p.is_file()))
        sem = asyncio.Semaphore(8)

        async def one(p: Path) -> None:
            async with sem:
                await self.objects.put_file(prefix + p.name, p, content_type=content_type(p.name))

        # playlists last: a playlist never points at a segment that is not there yet
        await asyncio.gather(*(one(p) for p in files if p.suffix != ".m3u8"))
        await asyncio.gather(*(one(p) for p in files if p.suffix == ".m3u8"))

    async def rendition(self, vid: uuid.UUID, out: RenditionOutput) -> None:
        """Upload a finished rendition under its final keys, then record it complete."""
        await self.upload_dir(out.directory, f"{stream_prefix(vid)}{out.name}/")
        m = out.measured
        async with self.pool.acquire() as conn:
            await store.complete_rendition(
                conn,
                video_id=vid,
                name=out.name,
                kind=out.kind,
                # audio renditions keep their channel count in ``width`` (no pixels to describe)
                width=out.width if out.kind == "video" else out.channels,
                height=out.height,
                bandwidth=m.bandwidth,
                average_bandwidth=m.average_bandwidth,
                codecs=out.codecs,
                frame_rate=out.frame_rate,
                playlist_key=f"{stream_prefix(vid)}{out.name}/index.m3u8",
                segment_count=m.segment_count,
                size_bytes=m.size_bytes,
                copy=out.copy,
            )

    async def thumbnails(self, vid: uuid.UUID, result: LadderResult) -> None:
        """Upload the sprite, its WebVTT index and the poster, then record their keys."""
        assert result.poster and result.sprite and result.thumbnails_vtt is not None
        prefix = thumbs_prefix(vid)
        await self.objects.put_file(prefix + "sprite.jpg", result.sprite, content_type=content_type("jpg"))
        await self.objects.put(
            prefix + "thumbnails.vtt", result.thumbnails_vtt.encode(), content_type=content_type("vtt")
        )
        await self.objects.put_file(prefix + "poster.jpg", result.poster, content_type=content_type("jpg"))
        async with self.pool.acquire() as conn:
            await store.set_thumbnails(
                conn,
                video_id=vid,
                poster_key=prefix + "poster.jpg",
                sprite_key=prefix + "sprite.jpg",
                thumbnails_vtt_key=prefix + "thumbnails.vtt",
            )

    async def dash(self, vid: uuid.UUID, work: Path, produced: Sequence[RenditionOutput]) -> None:
        """Package the listed renditions as DASH (fetching back those an earlier attempt finished) and upload."""
        local = {r.name: r for r in produced}
        async with self.pool.acquire() as conn:
            stream = await store.get_stream(conn, video_id=vid)
        assert stream is not None
        videos, audio = listed_renditions(stream)
        outs = [
            local.get(rec.name) or await self._fetch_back(vid, work / "fetched" / rec.name, rec)
            for rec in [*videos, *([audio] if audio else [])]
        ]
        mpd = await asyncio.to_thread(package_dash, outs, work / "dash_out", gop_s=self.gop_s)
        await self.upload_dir(mpd.parent / "dash", f"{stream_prefix(vid)}dash/")
        await self.objects.put_file(
            f"{stream_prefix(vid)}manifest.mpd", mpd, content_type=content_type("mpd")
        )

    async def _fetch_back(self, vid: uuid.UUID, d: Path, rec: store.RenditionRecord) -> RenditionOutput:
        """A rendition finished by an earlier attempt, downloaded into ``d``."""
        await asyncio.to_thread(d.mkdir, parents=True, exist_ok=True)
        async for obj in self.objects.list(f"{stream_prefix(vid)}{rec.name}/"):
            await self.objects.get_file(obj.key, d / obj.key.rsplit("/", 1)[-1])
        return RenditionOutput(
            name=rec.name,
            kind=rec.kind,
            directory=d,
            width=rec.width,
            height=rec.height,
            codecs=rec.codecs,
            frame_rate=rec.frame_rate,
            measured=measure_rendition(d),
            copy=rec.copy,
        )

    async def master(self, conn: asyncpg.Connection, vid: uuid.UUID) -> StreamRecord:
        """Render the master from the rows and upload it, serialized per video across workers."""
        await store.lock_video(conn, video_id=vid)
        stream = await store.get_stream(conn, video_id=vid)
        if stream is None:  # deleted while this was being made: stop (the job's end removes what it uploaded)
            raise MediaError(CANCELED, "the video was deleted")
        if stream.renditions:
            await self.objects.put(
                f"{stream_prefix(vid)}master.m3u8",
                render_master(stream).encode(),
                content_type=content_type("m3u8"),
            )
        return stream
