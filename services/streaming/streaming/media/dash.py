"""DASH: finished HLS renditions remuxed (no re-encode) into one presentation with every rung in one set."""

from __future__ import annotations

import heapq
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import av

from .output import RenditionOutput, reset_dir


def package_dash(renditions: Sequence[RenditionOutput], out_dir: Path, *, gop_s: float = 2.0) -> Path:
    """Remux finished renditions (no re-encode) into a DASH presentation: ``manifest.mpd`` + ``dash/*.m4s``."""
    reset_dir(out_dir)
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
