"""Compose a "Top N" short in one encode pass with PyAV: intro card, each clip fitted to 1080x1920 with its
layers, outro card; H.264 High 30 fps (capped bitrate) + AAC 48 kHz stereo in a ``+faststart`` MP4.

Each clip's window is decoded once (after a seek), frames stream through a filter graph (rotation, fit over a
blurred zoomed copy or fill, overlays) into the one encoder: no intermediate file, no whole-clip buffer. Audio is
read per clip in a measuring pass first (loudness), then again beside its video with the gain that normalises it.
Pure domain work on local files; synchronous, meant for a worker thread.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
from av.video.frame import PictureType, VideoFrame
from PIL import Image

from common import x264

from . import audio
from .errors import (
    CLIP_TOO_SHORT,
    MEDIA_NO_VIDEO,
    MEDIA_UNREADABLE,
    RENDER_FAILED,
    Canceled,
    RenderError,
)
from .layout import FPS, HEIGHT, WIDTH, Layout, Target, layout_for
from .overlays import ItemText, Layer, check_texts, clip_layers, intro_card, outro_card
from .text import FontChain

SAMPLES_PER_FRAME = audio.RATE // FPS
#: a source whose width/height is at most this is "vertical": it fills the frame (cropped a little);
#: anything wider sits centred over a blurred, zoomed copy of itself
FILL_MAX_ASPECT = 0.7
#: the blurred background is made at a quarter of the frame's size (cheap), blurred there, then scaled up
BG_W, BG_H = WIDTH // 4, HEIGHT // 4
BG_SIGMA = 8

ProgressFn = Callable[[float, str], None]


class ShortClipPolicy(StrEnum):
    """What to do with a clip shorter than its asked window."""

    USE_WHOLE = "use_whole"
    REFUSE = "refuse"


@dataclass(frozen=True, kw_only=True)
class EncodeSettings(x264.EncoderBase):
    """x264/AAC settings (the benchmark's ffmpeg CLI baseline uses the very same)."""

    crf: int = 23
    maxrate_kbps: int = 6000
    bufsize_kbps: int = 12000

    def x264_options(self) -> dict[str, str]:
        """libx264 options: High profile, capped CRF (VBV), 2-s closed GOPs."""
        return x264.capped_crf(
            preset=self.preset,
            crf=self.crf,
            maxrate_kbps=self.maxrate_kbps,
            bufsize_kbps=self.bufsize_kbps,
            gop_frames=round(self.gop_s * FPS),
        )


@dataclass(frozen=True, kw_only=True)
class ClipSource:
    """One ranked clip: a local file, the window asked for, and what is written over it."""

    path: Path
    start_s: float
    end_s: float
    rank: int
    title: str = ""
    uploader: str = ""
    platform: str = ""

    @property
    def text(self) -> ItemText:
        """Its texts for the layers."""
        return ItemText(rank=self.rank, title=self.title, uploader=self.uploader, platform=self.platform)


@dataclass(frozen=True, kw_only=True)
class RenderSpec:
    """What to render: clips in play order (countdown or top-down is the caller's choice of order)."""

    title: str
    target: Target
    clips: Sequence[ClipSource]
    intro_s: float = 1.5
    outro_s: float = 3.0
    short_clips: ShortClipPolicy = ShortClipPolicy.USE_WHOLE
    #: a clip shorter than this is refused whatever the policy
    min_clip_s: float = 1.0
    encode: EncodeSettings = field(default_factory=EncodeSettings)


def estimate_seconds(spec: RenderSpec) -> float:
    """The output's length if every clip is as long as asked (for pricing before any file is read); the
    rendered length (``RenderResult.duration_s``) is never longer."""
    frames = sum(max(1, math.floor((c.end_s - c.start_s) * FPS + 1e-6)) for c in spec.clips)
    return (round(spec.intro_s * FPS) + frames + round(spec.outro_s * FPS)) / FPS


@dataclass(frozen=True, kw_only=True)
class ClipInfo:
    """What composing needs to know about a clip's file."""

    duration_s: float
    width: int  # displayed (after rotation)
    height: int
    rotation: int  # counter-clockwise degrees: 0, 90, 180, 270
    has_audio: bool


@dataclass(frozen=True, kw_only=True)
class ClipPlan:
    """A clip's window as it will be used, and its audio gain."""

    source: ClipSource
    info: ClipInfo
    start_s: float
    frames: int
    loudness: audio.Loudness = audio.NO_SOUND
    gain_db: float = 0.0

    @property
    def seconds(self) -> float:
        """Its length in the output."""
        return self.frames / FPS


@dataclass(frozen=True, kw_only=True)
class RenderResult:
    """The finished file and what it holds."""

    path: Path
    duration_s: float
    frames: int
    clips: list[ClipPlan]
    loudness: audio.Loudness
    encode_s: float


# -------------------------------------------------------------------------------------------------------- probe


def _rotation(frame: VideoFrame) -> int:
    return round((frame.rotation or 0) / 90.0) * 90 % 360


def probe_clip(path: Path) -> ClipInfo:
    """Open a clip and decode its first frame; ``media.*`` codes when that fails."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise RenderError(MEDIA_UNREADABLE, f"the clip is not a readable media file ({e})") from e
    with container:
        if not container.streams.video:
            raise RenderError(MEDIA_NO_VIDEO, "the clip has no video stream")
        vs = container.streams.video[0]
        try:
            first = next(container.decode(vs))
        except (StopIteration, av.error.FFmpegError) as e:
            raise RenderError(MEDIA_UNREADABLE, "the first frame of the clip cannot be decoded") from e
        rotation = _rotation(first)
        w, h = first.width, first.height
        if rotation in (90, 270):
            w, h = h, w
        if vs.duration and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        else:
            duration = float(container.duration or 0) / 1_000_000
        if duration <= 0:
            raise RenderError(MEDIA_UNREADABLE, "the clip has no duration")
        return ClipInfo(
            duration_s=duration, width=w, height=h, rotation=rotation, has_audio=bool(container.streams.audio)
        )


def plan_clip(
    clip: ClipSource, info: ClipInfo, *, policy: ShortClipPolicy, min_clip_s: float = 1.0
) -> ClipPlan:
    """The window used: the one asked for, moved back inside the clip if it runs past the end; a clip shorter
    than asked is used whole or refused (``render.clip_too_short``), never looped."""
    want = clip.end_s - clip.start_s
    if want <= 0:
        raise RenderError(
            CLIP_TOO_SHORT, f"rank {clip.rank}: the window ends before it starts", rank=clip.rank
        )
    have = info.duration_s
    if have + 1e-3 < want and (policy == ShortClipPolicy.REFUSE or have < min_clip_s):
        raise RenderError(
            CLIP_TOO_SHORT,
            f"rank {clip.rank}: the clip is {have:.2f} s long, {want:.2f} s were asked",
            rank=clip.rank,
            clip_s=round(have, 3),
            asked_s=round(want, 3),
        )
    seconds = min(want, have)
    start = max(0.0, min(clip.start_s, have - seconds))
    frames = max(1, math.floor(seconds * FPS + 1e-6))
    return ClipPlan(source=clip, info=info, start_s=start, frames=frames)


# ------------------------------------------------------------------------------------------------ filter graphs


@dataclass(frozen=True, kw_only=True)
class Fit:
    """How a source fills 1080x1920: ``fill`` (cover and crop) or ``blur`` (fitted to the width, centred, over a
    blurred zoomed copy)."""

    mode: str
    fg_height: int = HEIGHT

    @property
    def fg_y(self) -> int:
        """Top row of the fitted picture."""
        return ((HEIGHT - self.fg_height) // 2) & ~1


def fit_for(width: int, height: int) -> Fit:
    """The fit of a ``width`` x ``height`` (displayed) source."""
    if width / height <= FILL_MAX_ASPECT:
        return Fit(mode="fill")
    return Fit(mode="blur", fg_height=min(HEIGHT, max(2, round(WIDTH * height / width / 2) * 2)))


def fit_filters(fit: Fit) -> list[tuple[str, str, str]]:
    """The fit as ``(label, filter, args)`` nodes of a filtergraph over the input ``in`` giving ``fit``.

    Labels say how nodes connect: ``a>b`` reads from ``a`` into ``b``; an overlay lists its two inputs
    ``main+over``. The same description builds the PyAV graph and the benchmark's ffmpeg ``filter_complex``.
    """
    if fit.mode == "fill":
        return [
            ("in>cover", "scale", f"w={WIDTH}:h={HEIGHT}:force_original_aspect_ratio=increase"),
            ("cover>fit", "crop", f"{WIDTH}:{HEIGHT}"),
        ]
    return [
        ("in>a,b", "split", "2"),
        ("a>bg0", "scale", f"w={BG_W}:h={BG_H}:force_original_aspect_ratio=increase"),
        ("bg0>bg1", "crop", f"{BG_W}:{BG_H}"),
        ("bg1>bg2", "gblur", f"sigma={BG_SIGMA}"),
        ("bg2>bg", "scale", f"w={WIDTH}:h={HEIGHT}:flags=bilinear"),
        ("b>fg", "scale", f"w={WIDTH}:h={fit.fg_height}"),
        ("bg+fg>fit", "overlay", f"x=0:y={fit.fg_y}"),
    ]


def overlay_filters(positions: Sequence[tuple[int, int]], src: str = "fit") -> list[tuple[str, str, str]]:
    """Overlays of layers (inputs ``l0``, ``l1``, ... at ``positions``) over ``src``, giving ``out``."""
    nodes: list[tuple[str, str, str]] = []
    prev = src
    for i, (x, y) in enumerate(positions):
        nxt = "out" if i == len(positions) - 1 else f"o{i}"
        nodes.append((f"{prev}+l{i}>{nxt}", "overlay", f"x={x}:y={y}"))
        prev = nxt
    if not positions:
        nodes.append((f"{src}>out", "null", ""))
    return nodes


def rotation_filters(rotation: int) -> list[tuple[str, str, str]]:
    """Turn frames upright (what ``ffmpeg -autorotate`` does), from ``raw`` to ``in``."""
    chain = {
        90: [("transpose", "cclock")],
        270: [("transpose", "clock")],
        180: [("hflip", ""), ("vflip", "")],
    }.get(rotation, [])
    if not chain:
        return [("raw>in", "null", "")]
    nodes = []
    for i, (name, arg) in enumerate(chain):
        a = "raw" if i == 0 else f"r{i}"
        b = "in" if i == len(chain) - 1 else f"r{i + 1}"
        nodes.append((f"{a}>{b}", name, arg))
    return nodes


def filter_complex(
    nodes: Sequence[tuple[str, str, str]],
    inputs: dict[str, str],
    *,
    prefix: str = "",
    keep: frozenset[str] = frozenset(),
) -> str:
    """The nodes as an ffmpeg ``-filter_complex`` string: ``inputs`` maps labels to stream specifiers, other
    labels get ``prefix`` (unique per clip) unless in ``keep``."""

    def pad(x: str) -> str:
        return f"[{inputs[x]}]" if x in inputs else f"[{x}]" if x in keep else f"[{prefix}{x}]"

    parts = []
    for label, name, args in nodes:
        ins, outs = label.split(">")
        pads_in = "".join(pad(x) for x in ins.split("+"))
        pads_out = "".join(pad(x) for x in outs.split(","))
        parts.append(f"{pads_in}{name}{'=' + args if args else ''}{pads_out}")
    return ";".join(parts)


class LayerBlend:
    """A layer ready to blend into yuv420p frames: its planes premultiplied by its alpha, once.

    Measured against FFmpeg's ``overlay`` filter for a clip's three layers: 0.26 ms a frame in numpy against 1.04 ms
    through the filter graph (docs/render.md), so the graph only fits the picture and numpy lays the text on it.
    """

    def __init__(self, layer: Layer) -> None:
        yuva = _rgba_frame(layer.image).reformat(format="yuva420p")
        y, u, v, a = (_plane(p, p.width, p.height) for p in yuva.planes)
        alpha = a.astype(np.uint16)
        h, w = alpha.shape
        chroma_alpha = alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).round().astype(np.uint16)
        self.x, self.y = layer.x, layer.y
        self.luma = (y.astype(np.uint16) * alpha, 255 - alpha)
        self.chroma = (
            u.astype(np.uint16) * chroma_alpha,
            v.astype(np.uint16) * chroma_alpha,
            255 - chroma_alpha,
        )

    def apply(self, frame: VideoFrame) -> None:
        """Blend into ``frame`` (yuv420p, written in place): ``out = (dst * (255 - a) + src * a) / 255``."""
        planes = frame.planes
        src, inv = self.luma
        h, w = inv.shape
        dst = _plane(planes[0], frame.width, frame.height)[self.y : self.y + h, self.x : self.x + w]
        dst[...] = (dst * inv + src) // 255
        u_src, v_src, c_inv = self.chroma
        ch, cw = c_inv.shape
        cy, cx = self.y // 2, self.x // 2
        for plane, csrc in ((planes[1], u_src), (planes[2], v_src)):
            d = _plane(plane, frame.width // 2, frame.height // 2)[cy : cy + ch, cx : cx + cw]
            d[...] = (d * c_inv + csrc) // 255


def _plane(plane: Any, width: int, height: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """A frame plane as a writable ``height`` x ``width`` uint8 view (without the line padding)."""
    return np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)[:, :width]


class ClipGraph:
    """One clip's picture: a PyAV filter graph (upright, fitted, yuv420p) then its layers blended on."""

    def __init__(
        self, first: VideoFrame, plan: ClipPlan, layers: Sequence[Layer], time_base: Fraction
    ) -> None:
        self.graph = av.filter.Graph()
        g = self.graph
        nodes: dict[str, Any] = {
            "raw": g.add_buffer(
                width=first.width, height=first.height, format=first.format, time_base=time_base
            )
        }
        spec = [
            *rotation_filters(plan.info.rotation),
            *fit_filters(fit_for(plan.info.width, plan.info.height)),
            ("fit>fmt", "format", "yuv420p"),
        ]
        for label, name, args in spec:
            ins, outs = label.split(">")
            node = g.add(name, args) if args else g.add(name)
            for pad, src in enumerate(ins.split("+")):
                upstream, out_pad = nodes[src] if isinstance(nodes[src], tuple) else (nodes[src], 0)
                upstream.link_to(node, out_pad, pad)
            out_labels = outs.split(",")
            for pad, lab in enumerate(out_labels):
                nodes[lab] = (node, pad) if len(out_labels) > 1 else node
        self.sink = g.add("buffersink")
        nodes["fmt"].link_to(self.sink)
        g.configure()
        self.time_base = time_base
        self.raw = nodes["raw"]
        self.blends = [LayerBlend(layer) for layer in layers]

    def process(self, frame: VideoFrame, pts: int) -> VideoFrame:
        """The composed output frame for ``frame``."""
        frame.pts = pts
        frame.time_base = self.time_base
        self.raw.push(frame)
        out = self.sink.pull()
        assert isinstance(out, VideoFrame)
        out.make_writable()
        for blend in self.blends:
            blend.apply(out)
        return out


# ---------------------------------------------------------------------------------------------------- rendering


def _rgba_frame(img: Image.Image) -> VideoFrame:
    return VideoFrame.from_ndarray(np.asarray(img.convert("RGBA")), format="rgba")


def _static_frame(img: Image.Image) -> VideoFrame:
    frame = VideoFrame.from_ndarray(np.asarray(img.convert("RGB")), format="rgb24")
    return frame.reformat(format="yuv420p")


class _Output:
    """The one MP4: video and audio encoders, frame and sample counters, progress and cancel."""

    def __init__(
        self,
        path: Path,
        enc: EncodeSettings,
        *,
        total_frames: int,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> None:
        self.container: Any = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        vs: Any = self.container.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vs.time_base = Fraction(1, FPS)
        vs.codec_context.time_base = Fraction(1, FPS)
        vs.thread_type = "AUTO"
        vs.options = enc.x264_options()
        self.video = vs
        a: Any = self.container.add_stream("aac", rate=audio.RATE)
        a.layout = "stereo"
        a.bit_rate = enc.audio_bitrate
        a.time_base = Fraction(1, audio.RATE)
        self.audio = a
        self.sound = audio.OutputAudio(frame_size=1024)
        self.frames = 0
        self.total = max(1, total_frames)
        self.progress, self.cancel = progress, cancel

    def video_frame(self, frame: VideoFrame) -> None:
        """Encode the next output frame (the same frame object may be given again: a held or static frame)."""
        if self.cancel is not None and self.cancel.is_set():
            raise Canceled()
        frame.pts = self.frames
        frame.time_base = Fraction(1, FPS)
        frame.pict_type = PictureType.NONE
        for pkt in self.video.encode(frame):
            self.container.mux(pkt)
        self.frames += 1
        if self.progress is not None and self.frames % 15 == 0:
            self.progress(100.0 * self.frames / self.total, "encoding")

    def audio_block(self, block: audio.Block, gain_db: float = 0.0) -> None:
        """Encode a block of the programme's audio."""
        self._encode_audio(self.sound.write(block, gain_db))

    def _encode_audio(self, frames: Sequence[av.AudioFrame]) -> None:
        for f in frames:
            for pkt in self.audio.encode(f):
                self.container.mux(pkt)

    def finish(self) -> None:
        """Flush the limiter and both encoders."""
        self._encode_audio(self.sound.close())
        for pkt in self.audio.encode(None):
            self.container.mux(pkt)
        for pkt in self.video.encode(None):
            self.container.mux(pkt)

    def close(self) -> None:
        """Close the file (writes the index at the front: ``+faststart``)."""
        self.container.close()


def _static(out: _Output, img: Image.Image, frames: int) -> None:
    """A card held for ``frames`` frames, with silence under it."""
    frame = _static_frame(img)
    for _ in range(frames):
        out.video_frame(frame)
    for block in audio.silence(frames * SAMPLES_PER_FRAME):
        out.audio_block(block)


class _AudioFeed:
    """A clip's audio, pulled block by block as its video frames go out (keeps the MP4 interleaved)."""

    def __init__(self, plan: ClipPlan) -> None:
        self.total = plan.frames * SAMPLES_PER_FRAME
        self.blocks: Iterator[audio.Block] = audio.read_window(plan.source.path, plan.start_s, self.total)
        self.gain = plan.gain_db
        self.written = 0

    def until(self, out: _Output, samples: int) -> None:
        while self.written < min(samples, self.total):
            block = next(self.blocks, None)
            if block is None:
                return
            out.audio_block(block, self.gain)
            self.written += block.shape[1]


class _ClipVideo:
    """A clip's decoded frames on the output's 30 fps clock: each output frame is the source frame on screen at
    its time, composed once however many output frames hold it; its audio follows frame by frame."""

    def __init__(self, out: _Output, plan: ClipPlan, layers: Sequence[Layer], feed: _AudioFeed) -> None:
        self.out, self.plan, self.layers, self.feed = out, plan, layers, feed
        self.graph: ClipGraph | None = None
        self.held: VideoFrame | None = None  # the source frame on screen
        self.composed: VideoFrame | None = None  # ``held`` through the graph, once it is needed
        self.n = 0  # output frames sent

    def show(self, frame: VideoFrame) -> bool:
        """Send the output frames before ``frame``'s time, then hold it; False once the window is full."""
        assert frame.time is not None
        if self.held is not None:
            self.emit_until(frame.time - self.plan.start_s)
        if self.n >= self.plan.frames:
            return False
        if self.graph is None:
            self.graph = ClipGraph(frame, self.plan, self.layers, Fraction(1, FPS))
        self.held, self.composed = frame, None
        return True

    def emit_until(self, t: float) -> None:
        """Send the held frame for every output time before ``t`` (seconds into the window), audio alongside."""
        assert self.held is not None and self.graph is not None
        while self.n < self.plan.frames and self.n / FPS < t - 1e-6:
            if self.composed is None:
                self.composed = self.graph.process(self.held, self.n)
            self.out.video_frame(self.composed)
            self.n += 1
            self.feed.until(self.out, self.n * SAMPLES_PER_FRAME)


def _clip(out: _Output, plan: ClipPlan, layers: Sequence[Layer]) -> None:
    """Decode the clip's window once and send ``plan.frames`` composed frames (30 fps: the frame on screen at each
    output time) and its audio to the output."""
    feed = _AudioFeed(plan)
    try:
        container = av.open(str(plan.source.path))
    except (av.error.FFmpegError, OSError) as e:
        raise RenderError(
            MEDIA_UNREADABLE, f"rank {plan.source.rank}: the clip cannot be opened ({e})"
        ) from e
    with container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        tb = vs.time_base or Fraction(1, 90000)
        if plan.start_s > 0:
            container.seek(max(0, math.floor(plan.start_s / tb)), stream=vs, backward=True)
        video = _ClipVideo(out, plan, layers, feed)
        _decode_into(container, vs, video)
        if video.held is None:
            raise RenderError(
                MEDIA_UNREADABLE, f"rank {plan.source.rank}: no frame of the clip can be decoded"
            )
        video.emit_until(math.inf)
    feed.until(out, feed.total)


def _decode_into(container: Any, stream: Any, video: _ClipVideo) -> None:
    """Show ``stream``'s decoded frames in turn until the window is full or they run out."""
    try:
        for frame in container.decode(stream):
            if frame.time is not None and not video.show(frame):
                break
    except av.error.InvalidDataError:
        pass  # a damaged tail: the last good frame is held to the end of the window


#: how often (in samples of a clip's audio) the loudness pass reports its progress
PREPARE_REPORT_SAMPLES = audio.RATE


def _watched(
    blocks: Iterator[audio.Block], *, cancel: threading.Event | None, done: Callable[[int], None]
) -> Iterator[audio.Block]:
    """``blocks`` as they come, ``Canceled`` as soon as ``cancel`` is set (checked before every decoded block, a few
    ms of audio, so a long clip's pass stops within a block), ``done(samples so far)`` about every second of audio."""
    seen = reported = 0
    for block in blocks:
        if cancel is not None and cancel.is_set():
            raise Canceled()
        yield block
        seen += block.shape[1]
        if seen - reported >= PREPARE_REPORT_SAMPLES:
            reported = seen
            done(seen)


def prepare(
    spec: RenderSpec, *, progress: ProgressFn | None = None, cancel: threading.Event | None = None
) -> list[ClipPlan]:
    """Probe every clip, fix its window, measure its loudness (the first pass over its audio). ``cancel`` is checked
    before each clip and before every decoded block of its loudness pass; ``progress`` moves within a clip's pass."""
    plans: list[ClipPlan] = []
    for i, clip in enumerate(spec.clips):
        if cancel is not None and cancel.is_set():
            raise Canceled()
        try:
            info = probe_clip(clip.path)
        except RenderError as e:  # say which clip it is
            raise RenderError(
                e.code, f"rank {clip.rank}: {e.message}", **{**e.details, "rank": clip.rank}
            ) from e
        plan = plan_clip(clip, info, policy=spec.short_clips, min_clip_s=spec.min_clip_s)
        if info.has_audio:
            samples = plan.frames * SAMPLES_PER_FRAME

            def done(n: int, i: int = i, samples: int = samples) -> None:
                if progress is not None:
                    progress(100.0 * (i + n / samples) / len(spec.clips), "preparing")

            with contextlib.closing(audio.read_window(clip.path, plan.start_s, samples)) as blocks:
                measured = audio.measure(_watched(blocks, cancel=cancel, done=done))
        else:
            measured = audio.NO_SOUND
        plans.append(
            ClipPlan(
                source=clip,
                info=info,
                start_s=plan.start_s,
                frames=plan.frames,
                loudness=measured,
                gain_db=audio.gain_db(measured),
            )
        )
        if progress is not None:
            progress(100.0 * (i + 1) / max(1, len(spec.clips)), "preparing")
    return plans


def render_short(
    spec: RenderSpec,
    out_path: Path,
    *,
    fonts: FontChain | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> RenderResult:
    """Render ``spec`` into ``out_path`` (an MP4). ``progress(percent, stage)`` is called per stage
    (``preparing``, ``composing`` once as the single pass starts, then ``encoding`` by frames); ``cancel`` is checked
    between blocks of the loudness pass and between frames (``Canceled``). Raises
    ``RenderError`` with a stable code; a partial file is removed."""
    if not spec.clips:
        raise RenderError(CLIP_TOO_SHORT, "a short needs at least one clip")
    chain = fonts or FontChain.installed()
    layout = layout_for(spec.target)
    check_texts(chain, spec.title, [c.text for c in spec.clips])
    plans = prepare(spec, progress=progress, cancel=cancel)
    if progress is not None:
        progress(
            0.0, "composing"
        )  # the one pass starts: layers drawn, frames composed and encoded as they come
    started = time.perf_counter()
    intro_frames = round(spec.intro_s * FPS)
    outro_frames = round(spec.outro_s * FPS)
    total = intro_frames + sum(p.frames for p in plans) + outro_frames
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        out = _Output(out_path, spec.encode, total_frames=total, progress=progress, cancel=cancel)
        try:
            _compose(out, spec, plans, layout, chain, intro_frames, outro_frames)
            out.finish()
        finally:
            out.close()
    except av.error.FFmpegError as e:
        out_path.unlink(missing_ok=True)
        raise RenderError(RENDER_FAILED, f"encoding failed ({e})") from e
    except BaseException:  # RenderError, Canceled, anything: no partial file is left
        out_path.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(100.0, "encoding")
    return RenderResult(
        path=out_path,
        duration_s=out.frames / FPS,
        frames=out.frames,
        clips=plans,
        loudness=out.sound.loudness,
        encode_s=time.perf_counter() - started,
    )


def _compose(
    out: _Output,
    spec: RenderSpec,
    plans: Sequence[ClipPlan],
    layout: Layout,
    chain: FontChain,
    intro_frames: int,
    outro_frames: int,
) -> None:
    if intro_frames:
        _static(out, intro_card(layout, spec.title, chain), intro_frames)
    for plan in plans:
        _clip(out, plan, clip_layers(layout, plan.source.text, chain))
    if outro_frames:
        _static(out, outro_card(layout, [c.text for c in spec.clips], chain), outro_frames)
