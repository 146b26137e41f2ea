"""The media pipeline with PyAV: probe, plan the ladder, stream-copy remux, one-decode ladder transcode, thumbnails.

Pure domain work on local files (no database, no bus, no object store); CPU-heavy functions are synchronous and
meant to run in a worker thread (``asyncio.to_thread``). Progress and cancellation cross the thread boundary
through plain callables.
"""

from __future__ import annotations

import heapq
import math
import shutil
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from common.logging import get_logger

from .hls import Measured, aac_codec_string, avc_codec_string, measure_rendition, vtt_timestamp

# error codes (stable: they reach users through the API, webhooks and job events)
MEDIA_UNREADABLE = "media.unreadable"
MEDIA_UNSUPPORTED_CODEC = "media.unsupported_codec"
MEDIA_NO_VIDEO = "media.no_video_stream"
TRANSCODE_FAILED = "transcode.failed"
CANCELED = "job.canceled"


class MediaError(Exception):
    """The source cannot become a stream; ``code`` is stable and user-facing."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class Canceled(Exception):
    """The work was asked to stop."""


log = get_logger(__name__)


# ---------------------------------------------------------------------------------------------------------- probe


@dataclass(frozen=True, kw_only=True)
class SourceInfo:
    """What the worker needs to know about a source file."""

    width: int  # coded size
    height: int
    display_width: int  # after rotation and pixel aspect ratio, before rounding to even
    display_height: int
    rotation: int  # counter-clockwise degrees from the display matrix: 0, 90, 180, 270
    duration_s: float
    fps: Fraction  # the output frame rate (constant)
    variable_frame_rate: bool
    video_codec: str
    pix_fmt: str
    profile: str
    bit_rate: int
    has_audio: bool
    audio_codec: str = ""
    audio_profile: str = ""
    audio_rate: int = 0
    audio_channels: int = 0

    @property
    def total_frames(self) -> int:
        """Frames of one constant-rate output rendition."""
        return max(1, math.ceil(self.duration_s * self.fps - 1e-6))

    @property
    def video_copyable(self) -> bool:
        """H.264 that every player decodes as it is: 8-bit 4:2:0, ≤ High, sane size and rate, no rotation."""
        return (
            self.video_codec == "h264"
            and self.pix_fmt in ("yuv420p", "yuvj420p")
            and self.profile in ("Baseline", "Constrained Baseline", "Main", "High")
            and self.rotation == 0
            and self.width % 2 == 0
            and self.height % 2 == 0
            and 16 <= self.width <= 4096
            and 16 <= self.height <= 4096
            and 1 <= float(self.fps) <= 60.5
        )

    @property
    def audio_copyable(self) -> bool:
        """AAC-LC mono/stereo at 44.1 or 48 kHz: copied as the audio rendition instead of re-encoded."""
        return (
            self.has_audio
            and self.audio_codec == "aac"
            and self.audio_profile.upper() == "LC"
            and self.audio_channels in (1, 2)
            and self.audio_rate in (44100, 48000)
        )

    @property
    def copyable(self) -> bool:
        """A stream-copy ``src`` rendition (remux, no re-encode) makes the video playable at once."""
        return self.video_copyable and (not self.has_audio or self.audio_copyable)


_PROFILE_NAMES = {
    "constrained baseline": "Constrained Baseline",
    "baseline": "Baseline",
    "main": "Main",
    "high": "High",
}


def _norm_rotation(deg: float) -> int:
    return round(deg / 90.0) * 90 % 360


def probe(path: Path, *, max_fps: float = 60.0) -> SourceInfo:
    """Open, check and describe a source; ``MediaError`` with a stable code when it cannot be streamed."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(MEDIA_UNREADABLE, f"the file is not a readable media container ({e})") from e
    with container:
        if not container.streams.video:
            raise MediaError(MEDIA_NO_VIDEO, "the file has no video stream")
        vs = container.streams.video[0]
        cc = vs.codec_context
        if cc is None or not cc.name:
            raise MediaError(MEDIA_UNSUPPORTED_CODEC, "the video codec is not supported")
        try:
            av.codec.Codec(cc.name, "r")
        except (av.error.FFmpegError, ValueError) as e:
            raise MediaError(MEDIA_UNSUPPORTED_CODEC, f"no decoder for video codec {cc.name!r}") from e
        vs.thread_type = "AUTO"
        try:
            first = next(container.decode(vs))
        except StopIteration as e:
            raise MediaError(MEDIA_UNREADABLE, "the video stream has no decodable frame") from e
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise MediaError(MEDIA_UNREADABLE, f"the video stream cannot be decoded ({e})") from e
        rotation = _norm_rotation(first.rotation or 0)
        width, height = first.width, first.height
        sar = vs.sample_aspect_ratio or Fraction(1, 1)
        disp_w = width * float(sar) if sar and float(sar) > 0 else float(width)
        disp_h = float(height)
        if rotation in (90, 270):
            disp_w, disp_h = disp_h, disp_w
        duration = _duration(container, vs)
        if duration <= 0:
            raise MediaError(MEDIA_UNREADABLE, "the video has no duration")
        avg = vs.average_rate or vs.guessed_rate or Fraction(30, 1)
        base = vs.base_rate or avg
        vfr = bool(avg and base and abs(float(avg) - float(base)) > 0.01 * float(base))
        # a variable-rate source (phones) is resampled to the nearest whole rate, so 2-s GOPs are whole frames
        fps = _output_fps(Fraction(round(float(avg))) if vfr else Fraction(avg), max_fps=max_fps)
        a = container.streams.audio[0] if container.streams.audio else None
        audio_kw: dict[str, Any] = {"has_audio": False}
        if a is not None and a.codec_context is not None:
            ac = a.codec_context
            audio_kw = {
                "has_audio": True,
                "audio_codec": ac.name or "",
                "audio_profile": ac.profile or "",
                "audio_rate": int(a.rate or 0),
                "audio_channels": int(ac.channels if hasattr(ac, "channels") else a.layout.nb_channels),
            }
        return SourceInfo(
            width=width,
            height=height,
            display_width=max(2, round(disp_w)),
            display_height=max(2, round(disp_h)),
            rotation=rotation,
            duration_s=duration,
            fps=fps,
            variable_frame_rate=vfr,
            video_codec=cc.name,
            pix_fmt=str(cc.pix_fmt or first.format.name),
            profile=_PROFILE_NAMES.get(str(cc.profile or "").lower(), str(cc.profile or "")),
            bit_rate=int(cc.bit_rate or container.bit_rate or 0),
            **audio_kw,
        )


def _duration(container: Any, vs: VideoStream) -> float:
    if vs.duration and vs.time_base:
        return float(vs.duration * vs.time_base)
    if container.duration:
        return float(container.duration) / 1_000_000
    return 0.0


def _output_fps(rate: Fraction, *, max_fps: float) -> Fraction:
    """Keep the source rate (NTSC rates stay exact), halve it above ``max_fps``."""
    if rate <= 0:
        return Fraction(30, 1)
    rate = rate.limit_denominator(1001)
    while float(rate) > max_fps + 0.5:
        rate /= 2
    return rate


# --------------------------------------------------------------------------------------------------------- ladder


@dataclass(frozen=True, kw_only=True)
class Rung:
    """One rendition of the ladder: size and capped bitrate."""

    name: str
    width: int
    height: int
    maxrate_kbps: int
    crf: int = 23

    @property
    def bufsize_kbps(self) -> int:
        """VBV buffer: two seconds of the cap, so the peak stays near ``maxrate`` per 2-s segment."""
        return self.maxrate_kbps * 2


# (short side, cap in kbit/s at ≤ 30 fps); high frame rates get 1.5x
LADDER: tuple[tuple[int, int], ...] = ((1080, 5000), (720, 3000), (480, 1500), (360, 800), (240, 400))


def _even(x: float) -> int:
    return max(2, round(x / 2.0) * 2)


def plan_ladder(info: SourceInfo, *, max_short_side: int = 1080) -> list[Rung]:
    """Rungs no bigger than the source (never upscale), sized on the short side so 9:16 and 4:3 keep their shape.

    A source smaller than the lowest rung gets one rung at its own size (rounded to even), named like that rung.
    """
    w, h = info.display_width, info.display_height
    short = min(w, h)
    rungs: list[Rung] = []
    fps_factor = 1.5 if float(info.fps) > 31 else 1.0
    for side, cap in LADDER:
        if side > max_short_side or side > short:
            continue
        scale = side / short
        rw, rh = _even(w * scale), _even(h * scale)
        if min(rw, rh) != side:  # keep the named side exact; the long side absorbs the rounding
            rw, rh = (side, rh) if w <= h else (rw, side)
        rungs.append(Rung(name=f"{side}p", width=rw, height=rh, maxrate_kbps=int(cap * fps_factor)))
    if not rungs:
        side, cap = LADDER[-1]
        rungs.append(
            Rung(
                name=f"{side}p",
                width=_even(w) if w % 2 == 0 else w - 1 or 2,
                height=_even(h) if h % 2 == 0 else h - 1 or 2,
                maxrate_kbps=int(cap * fps_factor),
            )
        )
    return rungs


@dataclass(frozen=True, kw_only=True)
class EncoderSettings:
    """x264/AAC settings shared by every rung (and by the ffmpeg CLI baseline of the benchmark)."""

    preset: str = "veryfast"
    gop_s: float = 2.0
    audio_bitrate: int = 128_000
    audio_rate: int = 48_000
    threads: int = 0  # 0 = let x264 decide

    def x264_options(self, rung: Rung, fps: Fraction) -> dict[str, str]:
        """Codec options: capped CRF, closed GOPs; keyframes are forced at the GOP boundaries per frame."""
        gop_frames = math.ceil(self.gop_s * fps)
        opts = {
            "preset": self.preset,
            "crf": str(rung.crf),
            "maxrate": f"{rung.maxrate_kbps}k",
            "bufsize": f"{rung.bufsize_kbps}k",
            "profile": "high",
            "forced-idr": "1",
            # keyint one past the boundary: x264 never places a keyframe itself, the forced ones land exactly
            # vbv-init: start with a near-empty VBV buffer (x264 starts at 90%), else the first segment may spend
            # almost twice the cap and the measured peak (BANDWIDTH) of the whole rendition with it
            "x264-params": f"keyint={gop_frames + 1}:min-keyint={gop_frames}:scenecut=0:open-gop=0:vbv-init=0.1",
        }
        if self.threads:
            opts["threads"] = str(self.threads)
        return opts


def hls_options(directory: Path, *, gop_s: float) -> dict[str, str]:
    """The hls muxer writing CMAF (fMP4) segments ``seg_00001.m4s`` next to ``init.mp4`` and ``index.m3u8``."""
    return {
        "hls_time": f"{gop_s:g}",
        "hls_playlist_type": "vod",
        "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": "init.mp4",
        # absolute: the muxer resolves it against the working directory (the playlist keeps the base name)
        "hls_segment_filename": str(directory / "seg_%05d.m4s"),
        "start_number": "1",
        "hls_flags": "independent_segments",
    }


@dataclass(frozen=True, kw_only=True)
class RenditionOutput:
    """A finished rendition in a local directory, measured, ready to upload."""

    name: str
    kind: str  # video | audio
    directory: Path
    width: int
    height: int
    codecs: str
    frame_rate: float
    measured: Measured
    copy: bool = False
    channels: int = 0


def _open_hls(directory: Path, *, gop_s: float) -> Any:
    directory.mkdir(parents=True, exist_ok=True)
    return av.open(
        str(directory / "index.m3u8"), "w", format="hls", options=hls_options(directory, gop_s=gop_s)
    )


def _reset_dir(directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)


def remux_copy(
    src: Path, work_dir: Path, *, info: SourceInfo, gop_s: float = 2.0, with_audio: bool = True
) -> tuple[RenditionOutput, RenditionOutput | None]:
    """Stream-copy the source's H.264 into ``src/`` and its AAC into ``audio/`` (no decode, no encode)."""
    vdir, adir = work_dir / "src", work_dir / "audio"
    _reset_dir(vdir)
    copy_audio = with_audio and info.has_audio and info.audio_copyable
    if copy_audio:
        _reset_dir(adir)
    try:
        with av.open(str(src)) as inp:
            ivs = inp.streams.video[0]
            ias = inp.streams.audio[0] if copy_audio else None
            vout = _open_hls(vdir, gop_s=gop_s)
            aout = _open_hls(adir, gop_s=gop_s) if ias is not None else None
            try:
                ovs = vout.add_stream_from_template(ivs)
                oas = aout.add_stream_from_template(ias) if aout is not None and ias is not None else None
                streams = [ivs] if ias is None else [ivs, ias]
                for packet in inp.demux(streams):
                    if packet.dts is None or packet.size == 0:
                        continue
                    if packet.stream is ivs:
                        packet.stream = ovs
                        vout.mux(packet)
                    elif oas is not None and aout is not None:
                        packet.stream = oas
                        aout.mux(packet)
                vcodecs = avc_codec_string(ivs.codec_context.extradata)
            finally:
                vout.close()
                if aout is not None:
                    aout.close()
    except av.error.FFmpegError as e:
        raise MediaError(MEDIA_UNREADABLE, f"the source could not be remuxed ({e})") from e
    video = RenditionOutput(
        name="src",
        kind="video",
        directory=vdir,
        width=info.width,
        height=info.height,
        codecs=vcodecs,
        frame_rate=float(info.fps),
        measured=measure_rendition(vdir),
        copy=True,
    )
    audio = None
    if copy_audio:
        audio = RenditionOutput(
            name="audio",
            kind="audio",
            directory=adir,
            width=0,
            height=0,
            codecs=aac_codec_string(info.audio_profile),
            frame_rate=0.0,
            measured=measure_rendition(adir),
            copy=True,
            channels=info.audio_channels,
        )
    return video, audio


# ----------------------------------------------------------------------------------------------------- thumbnails


@dataclass(frozen=True, kw_only=True)
class ThumbnailPlan:
    """Poster time and sprite grid."""

    poster_at_s: float
    poster_width: int
    poster_height: int
    interval_s: float
    count: int
    tile_width: int
    tile_height: int
    columns: int

    @property
    def rows(self) -> int:
        """Rows of the sprite grid."""
        return math.ceil(self.count / self.columns)


def plan_thumbnails(info: SourceInfo, *, max_tiles: int = 100, tile_width: int = 160) -> ThumbnailPlan:
    """Poster from the middle of the video; one sprite tile per second (spread wider for long videos)."""
    w, h = info.display_width, info.display_height
    interval = max(1.0, math.ceil(info.duration_s / max_tiles))
    count = max(1, min(max_tiles, math.ceil(info.duration_s / interval)))
    tw = min(tile_width, _even(w))
    th = _even(tw * h / w)
    pw = min(_even(w), 1280 if w >= h else 720)
    ph = _even(pw * h / w)
    return ThumbnailPlan(
        poster_at_s=info.duration_s / 2,
        poster_width=pw,
        poster_height=ph,
        interval_s=interval,
        count=count,
        tile_width=tw,
        tile_height=th,
        columns=min(10, count),
    )


def thumbnails_vtt(plan: ThumbnailPlan, *, duration_s: float, sprite_uri: str = "sprite.jpg") -> str:
    """The WebVTT index: one cue per tile pointing into the sprite with a media fragment."""
    cues = ["WEBVTT", ""]
    for i in range(plan.count):
        start = i * plan.interval_s
        end = min(duration_s, (i + 1) * plan.interval_s)
        if end <= start:
            end = start + 0.001
        x, y = (i % plan.columns) * plan.tile_width, (i // plan.columns) * plan.tile_height
        cues += [
            f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}",
            f"{sprite_uri}#xywh={x},{y},{plan.tile_width},{plan.tile_height}",
            "",
        ]
    return "\n".join(cues)


def _rgb_image(frame: VideoFrame, width: int, height: int) -> Image.Image:
    return Image.fromarray(frame.reformat(width=width, height=height, format="rgb24").to_ndarray())


@dataclass
class _Thumbnailer:
    plan: ThumbnailPlan
    sprite: Image.Image = field(init=False)
    poster: Image.Image | None = None
    next_tile: int = 0

    def __post_init__(self) -> None:
        p = self.plan
        self.sprite = Image.new("RGB", (p.columns * p.tile_width, p.rows * p.tile_height))

    def offer(self, frame: VideoFrame, t: float, t_next: float) -> None:
        """Use ``frame`` (shown from ``t`` until ``t_next``) for every tile and the poster it covers."""
        p = self.plan
        while self.next_tile < p.count and self.next_tile * p.interval_s < t_next:
            img = _rgb_image(frame, p.tile_width, p.tile_height)
            i = self.next_tile
            self.sprite.paste(img, ((i % p.columns) * p.tile_width, (i // p.columns) * p.tile_height))
            self.next_tile += 1
        if self.poster is None and (t <= p.poster_at_s < t_next):
            self.poster = _rgb_image(frame, p.poster_width, p.poster_height)

    def finish(self, last: VideoFrame | None, out_dir: Path) -> tuple[Path, Path]:
        if last is not None:
            self.offer(last, 0.0, float("inf"))  # the last frame fills whatever is left
        out_dir.mkdir(parents=True, exist_ok=True)
        poster_path, sprite_path = out_dir / "poster.jpg", out_dir / "sprite.jpg"
        assert self.poster is not None
        self.poster.save(poster_path, "JPEG", quality=85)
        self.sprite.save(sprite_path, "JPEG", quality=75)
        return poster_path, sprite_path


# ------------------------------------------------------------------------------------------------ ladder transcode


@dataclass(frozen=True, kw_only=True)
class LadderResult:
    """Renditions (and thumbnails) written by one pass over the source."""

    renditions: list[RenditionOutput]
    poster: Path | None = None
    sprite: Path | None = None
    thumbnails_vtt: str | None = None
    frames_decoded: int = 0


ProgressFn = Callable[[int], None]


def _rung_sar(info: SourceInfo, rung: Rung) -> Fraction:
    sar = Fraction(info.display_width * rung.height, info.display_height * rung.width).limit_denominator(
        10000
    )
    return sar if sar > 0 else Fraction(1, 1)


def _rotation_graph(first: VideoFrame, rotation: int, time_base: Fraction) -> Any | None:
    """A filter graph turning frames upright (what ``ffmpeg -autorotate`` does), or None when they are."""
    if rotation == 0:
        return None
    graph = av.filter.Graph()
    src = graph.add_buffer(width=first.width, height=first.height, format=first.format, time_base=time_base)
    chain = {
        90: [("transpose", "cclock")],
        270: [("transpose", "clock")],
        180: [("hflip", ""), ("vflip", "")],
    }
    prev = src
    for name, arg in chain[rotation]:
        node = graph.add(name, arg) if arg else graph.add(name)
        prev.link_to(node)
        prev = node
    sink = graph.add("buffersink")
    prev.link_to(sink)
    graph.configure()
    return graph


def _upright(graph: Any | None, frame: VideoFrame) -> VideoFrame:
    if graph is None:
        return frame
    graph.push(frame)
    out: VideoFrame = graph.pull()
    return out


@dataclass
class _VideoEncoder:
    rung: Rung
    container: Any
    stream: Any
    frames: int = 0


@dataclass
class _AudioEncoder:
    container: Any
    stream: Any
    resampler: Any
    samples: int = 0
    #: samples given to the resampler so far, at the output rate: where the next input frame lands in the output
    fed: float = 0.0

    @property
    def rate(self) -> int:
        """The output sample rate (the encoder's)."""
        return int(self.stream.codec_context.sample_rate)


def transcode_ladder(
    src: Path,
    work_dir: Path,
    *,
    info: SourceInfo,
    rungs: Sequence[Rung],
    encode_audio: bool,
    thumbnails: ThumbnailPlan | None,
    settings: EncoderSettings = EncoderSettings(),
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> LadderResult:
    """Decode the source once and feed every rung's encoder (and the audio encoder and the thumbnailer).

    Output is constant frame rate at ``info.fps``: each output frame shows the source frame on screen at its
    time (variable-rate sources are resampled that way). Every rung forces an IDR on the first frame at or after
    each ``gop_s`` boundary, so segments of all renditions align exactly.
    """
    fps = info.fps
    out_tb = Fraction(1, 1) / fps
    total = info.total_frames
    gop = Fraction(settings.gop_s).limit_denominator(1000) * fps
    encoders: list[_VideoEncoder] = []
    audio_enc: _AudioEncoder | None = None
    thumbs = _Thumbnailer(thumbnails) if thumbnails is not None else None
    decoded = 0
    last_upright: VideoFrame | None = None
    try:
        inp = av.open(str(src))
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(MEDIA_UNREADABLE, f"the source cannot be opened ({e})") from e
    try:
        ivs = inp.streams.video[0]
        ivs.thread_type = "AUTO"
        ias: AudioStream | None = inp.streams.audio[0] if (encode_audio and inp.streams.audio) else None
        for rung in rungs:
            d = work_dir / rung.name
            _reset_dir(d)
            out = _open_hls(d, gop_s=settings.gop_s)
            st = out.add_stream("libx264", rate=fps)
            st.width, st.height, st.pix_fmt = rung.width, rung.height, "yuv420p"
            st.time_base = out_tb
            st.codec_context.time_base = out_tb
            st.thread_type = "AUTO"
            st.options = settings.x264_options(rung, fps)
            # pixels a hair off square keep every rung at the source's exact display aspect (DASH requires one
            # aspect per adaptation set; players show 426x240 at 16:9 as they should)
            st.codec_context.sample_aspect_ratio = _rung_sar(info, rung)
            encoders.append(_VideoEncoder(rung=rung, container=out, stream=st))
        if ias is not None:
            d = work_dir / "audio"
            _reset_dir(d)
            out = _open_hls(d, gop_s=settings.gop_s)
            layout = "mono" if info.audio_channels == 1 else "stereo"
            ast = out.add_stream("aac", rate=settings.audio_rate)
            ast.layout = layout
            ast.bit_rate = settings.audio_bitrate
            ast.time_base = Fraction(1, settings.audio_rate)
            audio_enc = _AudioEncoder(
                container=out,
                stream=ast,
                resampler=av.AudioResampler(
                    format="fltp", layout=layout, rate=settings.audio_rate, frame_size=1024
                ),
            )

        t0: float | None = None
        # audio that arrives before the first video frame is placed against the video stream's start
        video_start = (
            float(ivs.start_time * ivs.time_base) if ivs.start_time is not None and ivs.time_base else 0.0
        )
        graph: Any | None = None
        held: VideoFrame | None = None
        held_t = 0.0
        next_out = 0
        streams = [ivs] if ias is None else [ivs, ias]

        def emit_until(frame: VideoFrame, until_t: float) -> None:
            # every output frame whose time falls before ``until_t`` shows ``frame``
            nonlocal next_out
            scaled: dict[str, VideoFrame] = {}
            while next_out < total and next_out / fps < until_t - 1e-9:
                n = next_out
                key = n == 0 or (n // gop) != ((n - 1) // gop)
                for enc in encoders:
                    f = scaled.get(enc.rung.name)
                    if f is None:
                        f = frame.reformat(width=enc.rung.width, height=enc.rung.height, format="yuv420p")
                        scaled[enc.rung.name] = f
                    f.pts = n
                    f.time_base = out_tb
                    # x264 must not inherit the source's picture types: only our boundaries are keyframes
                    f.pict_type = PictureType.I if key else PictureType.NONE
                    for pkt in enc.stream.encode(f):
                        enc.container.mux(pkt)
                    enc.frames += 1
                next_out += 1
                if progress is not None:
                    progress(next_out * len(encoders))

        for packet in inp.demux(streams):
            if stop is not None and stop.is_set():
                raise Canceled()
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged packet: skip it, as players do
            for frame in frames:
                if not isinstance(frame, VideoFrame | AudioFrame) or frame.time is None:
                    continue
                if isinstance(frame, VideoFrame):
                    decoded += 1
                    if t0 is None:
                        t0 = frame.time
                    if graph is None and info.rotation:
                        graph = _rotation_graph(frame, info.rotation, ivs.time_base or Fraction(1, 90000))
                    up = _upright(graph, frame)
                    t = frame.time - t0
                    if held is not None:
                        if t <= held_t:
                            continue  # a non-increasing timestamp: keep the frame already on screen
                        if thumbs is not None:
                            thumbs.offer(held, held_t, t)
                        emit_until(held, t)
                    held, held_t = up, t
                    last_upright = up
                elif audio_enc is not None:
                    _encode_audio(audio_enc, frame, video_start if t0 is None else t0)
        if held is not None:
            if thumbs is not None:
                thumbs.offer(held, held_t, float("inf"))
            emit_until(held, float("inf"))
        for enc in encoders:
            for pkt in enc.stream.encode(None):
                enc.container.mux(pkt)
        if audio_enc is not None:
            for af in audio_enc.resampler.resample(None):
                _encode_resampled(audio_enc, af)
            for pkt in audio_enc.stream.encode(None):
                audio_enc.container.mux(pkt)
        codecs = {enc.rung.name: avc_codec_string(enc.stream.codec_context.extradata) for enc in encoders}
    except (Canceled, MediaError):
        raise
    except av.error.FFmpegError as e:
        raise MediaError(TRANSCODE_FAILED, f"transcoding failed ({e})") from e
    finally:
        for enc in encoders:
            enc.container.close()
        if audio_enc is not None:
            audio_enc.container.close()
        inp.close()
    if decoded == 0:
        raise MediaError(MEDIA_UNREADABLE, "no video frame could be decoded")
    outputs = [
        RenditionOutput(
            name=enc.rung.name,
            kind="video",
            directory=work_dir / enc.rung.name,
            width=enc.rung.width,
            height=enc.rung.height,
            codecs=codecs[enc.rung.name],
            frame_rate=float(fps),
            measured=measure_rendition(work_dir / enc.rung.name),
        )
        for enc in encoders
    ]
    if audio_enc is not None:
        outputs.append(
            RenditionOutput(
                name="audio",
                kind="audio",
                directory=work_dir / "audio",
                width=0,
                height=0,
                codecs="mp4a.40.2",
                frame_rate=0.0,
                measured=measure_rendition(work_dir / "audio"),
                channels=1 if info.audio_channels == 1 else 2,
            )
        )
    poster = sprite = vtt = None
    if thumbs is not None and thumbnails is not None:
        poster, sprite = thumbs.finish(last_upright, work_dir / "thumbs")
        vtt = thumbnails_vtt(thumbnails, duration_s=info.duration_s)
    return LadderResult(
        renditions=outputs, poster=poster, sprite=sprite, thumbnails_vtt=vtt, frames_decoded=decoded
    )


#: how far (seconds) audio may sit from its timestamp before silence is inserted or a frame dropped
AUDIO_SYNC_TOLERANCE_S = 0.04


def _encode_audio(enc: _AudioEncoder, frame: Any, t0: float) -> None:
    """Encode one decoded audio frame where its timestamp says, relative to the first video frame.

    The output is a gapless sample count (what AAC in HLS needs), so timing is kept by the count itself: audio
    that starts late or has a hole gets silence in front of it, audio that overlaps what was already written is
    dropped. Without this a late-starting track would play early, out of sync with the picture.
    """
    duration = frame.samples / max(frame.sample_rate, 1)
    start = (frame.time - t0) if frame.time is not None else enc.fed / enc.rate
    if start + duration <= 0:
        return  # entirely before the first video frame
    want = max(0.0, start) * enc.rate
    if want - enc.fed > AUDIO_SYNC_TOLERANCE_S * enc.rate:
        # silence in the source's own format, rate and layout: the resampler accepts only what it was set up with
        rate = max(frame.sample_rate, 1)
        gap = round((want - enc.fed) * rate / enc.rate)
        try:
            for at in range(0, gap, rate):  # a second at a time: a long hole must not become one huge frame
                _feed(enc, _silence_like(frame, min(rate, gap - at)))
        except (ValueError, av.error.FFmpegError) as exc:
            # a layout PyAV cannot build a frame for: keep the audio, unpadded, rather than fail the video
            log.warning("transcode.audio_gap_not_filled", gap_s=round(gap / rate, 3), error=repr(exc))
    elif enc.fed - (want + duration * enc.rate) > AUDIO_SYNC_TOLERANCE_S * enc.rate:
        return  # all of it was already played: a repeated or overlapping frame
    frame.pts = None  # the resampler restamps; we count samples ourselves
    _feed(enc, frame)


def _feed(enc: _AudioEncoder, frame: Any) -> None:
    enc.fed += frame.samples * enc.rate / max(frame.sample_rate, 1)
    for af in enc.resampler.resample(frame):
        _encode_resampled(enc, af)


def _silence_like(like: Any, samples: int) -> AudioFrame:
    """``samples`` of silence in the format, layout and rate of ``like``."""
    frame = AudioFrame(format=like.format.name, layout=like.layout.name, samples=samples)
    fill = b"\x80" if like.format.name.startswith("u8") else b"\x00"  # unsigned 8-bit silence is the midpoint
    for plane in frame.planes:
        plane.update(fill * plane.buffer_size)
    frame.sample_rate = like.sample_rate
    return frame


def _encode_resampled(enc: _AudioEncoder, af: Any) -> None:
    af.pts = enc.samples
    af.time_base = Fraction(1, af.sample_rate)
    enc.samples += af.samples
    for pkt in enc.stream.encode(af):
        enc.container.mux(pkt)


# ---------------------------------------------------------------------------------------------------------- DASH


def package_dash(renditions: Sequence[RenditionOutput], out_dir: Path, *, gop_s: float = 2.0) -> Path:
    """Remux finished renditions (no re-encode) into a DASH presentation: ``manifest.mpd`` + ``dash/*.m4s``."""
    _reset_dir(out_dir)
    (out_dir / "dash").mkdir()
    inputs = [av.open(str(r.directory / "index.m3u8")) for r in renditions]
    mpd = out_dir / "manifest.mpd"
    try:
        out = av.open(
            str(mpd),
            "w",
            format="dash",
            options={
                "seg_duration": f"{gop_s:g}",
                "use_template": "1",
                "use_timeline": "1",
                "init_seg_name": "dash/init-$RepresentationID$.m4s",
                "media_seg_name": "dash/chunk-$RepresentationID$-$Number%05d$.m4s",
            },
        )
        try:
            outs = []
            for inp in inputs:
                ist = inp.streams[0]
                outs.append(out.add_stream_from_template(ist))
            for i, packet in _merge_packets(inputs):
                packet.stream = outs[i]
                out.mux(packet)
        finally:
            out.close()
    finally:
        for inp in inputs:
            inp.close()
    mpd.write_text(merge_video_adaptation_sets(mpd.read_text()))
    return mpd


_MPD_NS = "urn:mpeg:dash:schema:mpd:2011"


def merge_video_adaptation_sets(xml: str) -> str:
    """One video AdaptationSet holding every rung, so DASH players switch between them.

    The dash muxer refuses to group rungs whose pixel aspect differs by rounding (426x240 next to 640x360), so
    it writes one set per stream and we regroup them; the segments are aligned, which is what switching needs.
    """
    ET.register_namespace("", _MPD_NS)
    root = ET.fromstring(xml)
    ns = {"m": _MPD_NS}
    for period in root.findall("m:Period", ns):
        sets = [a for a in period.findall("m:AdaptationSet", ns) if a.get("contentType") == "video"]
        if len(sets) < 2:
            continue
        first = sets[0]
        for extra in sets[1:]:
            for rep in extra.findall("m:Representation", ns):
                first.append(rep)
            period.remove(extra)
        reps = first.findall("m:Representation", ns)
        first.set("maxWidth", str(max(int(r.get("width", "0")) for r in reps)))
        first.set("maxHeight", str(max(int(r.get("height", "0")) for r in reps)))
        first.attrib.pop("par", None)
        first.set("bitstreamSwitching", "false")
    body: str = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def _merge_packets(inputs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
    """Packets of several single-stream inputs in time order (so the muxer never buffers a whole input)."""
    iters = [(i, inp.demux(inp.streams[0])) for i, inp in enumerate(inputs)]
    heap: list[tuple[float, int, Any]] = []

    def push(i: int, it: Iterator[Any]) -> None:
        for p in it:
            if p.dts is None or p.size == 0:
                continue
            heapq.heappush(heap, (float(p.dts * p.time_base), i, p))
            return

    for i, it in iters:
        push(i, it)
    while heap:
        _, i, p = heapq.heappop(heap)
        yield i, p
        push(i, iters[i][1])
