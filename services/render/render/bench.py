"""``python -m render.bench``: a 5-clip "Top 5" short with PyAV against the ffmpeg CLI doing the same layout.

Sources (generated once with PyAV, cached under ``var/cache/render-bench``): 1080p landscape, 720x1280
vertical, 4:3 with 44.1 kHz mono audio, 1080p without audio, and a 60 fps phone shot stored rotated; 8 s of each.
The ffmpeg CLI baseline builds the same picture from the same overlay PNGs with one ``-filter_complex`` (the same
fit filters, the same x264 and AAC settings, the same gains and limiter). Each side runs as a child process and is
measured with ``wait4``: wall time, CPU seconds, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .audio import limiter_chain
from .compose import (
    ClipPlan,
    ClipSource,
    EncodeSettings,
    RenderSpec,
    filter_complex,
    fit_filters,
    fit_for,
    overlay_filters,
    prepare,
    render_short,
)
from .layout import FPS, Target, layout_for
from .overlays import clip_layers, intro_card, outro_card
from .samples import make_clip
from .text import FontChain

CACHE = Path("var/cache/render-bench")


def sources(seconds: float = 10.0) -> list[ClipSource]:
    """The five benchmark clips, windows of 8 s starting at 1 s."""
    kinds = [
        dict(width=1920, height=1080, fps=30, amplitude=0.05, bitrate=6_000_000, colour=(40, 90, 160)),
        dict(width=720, height=1280, fps=30, amplitude=0.5, bitrate=2_500_000, colour=(160, 60, 40)),
        dict(width=640, height=480, fps=25, audio_rate=44_100, channels=1, bitrate=1_000_000, colour=(60, 140, 60)),
        dict(width=1920, height=1080, fps=24, has_audio=False, bitrate=5_000_000, colour=(120, 120, 40)),
        dict(width=1280, height=720, fps=60, rotate=90, amplitude=0.3, bitrate=4_000_000, colour=(90, 40, 140)),
    ]  # fmt: skip
    titles = [
        "도시의 밤을 달리는 고양이",
        "The longest title of the five, which has to wrap over lines and shrink to fit the bar",
        "4:3 · 44.1 kHz mono",
        "무음 클립 (no audio)",
        "세로로 찍은 60fps 영상",
    ]
    out = []
    for i, (kw, title) in enumerate(zip(kinds, titles, strict=True)):
        path = make_clip(CACHE, seconds=seconds, **kw)  # type: ignore[arg-type]
        rank = 5 - i
        out.append(
            ClipSource(
                path=path,
                start_s=1.0,
                end_s=9.0,
                rank=rank,
                title=title,
                uploader=f"creator{rank}",
                platform="youtube" if i % 2 else "tiktok",
            )
        )
    return out


def bench_spec(enc: EncodeSettings) -> RenderSpec:
    """The benchmark's short: intro, five clips (countdown), outro."""
    return RenderSpec(title="벤치마크 Top 5: 고양이", target=Target.SHORTS, clips=sources(), encode=enc)


@dataclass(frozen=True)
class Usage:
    """What a child process used."""

    wall_s: float
    cpu_s: float
    max_rss_mb: float


def run_measured(cmd: Sequence[str]) -> Usage:
    """Run ``cmd`` and measure it alone (``wait4``: its own CPU and peak RSS, not this process's)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, list(cmd))
    return Usage(wall_s=wall, cpu_s=ru.ru_utime + ru.ru_stime, max_rss_mb=ru.ru_maxrss / 1024)


def write_overlays(spec: RenderSpec, work: Path) -> tuple[list[list[tuple[Path, int, int]]], Path, Path]:
    """The very Pillow layers PyAV overlays, as PNG files (per clip: path, x, y), and the two cards."""
    chain = FontChain.installed()
    layout = layout_for(spec.target)
    per_clip = []
    for i, clip in enumerate(spec.clips):
        files = []
        for j, layer in enumerate(clip_layers(layout, clip.text, chain)):
            p = work / f"clip{i}_layer{j}.png"
            layer.image.save(p)
            files.append((p, layer.x, layer.y))
        per_clip.append(files)
    intro, outro = work / "intro.png", work / "outro.png"
    intro_card(layout, spec.title, chain).save(intro)
    outro_card(layout, [c.text for c in spec.clips], chain).save(outro)
    return per_clip, intro, outro


def ffmpeg_command(spec: RenderSpec, plans: Sequence[ClipPlan], work: Path, out: Path) -> list[str]:
    """The same short with the ffmpeg CLI: one ``-filter_complex``, the same filters, layers, gains and encoders."""
    layers, intro, outro = write_overlays(spec, work)
    enc = spec.encode
    inputs: list[str] = []
    graph: list[str] = []
    segments: list[tuple[str, str]] = []

    def add_input(*args: str) -> int:
        inputs.extend(args)
        return sum(1 for a in inputs if a == "-i") - 1

    def silence(seconds: float) -> int:
        return add_input("-f", "lavfi", "-t", f"{seconds:.6f}", "-i", "anullsrc=r=48000:cl=stereo")

    def card(png: Path, seconds: float, name: str) -> None:
        v = add_input("-loop", "1", "-framerate", str(FPS), "-t", f"{seconds:.6f}", "-i", str(png))
        a = silence(seconds)
        graph.append(f"[{v}:v]format=yuv420p,setsar=1[v{name}]")
        graph.append(f"[{a}:a]anull[a{name}]")
        segments.append((f"v{name}", f"a{name}"))

    card(intro, spec.intro_s, "intro")
    for i, plan in enumerate(plans):
        secs = plan.frames / FPS
        c = add_input("-ss", f"{plan.start_s:.6f}", "-t", f"{secs:.6f}", "-i", str(plan.source.path))
        mapping = {"src": f"{c}:v"}
        for j, (png, _, _) in enumerate(layers[i]):
            mapping[f"l{j}"] = f"{add_input('-i', str(png))}:v"
        nodes = [
            ("src>in", "fps", str(FPS)),
            *fit_filters(fit_for(plan.info.width, plan.info.height)),
            *overlay_filters([(x, y) for _, x, y in layers[i]]),
            ("out>fmt", "format", "yuv420p"),
            (f"fmt>v{i}", "setsar", "1"),
        ]
        graph.append(filter_complex(nodes, mapping, prefix=f"c{i}_", keep=frozenset({f"v{i}"})))
        if plan.info.has_audio:
            graph.append(
                f"[{c}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,"
                f"volume={plan.gain_db:.4f}dB[a{i}]"
            )
        else:
            graph.append(f"[{silence(secs)}:a]anull[a{i}]")
        segments.append((f"v{i}", f"a{i}"))
    card(outro, spec.outro_s, "outro")
    graph.append(
        "".join(f"[{v}][{a}]" for v, a in segments)
        + f"concat=n={len(segments)}:v=1:a=1[vcat][acat];"
        + "[acat]"
        + ",".join(f"{name}={args}" for name, args in limiter_chain())
        + ",ebur128=metadata=1:peak=true,"
        + "aformat=sample_fmts=fltp:channel_layouts=stereo[aout]"
    )
    opts = enc.x264_options()
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs,
        "-filter_complex", ";".join(graph), "-map", "[vcat]", "-map", "[aout]",
        "-c:v", "libx264", "-preset", opts["preset"], "-crf", opts["crf"], "-maxrate", opts["maxrate"],
        "-bufsize", opts["bufsize"], "-profile:v", "high", "-x264-params", opts["x264-params"],
        "-pix_fmt", "yuv420p", "-r", str(FPS),
        "-c:a", "aac", "-b:a", str(enc.audio_bitrate), "-ar", "48000", "-ac", "2",
        "-movflags", "+faststart", str(out),
    ]  # fmt: skip


def _child(out: str, preset: str) -> int:
    """The PyAV side, run as a child so its usage is its own."""
    result = render_short(bench_spec(EncodeSettings(preset=preset)), Path(out))
    print(
        json.dumps(
            {
                "duration_s": result.duration_s,
                "lufs": result.loudness.integrated_lufs,
                "true_peak_dbtp": result.loudness.true_peak_dbtp,
                "gains_db": [round(p.gain_db, 2) for p in result.clips],
            }
        )
    )
    return 0


def probe_duration(path: Path) -> float:
    """The container duration ffprobe reads."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    """Run both sides once and print their numbers."""
    p = argparse.ArgumentParser(prog="python -m render.bench")
    p.add_argument("--preset", default=EncodeSettings().preset)
    p.add_argument("--child", metavar="OUT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args.child, args.preset)
    enc = EncodeSettings(preset=args.preset)
    t = time.perf_counter()
    spec = bench_spec(enc)
    plans = prepare(spec)
    print(f"sources ready in {time.perf_counter() - t:.1f}s: " + ", ".join(
        f"{pl.info.width}x{pl.info.height}{' rot' + str(pl.info.rotation) if pl.info.rotation else ''}"
        f"{'' if pl.info.has_audio else ' no-audio'}" for pl in plans
    ))  # fmt: skip
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}  x264 preset: {enc.preset}")
    with tempfile.TemporaryDirectory(prefix="render-bench-") as d:
        work = Path(d)
        pyav_out, ff_out = work / "pyav.mp4", work / "ffmpeg.mp4"
        py = run_measured(
            [sys.executable, "-m", "render.bench", "--child", str(pyav_out), "--preset", enc.preset]
        )
        ff = run_measured(ffmpeg_command(spec, plans, work, ff_out))
        dur, ff_dur = probe_duration(pyav_out), probe_duration(ff_out)
        size, ff_size = pyav_out.stat().st_size, ff_out.stat().st_size
    print(
        f"output: {dur:.2f}s 1080x1920 ({size / 1e6:.1f} MB) | ffmpeg CLI: {ff_dur:.2f}s ({ff_size / 1e6:.1f} MB)"
    )
    print(
        f"PyAV: {py.wall_s:.1f}s wall, {py.cpu_s:.1f} CPU-s, peak RSS {py.max_rss_mb:.0f} MB | "
        f"ffmpeg CLI: {ff.wall_s:.1f}s wall, {ff.cpu_s:.1f} CPU-s, peak RSS {ff.max_rss_mb:.0f} MB"
    )
    print(
        f"ratio PyAV/ffmpeg: CPU {py.cpu_s / ff.cpu_s:.2f}x (goal <= 1.10), wall {py.wall_s / ff.wall_s:.2f}x | "
        f"realtime factor: PyAV {dur / py.wall_s:.2f}x, ffmpeg {ff_dur / ff.wall_s:.2f}x "
        f"(goal > 1 on 2 cores); CPU-s per output second: {py.cpu_s / dur:.2f}"
    )
    # CPU-s / wall-s: how many cores each side kept busy (2.0 = both of a 2-core machine; less = it waited for CPU
    # the machine's other work took, or for its own serial parts)
    print(
        f"cores used (CPU-s / wall-s): PyAV {py.cpu_s / py.wall_s:.2f}, ffmpeg {ff.cpu_s / ff.wall_s:.2f} | "
        f"load average at the end: {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
