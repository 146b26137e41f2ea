"""Stream copy: the source's H.264/AAC remuxed into HLS without decoding, playable in about a second."""

from __future__ import annotations

from pathlib import Path

import av
import av.error
from av.bitstream import BitStreamFilterContext

from .errors import MEDIA_UNREADABLE, MediaError
from .hls import aac_codec_string, avc_codec_string, measure_rendition
from .output import RenditionOutput, open_hls, reset_dir
from .probe import SourceInfo


def remux_copy(
    src: Path, work_dir: Path, *, info: SourceInfo, gop_s: float = 2.0, with_audio: bool = True
) -> tuple[RenditionOutput, RenditionOutput | None]:
    """Stream-copy the source's H.264 into ``src/`` and its AAC into ``audio/`` (no decode, no encode)."""
    vdir, adir = work_dir / "src", work_dir / "audio"
    reset_dir(vdir)
    copy_audio = with_audio and info.has_audio and info.audio_copyable
    if copy_audio:
        reset_dir(adir)
    try:
        with av.open(str(src)) as inp:
            ivs = inp.streams.video[0]
            ias = inp.streams.audio[0] if copy_audio else None
            vout = open_hls(vdir, gop_s=gop_s)
            aout = open_hls(adir, gop_s=gop_s) if ias is not None else None
            try:
                ovs = vout.add_stream_from_template(ivs)
                oas = aout.add_stream_from_template(ias) if aout is not None and ias is not None else None
                # AAC in MPEG-TS (and raw .aac) is ADTS-framed; an MP4 track needs raw frames + an
                # AudioSpecificConfig, which this filter makes (a no-op for AAC that is already MP4-style)
                adts = BitStreamFilterContext("aac_adtstoasc", ias, oas) if oas is not None else None
                streams = [ivs] if ias is None else [ivs, ias]
                for packet in inp.demux(streams):
                    if packet.dts is None or packet.size == 0:
                        continue
                    if packet.stream is ivs:
                        packet.stream = ovs
                        vout.mux(packet)
                    elif oas is not None and aout is not None and adts is not None:
                        for p in adts.filter(packet):
                            p.stream = oas
                            aout.mux(p)
                vcodecs = avc_codec_string(ivs.codec_context.extradata)
            finally:
                vout.close()
                if aout is not None:
                    aout.close()
    except av.error.FFmpegError as e:
        raise MediaError(MEDIA_UNREADABLE, "the source could not be remuxed") from e
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
