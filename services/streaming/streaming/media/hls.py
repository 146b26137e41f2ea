"""HLS text: measuring media playlists, RFC 6381 codec strings, master and subtitle playlists. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Segment:
    """One media segment of a playlist."""

    uri: str
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class Measured:
    """What a rendition's segments weigh: peak and mean bitrate (bits/s), count and total size."""

    bandwidth: int
    average_bandwidth: int
    segment_count: int
    size_bytes: int
    duration_s: float


def parse_media_playlist(text: str) -> tuple[str | None, list[Segment]]:
    """The init segment URI (``EXT-X-MAP``) and the segments of a media playlist."""
    init: str | None = None
    segments: list[Segment] = []
    pending: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-MAP:"):
            for attr in _split_attrs(line.removeprefix("#EXT-X-MAP:")):
                k, _, v = attr.partition("=")
                if k == "URI":
                    init = v.strip('"')
        elif line.startswith("#EXTINF:"):
            pending = float(line.removeprefix("#EXTINF:").split(",", 1)[0])
        elif line and not line.startswith("#") and pending is not None:
            segments.append(Segment(uri=line, duration_s=pending))
            pending = None
    return init, segments


def _split_attrs(text: str) -> list[str]:
    out, cur, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def parse_attributes(text: str) -> dict[str, str]:
    """``KEY=VALUE,KEY="v,w"`` attributes of an HLS tag, quotes removed."""
    attrs: dict[str, str] = {}
    for part in _split_attrs(text):
        k, _, v = part.partition("=")
        attrs[k.strip()] = v.strip().strip('"')
    return attrs


def measure_rendition(directory: Path, playlist: str = "index.m3u8") -> Measured:
    """Peak segment bitrate (HLS BANDWIDTH) and mean bitrate (AVERAGE-BANDWIDTH) of a rendition on disk.

    The init segment is not part of any media segment's bitrate (it is fetched once), but counts in the size.
    """
    init, segments = parse_media_playlist((directory / playlist).read_text())
    if not segments:
        raise ValueError(f"{directory / playlist} has no segments")
    total_bits = 0
    peak = 0.0
    total_dur = 0.0
    for seg in segments:
        bits = (directory / seg.uri).stat().st_size * 8
        total_bits += bits
        total_dur += seg.duration_s
        peak = max(peak, bits / max(seg.duration_s, 1e-3))
    size = total_bits // 8 + ((directory / init).stat().st_size if init else 0)
    return Measured(
        bandwidth=math.ceil(peak),
        average_bandwidth=math.ceil(total_bits / max(total_dur, 1e-3)),
        segment_count=len(segments),
        size_bytes=size,
        duration_s=total_dur,
    )


def avc_codec_string(extradata: bytes | None, *, profile_idc: int = 100, level_idc: int = 40) -> str:
    """``avc1.PPCCLL`` from H.264 extradata (avcC or Annex B SPS); the given fallbacks when absent."""
    data = bytes(extradata or b"")
    if len(data) >= 4 and data[0] == 1:  # avcC: version, profile, compatibility, level
        return f"avc1.{data[1]:02X}{data[2]:02X}{data[3]:02X}"
    # Annex B: find the SPS NAL (type 7) after a start code
    i = 0
    while i + 4 < len(data):
        if data[i : i + 3] == b"\x00\x00\x01":
            nal = data[i + 3]
            if nal & 0x1F == 7 and i + 6 < len(data):
                return f"avc1.{data[i + 4]:02X}{data[i + 5]:02X}{data[i + 6]:02X}"
            i += 3
        else:
            i += 1
    return f"avc1.{profile_idc:02X}00{level_idc:02X}"


def aac_codec_string(profile: str | None) -> str:
    """``mp4a.40.N`` for an AAC profile name."""
    p = (profile or "LC").upper()
    if "HE-AACV2" in p:
        return "mp4a.40.29"
    if "HE" in p:
        return "mp4a.40.5"
    return "mp4a.40.2"


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One video variant of the master playlist (its bandwidth already includes the audio it plays with)."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    codecs: str
    width: int
    height: int
    frame_rate: float


@dataclass(frozen=True, kw_only=True)
class AudioMedia:
    """The audio rendition group."""

    uri: str
    channels: int
    name: str = "Default"
    language: str = "und"


@dataclass(frozen=True, kw_only=True)
class SubtitleMedia:
    """One subtitle track of the SUBTITLES group."""

    uri: str
    language: str
    label: str


AUDIO_GROUP = "audio"
SUBS_GROUP = "subs"


def _q(value: str) -> str:
    # quoted-string values may not contain a double quote or a line break (RFC 8216 §4.2)
    return '"' + value.replace('"', "'").replace("\n", " ").replace("\r", " ") + '"'


def master_playlist(
    variants: Sequence[Variant], *, audio: AudioMedia | None, subtitles: Sequence[SubtitleMedia] = ()
) -> str:
    """An HLS master playlist: one audio group, one subtitles group, variants highest bandwidth first."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        lines.append(
            f"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID={_q(AUDIO_GROUP)},NAME={_q(audio.name)},LANGUAGE={_q(audio.language)},"
            f"DEFAULT=YES,AUTOSELECT=YES,CHANNELS={_q(str(audio.channels))},URI={_q(audio.uri)}"
        )
    for sub in subtitles:
        lines.append(
            f"#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID={_q(SUBS_GROUP)},NAME={_q(sub.label)},"
            f"LANGUAGE={_q(sub.language)},DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,"
            f"URI={_q(sub.uri)}"
        )
    for v in sorted(variants, key=lambda v: -v.bandwidth):
        attrs = [
            f"BANDWIDTH={v.bandwidth}",
            f"AVERAGE-BANDWIDTH={v.average_bandwidth}",
            f"CODECS={_q(v.codecs)}",
        ]
        if v.width and v.height:  # an audio-only variant has neither
            attrs += [f"RESOLUTION={v.width}x{v.height}", f"FRAME-RATE={v.frame_rate:.3f}"]
        if audio is not None:
            attrs.append(f"AUDIO={_q(AUDIO_GROUP)}")
        if subtitles:
            attrs.append(f"SUBTITLES={_q(SUBS_GROUP)}")
        lines.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        lines.append(v.uri)
    return "\n".join(lines) + "\n"


def subtitle_playlist(vtt_uri: str, *, duration_s: float) -> str:
    """A VOD media playlist with the whole WebVTT file as its one segment."""
    d = max(duration_s, 0.001)
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        f"#EXT-X-TARGETDURATION:{math.ceil(d)}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{d:.3f},\n{vtt_uri}\n#EXT-X-ENDLIST\n"
    )


def vtt_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm``."""
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"
