"""``python -m streaming.bench``: time-to-playable, the ladder vs the ffmpeg CLI, and the realtime factor.

Uses the real Postgres, RabbitMQ and a filesystem store (like ``make up``); the 60-s 1080p30 H.264/AAC source
is generated once with PyAV and cached under ``var/cache/streaming-bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from aiohttp import web

from common import db
from common.events.ingest import VideoIngested
from common.service import migrations_beside
from common.testing.media import make_video

from . import media, store
from .app import create_app
from .config import StreamingSettings

MIGRATIONS = migrations_beside(__file__)


def source(seconds: int, *, vcodec: str = "libx264") -> Path:
    """The cached 1080p30 benchmark source: H.264/AAC (stream-copyable) or e.g. MPEG-4 Part 2 (not)."""
    cache = Path("var/cache/streaming-bench").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    return make_video(
        seconds=seconds,
        width=1920,
        height=1080,
        fps=30,
        audio=True,
        bitrate=6_000_000 if vcodec == "libx264" else 10_000_000,
        vcodec=vcodec,
        directory=cache,
    )


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def time_to_playable(src: Path, settings: StreamingSettings) -> tuple[float, float]:
    """Seconds from publishing ``video.ingested`` to ``playable``, and to ``ready``, through a real worker."""
    schema = f"streaming_bench_{uuid.uuid4().hex[:8]}"
    await db.migrate(settings.database_url, schema=schema, directories=[MIGRATIONS])
    tmp = Path(tempfile.mkdtemp(prefix="streaming-bench-"))
    tag = uuid.uuid4().hex[:8]
    s = settings.with_(
        db_schema=schema,
        storage_url=f"file://{tmp / 'store'}",
        tmp_dir=str(tmp / "scratch"),
        bus_exchange=f"bench.{tag}.events",
        bus_dlx=f"bench.{tag}.dlx",
        bus_queue=f"bench-{tag}",
        http_port=0,
    )
    app = create_app(s, role="worker")
    runner = web.AppRunner(app)
    await runner.setup()
    pool = await db.create_pool(s.database_url, schema=schema, max_size=2)
    try:
        from common.service import BUS, STORE

        vid = uuid.uuid4()
        key = f"originals/{vid}/source.mp4"
        await app[STORE].put_file(key, src)
        t0 = time.perf_counter()
        await app[BUS].publish(
            VideoIngested(video_id=vid, owner_id=uuid.uuid4(), storage_key=key, duration_s=60)
        )
        playable = ready = 0.0
        while not ready:
            async with pool.acquire() as conn:
                st = await store.get_stream(conn, video_id=vid)
            now = time.perf_counter() - t0
            if st is not None and st.status in ("playable", "ready") and not playable:
                playable = now
            if st is not None and st.status == "ready":
                ready = now
            if st is not None and st.status == "error":
                raise RuntimeError(f"transcode failed: {st.error}")
            await asyncio.sleep(0.01)
        return playable, ready
    finally:
        await pool.close()
        await runner.cleanup()
        await db.drop_schema(s.database_url, schema)
        await _delete_queues(s)
        shutil.rmtree(tmp, ignore_errors=True)


async def _delete_queues(s: StreamingSettings) -> None:
    import aio_pika

    conn = await aio_pika.connect(s.amqp_url)
    try:
        for q in [s.queue, f"{s.queue}.webhooks"]:
            for name in [q, f"{q}.dead", *(f"{q}.retry.{ms}" for ms in s.bus_retry_delays_ms)]:
                ch = await conn.channel()
                with contextlib.suppress(Exception):
                    await ch.queue_delete(name)
                await ch.close()
        ch = await conn.channel()
        for ex in (s.bus_exchange, s.bus_dlx):
            await ch.exchange_delete(ex)
    finally:
        await conn.close()


def pyav_ladder(src: Path, work: Path, enc: media.EncoderSettings) -> tuple[float, float, media.SourceInfo]:
    """Wall and CPU seconds of the one-decode PyAV ladder (video rungs + AAC audio, no thumbnails)."""
    info = media.probe(src)
    rungs = media.plan_ladder(info)
    cpu0, t0 = _cpu_self(), time.perf_counter()
    media.transcode_ladder(
        src, work, info=info, rungs=rungs, encode_audio=True, thumbnails=None, settings=enc
    )
    return time.perf_counter() - t0, _cpu_self() - cpu0, info


def _hls_output(directory: Path, enc: media.EncoderSettings) -> list[str]:
    """ffmpeg's CMAF HLS output options for one rendition, as the PyAV ladder writes them."""
    return [
        "-f", "hls", "-hls_time", f"{enc.gop_s:g}", "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(directory / "seg_%05d.m4s"), str(directory / "index.m3u8"),
    ]  # fmt: skip


def ffmpeg_ladder_command(
    src: Path, work: Path, info: media.SourceInfo, enc: media.EncoderSettings
) -> list[str]:
    """The same ladder with the ffmpeg CLI: one decode, split + scale, same x264 options, HLS fMP4 outputs."""
    rungs = media.plan_ladder(info)
    n = len(rungs)
    graph = (
        f"[0:v]split={n}"
        + "".join(f"[s{i}]" for i in range(n))
        + ";"
        + ";".join(f"[s{i}]scale={r.width}:{r.height}[o{i}]" for i, r in enumerate(rungs))
    )
    fps = f"{info.fps.numerator}/{info.fps.denominator}"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-filter_complex", graph]
    for i, r in enumerate(rungs):
        d = work / r.name
        d.mkdir(parents=True, exist_ok=True)
        cmd += [
            "-map",
            f"[o{i}]",
            "-r",
            fps,
            "-c:v",
            "libx264",
            "-preset",
            enc.preset,
            "-crf",
            str(r.crf),
            "-maxrate",
            f"{r.maxrate_kbps}k",
            "-bufsize",
            f"{r.bufsize_kbps}k",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
            "-force_key_frames",
            f"expr:gte(t,n_forced*{enc.gop_s:g})",
            "-forced-idr",
            "1",
            "-x264-params",
            enc.x264_options(r, info.fps)["x264-params"],  # the very parameters the PyAV ladder uses
            *_hls_output(d, enc),
        ]
    a = work / "audio"
    a.mkdir(parents=True, exist_ok=True)
    cmd += [
        "-map",
        "0:a:0",
        "-c:a",
        "aac",
        "-b:a",
        str(enc.audio_bitrate),
        "-ar",
        str(enc.audio_rate),
        *_hls_output(a, enc),
    ]
    return cmd


def ffmpeg_ladder(
    src: Path, work: Path, info: media.SourceInfo, enc: media.EncoderSettings
) -> tuple[float, float]:
    """Wall and CPU seconds of the ffmpeg CLI ladder."""
    cmd = ffmpeg_ladder_command(src, work, info, enc)
    cpu0, t0 = _cpu_children(), time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0, _cpu_children() - cpu0


def main(argv: list[str] | None = None) -> int:
    """Run the three benchmarks and print their numbers."""
    p = argparse.ArgumentParser(prog="python -m streaming.bench")
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--preset", default=None, help="x264 preset (default: STREAMING_X264_PRESET)")
    p.add_argument(
        "--skip-e2e", action="store_true", help="skip time-to-playable (needs Postgres and RabbitMQ)"
    )
    p.add_argument(
        "--skip-noncopyable",
        action="store_true",
        help="skip time-to-playable of a source that cannot be stream-copied (MPEG-4 Part 2)",
    )
    args = p.parse_args(argv)
    settings = StreamingSettings.from_env(log_level="WARNING")
    enc = media.EncoderSettings(
        preset=args.preset or settings.streaming_x264_preset, gop_s=settings.streaming_gop_s
    )
    t = time.perf_counter()
    src = source(args.seconds)
    print(
        f"source: {src} ({src.stat().st_size / 1e6:.1f} MB, {args.seconds}s 1920x1080 30fps H.264/AAC; "
        f"ready in {time.perf_counter() - t:.1f}s)"
    )
    print(f"cores: {os.cpu_count()}  x264 preset: {enc.preset}")
    if not args.skip_e2e:
        playable, ready = asyncio.run(time_to_playable(src, settings.with_(streaming_x264_preset=enc.preset)))
        print(f"(1) time-to-playable (video.ingested -> playable, stream copy): {playable:.2f}s")
        print(
            f"    baseline in the same run, time-to-ready (the whole encoded ladder): {ready:.2f}s "
            f"-> playable {ready / playable:.0f}x sooner than ready (the lowest encoded rung alone: see 1b)"
        )
        if not args.skip_noncopyable:
            other = source(args.seconds, vcodec="mpeg4")
            playable2, ready2 = asyncio.run(
                time_to_playable(other, settings.with_(streaming_x264_preset=enc.preset))
            )
            print(
                f"(1b) time-to-playable, {args.seconds}s 1080p MPEG-4 Part 2 source (no copy: lowest rung first): "
                f"{playable2:.2f}s; ready {ready2:.2f}s -> playable at {100 * playable2 / ready2:.0f}% of the way"
            )
    with tempfile.TemporaryDirectory(prefix="ladder-") as d:
        wall, cpu, info = pyav_ladder(src, Path(d) / "pyav", enc)
        ff_wall, ff_cpu = ffmpeg_ladder(src, Path(d) / "ffmpeg", info, enc)
    rungs = ",".join(r.name for r in media.plan_ladder(info))
    print(
        f"(2) ladder [{rungs} + aac] PyAV: {wall:.1f}s wall, {cpu:.1f} CPU-s | ffmpeg CLI: {ff_wall:.1f}s wall, "
        f"{ff_cpu:.1f} CPU-s | ratio PyAV/ffmpeg: wall {wall / ff_wall:.2f}x, CPU {cpu / ff_cpu:.2f}x"
    )
    print(
        f"(3) realtime factor of the ladder: {info.duration_s / wall:.2f}x realtime "
        f"(ffmpeg CLI: {info.duration_s / ff_wall:.2f}x) on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
