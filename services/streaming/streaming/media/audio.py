"""The audio rendition: AAC-LC at one rate, its sample count kept in step with the picture's timeline."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.audio.frame import AudioFrame

from common.logging import get_logger

from .errors import MEDIA_UNREADABLE, TRANSCODE_FAILED, Canceled, MediaError
from .hls import measure_rendition
from .ladder import EncoderSettings
from .output import RenditionOutput, open_hls, reset_dir
from .probe import SourceInfo

log = get_logger(__name__)

#: how far (seconds) audio may sit from its timestamp before silence is inserted or a frame dropped
AUDIO_SYNC_TOLERANCE_S = 0.04


@dataclass
class AudioEncoder:
    """The ``audio/`` rendition being written: its muxer, AAC stream and resampler."""

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


def open_audio_encoder(work_dir: Path, info: SourceInfo, settings: EncoderSettings) -> AudioEncoder:
    """An AAC encoder writing HLS into ``work_dir/audio`` (mono stays mono, anything else becomes stereo)."""
    d = work_dir / "audio"
    reset_dir(d)
    out = open_hls(d, gop_s=settings.gop_s)
    layout = "mono" if info.audio_channels == 1 else "stereo"
    ast = out.add_stream("aac", rate=settings.audio_rate)
    ast.layout = layout
    ast.bit_rate = settings.audio_bitrate
    ast.time_base = Fraction(1, settings.audio_rate)
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=settings.audio_rate, frame_size=1024)
    return AudioEncoder(container=out, stream=ast, resampler=resampler)


def encode_audio(enc: AudioEncoder, frame: Any, t0: float) -> None:
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
        _pad_with_silence(enc, frame, want)
    elif enc.fed - (want + duration * enc.rate) > AUDIO_SYNC_TOLERANCE_S * enc.rate:
        return  # all of it was already played: a repeated or overlapping frame
    frame.pts = None  # the resampler restamps; we count samples ourselves
    _feed(enc, frame)


def flush_audio(enc: AudioEncoder) -> None:
    """Drain the resampler and the encoder at the end of the source."""
    for af in enc.resampler.resample(None):
        _encode_resampled(enc, af)
    for pkt in enc.stream.encode(None):
        enc.container.mux(pkt)


def _pad_with_silence(enc: AudioEncoder, like: Any, want: float) -> None:
    """Silence up to ``want`` output samples, in the source's own format, rate and layout (what the resampler
    accepts), a second at a time so a long hole never becomes one huge frame."""
    rate = max(like.sample_rate, 1)
    gap = round((want - enc.fed) * rate / enc.rate)
    try:
        for at in range(0, gap, rate):
            _feed(enc, _silence_like(like, min(rate, gap - at)))
    except (ValueError, av.error.FFmpegError) as exc:
        # a layout PyAV cannot build a frame for: keep the audio, unpadded, rather than fail the video
        log.warning("transcode.audio_gap_not_filled", gap_s=round(gap / rate, 3), error=repr(exc))


def _feed(enc: AudioEncoder, frame: Any) -> None:
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


def _encode_resampled(enc: AudioEncoder, af: Any) -> None:
    af.pts = enc.samples
    af.time_base = Fraction(1, af.sample_rate)
    enc.samples += af.samples
    for pkt in enc.stream.encode(af):
        enc.container.mux(pkt)


def audio_output(work_dir: Path, info: SourceInfo) -> RenditionOutput:
    """The finished ``audio/`` rendition in ``work_dir``, measured."""
    return RenditionOutput(
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


def encode_audio_only(
    src: Path,
    work_dir: Path,
    *,
    info: SourceInfo,
    settings: EncoderSettings,
    stop: threading.Event | None = None,
) -> RenditionOutput:
    """An audio-only source (a podcast, a voice memo) as the one AAC rendition of an audio-only stream."""
    try:
        inp = av.open(str(src))
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(MEDIA_UNREADABLE, "the source cannot be opened") from e
    enc = open_audio_encoder(work_dir, info, settings)
    t0: float | None = None
    try:
        for packet in inp.demux(inp.streams.audio[0]):
            if stop is not None and stop.is_set():
                raise Canceled()
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged packet is skipped, as players do
            for frame in frames:
                if frame.time is None:
                    continue
                t0 = frame.time if t0 is None else t0
                encode_audio(enc, frame, t0)
        flush_audio(enc)
    except av.error.FFmpegError as e:
        raise MediaError(TRANSCODE_FAILED, "the audio could not be encoded") from e
    finally:
        enc.container.close()
        inp.close()
    if t0 is None:
        raise MediaError(MEDIA_UNREADABLE, "no audio frame could be decoded")
    return audio_output(work_dir, info)
