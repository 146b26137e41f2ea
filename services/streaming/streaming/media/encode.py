"""The ladder encode: decode the source once and feed every rung's encoder, the audio encoder and the thumbnailer.

Output is constant frame rate at ``info.fps``: each output frame shows the source frame on screen at its time
(variable-rate sources are resampled that way). Every rung forces an IDR on the first frame at or after each
``gop_s`` boundary, so segments of all renditions align exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.audio.frame import AudioFrame
from av.video.frame import PictureType, VideoFrame

from . import audio as aac
from .errors import MEDIA_UNREADABLE, TRANSCODE_FAILED, Canceled, MediaError
from .hls import avc_codec_string, measure_rendition
from .ladder import EncoderSettings, Rung
from .output import RenditionOutput, open_hls, reset_dir
from .probe import SourceInfo
from .thumbnails import Thumbnailer, ThumbnailPlan, thumbnails_vtt


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
class VideoEncoder:
    """One rung being written: its muxer and x264 stream."""

    rung: Rung
    container: Any
    stream: Any
    frames: int = 0

    def encode(self, frame: VideoFrame | None) -> None:
        """Encode ``frame`` (None drains the encoder) and mux what comes out."""
        for pkt in self.stream.encode(frame):
            self.container.mux(pkt)
        if frame is not None:
            self.frames += 1


def open_video_encoder(
    work_dir: Path, rung: Rung, info: SourceInfo, settings: EncoderSettings
) -> VideoEncoder:
    """An x264 encoder for ``rung`` writing HLS into ``work_dir/<rung>``."""
    d = work_dir / rung.name
    reset_dir(d)
    out = open_hls(d, gop_s=settings.gop_s)
    st = out.add_stream("libx264", rate=info.fps)
    out_tb = Fraction(1, 1) / info.fps
    st.width, st.height, st.pix_fmt = rung.width, rung.height, "yuv420p"
    st.time_base = out_tb
    st.codec_context.time_base = out_tb
    st.thread_type = "AUTO"
    st.options = settings.x264_options(rung, info.fps)
    # pixels a hair off square keep every rung at the source's exact display aspect (DASH requires one
    # aspect per adaptation set; players show 426x240 at 16:9 as they should)
    st.codec_context.sample_aspect_ratio = _rung_sar(info, rung)
    return VideoEncoder(rung=rung, container=out, stream=st)


@dataclass
class _LadderPass:
    """The state of one decode pass: which source frame is on screen and which output frame comes next."""

    info: SourceInfo
    gop_s: float
    encoders: list[VideoEncoder]
    audio: aac.AudioEncoder | None
    thumbs: Thumbnailer | None
    progress: ProgressFn | None
    video_time_base: Fraction
    #: where audio that arrives before the first video frame is placed (the video stream's start)
    video_start: float
    decoded: int = 0
    next_out: int = 0
    t0: float | None = None
    graph: Any | None = None
    held: VideoFrame | None = None
    held_t: float = 0.0
    last_upright: VideoFrame | None = None
    gop: Fraction = field(init=False)

    def __post_init__(self) -> None:
        self.gop = Fraction(self.gop_s).limit_denominator(1000) * self.info.fps

    def run(self, packets: Iterable[Any], stop: threading.Event | None) -> None:
        """Decode every packet (a damaged one is skipped, as players do); ``Canceled`` when ``stop`` is set."""
        for packet in packets:
            if stop is not None and stop.is_set():
                raise Canceled()
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                self.take(frame)

    def take(self, frame: Any) -> None:
        """One decoded frame: video moves the picture timeline on, audio is placed against it."""
        if not isinstance(frame, VideoFrame | AudioFrame) or frame.time is None:
            return
        if isinstance(frame, VideoFrame):
            self._video(frame, frame.time)
        elif self.audio is not None:
            aac.encode_audio(self.audio, frame, self.video_start if self.t0 is None else self.t0)

    def _video(self, frame: VideoFrame, time: float) -> None:
        self.decoded += 1
        if self.t0 is None:
            self.t0 = time
        if self.graph is None and self.info.rotation:
            self.graph = _rotation_graph(frame, self.info.rotation, self.video_time_base)
        up = _upright(self.graph, frame)
        t = time - self.t0
        if self.held is not None:
            if t <= self.held_t:
                return  # a non-increasing timestamp: keep the frame already on screen
            if self.thumbs is not None:
                self.thumbs.offer(self.held, self.held_t, t)
            self._emit_until(self.held, t)
        self.held, self.held_t = up, t
        self.last_upright = up

    def _emit_until(self, frame: VideoFrame, until_t: float) -> None:
        """Every output frame whose time falls before ``until_t`` shows ``frame``."""
        fps, total = self.info.fps, self.info.total_frames
        out_tb = Fraction(1, 1) / fps
        scaled: dict[str, VideoFrame] = {}
        while self.next_out < total and self.next_out / fps < until_t - 1e-9:
            n = self.next_out
            key = n == 0 or (n // self.gop) != ((n - 1) // self.gop)
            for enc in self.encoders:
                f = scaled.get(enc.rung.name)
                if f is None:
                    f = frame.reformat(width=enc.rung.width, height=enc.rung.height, format="yuv420p")
                    scaled[enc.rung.name] = f
                f.pts = n
                f.time_base = out_tb
                # x264 must not inherit the source's picture types: only our boundaries are keyframes
                f.pict_type = PictureType.I if key else PictureType.NONE
                enc.encode(f)
            self.next_out += 1
            if self.progress is not None:
                self.progress(self.next_out * len(self.encoders))

    def finish(self) -> None:
        """The last frame fills the timeline to its end; drain every encoder."""
        if self.held is not None:
            if self.thumbs is not None:
                self.thumbs.offer(self.held, self.held_t, float("inf"))
            self._emit_until(self.held, float("inf"))
        for enc in self.encoders:
            enc.encode(None)
        if self.audio is not None:
            aac.flush_audio(self.audio)


def _open_source(src: Path) -> Any:
    try:
        return av.open(str(src))
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(MEDIA_UNREADABLE, "the source cannot be opened") from e


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
    """Decode the source once and feed every rung's encoder (and the audio encoder and the thumbnailer)."""
    encoders: list[VideoEncoder] = []
    audio: aac.AudioEncoder | None = None
    inp = _open_source(src)
    try:
        ivs = inp.streams.video[0]
        ivs.thread_type = "AUTO"
        ias = inp.streams.audio[0] if (encode_audio and inp.streams.audio) else None
        for rung in rungs:
            encoders.append(open_video_encoder(work_dir, rung, info, settings))
        if ias is not None:
            audio = aac.open_audio_encoder(work_dir, info, settings)
        state = _LadderPass(
            info=info,
            gop_s=settings.gop_s,
            encoders=encoders,
            audio=audio,
            thumbs=Thumbnailer(thumbnails) if thumbnails is not None else None,
            progress=progress,
            video_time_base=ivs.time_base or Fraction(1, 90000),
            video_start=float(ivs.start_time * ivs.time_base)
            if ivs.start_time is not None and ivs.time_base
            else 0.0,
        )
        state.run(inp.demux([ivs] if ias is None else [ivs, ias]), stop)
        state.finish()
        codecs = {enc.rung.name: avc_codec_string(enc.stream.codec_context.extradata) for enc in encoders}
    except (Canceled, MediaError):
        raise
    except av.error.FFmpegError as e:
        raise MediaError(TRANSCODE_FAILED, "transcoding failed") from e
    finally:
        for enc in encoders:
            enc.container.close()
        if audio is not None:
            audio.container.close()
        inp.close()
    if state.decoded == 0:
        raise MediaError(MEDIA_UNREADABLE, "no video frame could be decoded")
    return _result(work_dir, state, codecs, thumbnails)


def _result(
    work_dir: Path, state: _LadderPass, codecs: dict[str, str], thumbnails: ThumbnailPlan | None
) -> LadderResult:
    """Measure what the pass wrote; write the poster and sprite."""
    info = state.info
    outputs = [
        RenditionOutput(
            name=enc.rung.name,
            kind="video",
            directory=work_dir / enc.rung.name,
            width=enc.rung.width,
            height=enc.rung.height,
            codecs=codecs[enc.rung.name],
            frame_rate=float(info.fps),
            measured=measure_rendition(work_dir / enc.rung.name),
        )
        for enc in state.encoders
    ]
    if state.audio is not None:
        outputs.append(aac.audio_output(work_dir, info))
    poster = sprite = vtt = None
    if state.thumbs is not None and thumbnails is not None:
        poster, sprite = state.thumbs.finish(state.last_upright, work_dir / "thumbs")
        vtt = thumbnails_vtt(thumbnails, duration_s=info.duration_s)
    return LadderResult(
        renditions=outputs, poster=poster, sprite=sprite, thumbnails_vtt=vtt, frames_decoded=state.decoded
    )
