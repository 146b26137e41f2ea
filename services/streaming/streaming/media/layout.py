"""Where a stream lives in storage, and its master playlist as the database describes it."""

from __future__ import annotations

import re
import uuid

from ..store import RenditionRecord, StreamRecord
from .hls import AudioMedia, SubtitleMedia, Variant, master_playlist


def stream_prefix(video_id: uuid.UUID) -> str:
    """``streams/<id>/``: where playlists and segments live."""
    return f"streams/{video_id}/"


def thumbs_prefix(video_id: uuid.UUID) -> str:
    """``thumbs/<id>/``: poster, sprite and thumbnail index."""
    return f"thumbs/{video_id}/"


def safe_language(lang: str) -> str:
    """A language tag fit for a key and a playlist (``und`` when nothing is left)."""
    cleaned = re.sub(r"[^A-Za-z0-9-]", "", lang)[:35]
    return cleaned or "und"


def listed_renditions(stream: StreamRecord) -> tuple[list[RenditionRecord], RenditionRecord | None]:
    """The video variants the master playlist lists, and its audio rendition.

    The stream-copy ``src`` is listed only until the encoded ladder exists: its keyframes are the source's (not
    aligned with the ladder's) and its bitrate is uncapped, so it would make ABR switching worse, not better.
    Its files stay, so a player that started on it plays to the end.
    """
    videos = [r for r in stream.renditions if r.kind == "video"]
    encoded = [r for r in videos if not r.copy]
    audio = next((r for r in stream.renditions if r.kind == "audio"), None)
    return (encoded or videos), audio


def render_master(stream: StreamRecord) -> str:
    """The master playlist of a stream as it is in the database (relative URIs only)."""
    videos, audio = listed_renditions(stream)
    a_bw = audio.bandwidth if audio else 0
    a_avg = audio.average_bandwidth if audio else 0
    variants = [
        Variant(
            uri=f"{r.name}/index.m3u8",
            bandwidth=r.bandwidth + a_bw,
            average_bandwidth=r.average_bandwidth + a_avg,
            codecs=r.codecs + (f",{audio.codecs}" if audio else ""),
            width=r.width,
            height=r.height,
            frame_rate=r.frame_rate,
        )
        for r in videos
    ]
    audio_media = AudioMedia(uri="audio/index.m3u8", channels=audio.width or 2) if audio else None
    if not videos and audio is not None:
        # audio-only (a podcast): its one rendition is the variant itself, as Apple's spec has it (no group)
        variants = [
            Variant(
                uri="audio/index.m3u8",
                bandwidth=a_bw,
                average_bandwidth=a_avg,
                codecs=audio.codecs,
                width=0,
                height=0,
                frame_rate=0.0,
            )
        ]
        audio_media = None
    subs = [
        SubtitleMedia(uri=f"subs/{s.language}/index.m3u8", language=s.language, label=s.label)
        for s in stream.subtitles
    ]
    return master_playlist(variants, audio=audio_media, subtitles=subs)
