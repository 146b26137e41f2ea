"""upload, import, search, captions, download: getting videos in and out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from yarl import URL

from .app import api_command, cli
from .client import (
    NETWORK_ERRORS,
    Api,
    CliError,
    ExitCode,
    multipart_upload,
    problem_of,
    retry_after,
    unreachable,
)
from .live import follow, job_failure, outcome
from .output import Output

POLL_INTERVAL_S = 1.0  # the gateway allows 100 requests a minute per user: one poll a second at most
STREAM_ENDED = frozenset({"ready", "error"})


async def upload_file(
    api: Api, path: Path, *, title: str | None, on_chunk: Any, restart: Any
) -> dict[str, Any]:
    """Upload one file (streamed from disk); the video. A 429 is waited out and the upload starts over."""
    fields = {"title": title} if title else {}
    for _ in range(3):
        await api.ensure_fresh()
        body, headers = multipart_upload(path, fields=fields, on_chunk=on_chunk)
        async with api.session.post(
            api.url("/api/v1/videos"), data=body, headers={**api.auth_headers(), **headers}
        ) as resp:
            if resp.status == 201:
                video: dict[str, Any] = await resp.json()
                return video
            if resp.status != 429:
                raise await problem_of(resp)
            delay = retry_after(resp)
        restart()
        await asyncio.sleep(delay)
    raise CliError(f"{path.name}: still rate limited", exit_code=ExitCode.RATE_LIMITED, code="rate_limited")


@dataclass
class FileOutcome:
    """What became of one file of ``upload``: its video (once uploaded), its stream (with ``--wait``), its error."""

    path: Path
    video: dict[str, Any] | None = None
    stream: dict[str, Any] | None = None
    error: CliError | None = None

    def as_json(self) -> dict[str, Any]:
        """The file's entry in ``upload --json``: ``file``, then ``video``, ``stream`` and ``error`` when known."""
        entry: dict[str, Any] = {"file": str(self.path)}
        if self.video is not None:
            entry["video"] = self.video
        if self.stream is not None:
            entry["stream"] = self.stream
        return entry | (self.error.as_json() if self.error else {})

    def status(self) -> str:
        """One word for the table: the stream's status, else uploaded or failed."""
        if self.stream is not None:
            return str(self.stream["status"])
        return "failed" if self.video is None else "uploaded"


async def upload_each(
    api: Api, out: Output, paths: tuple[Path, ...], *, title: str | None
) -> list[FileOutcome]:
    """Upload the files one after the other, a bar each; a failed file (refused, or the connection lost) is
    recorded and the next one still goes, so every file has its outcome."""
    outcomes: list[FileOutcome] = []
    with out.transfer_progress() as progress:
        for path in paths:
            entry = FileOutcome(path)
            outcomes.append(entry)
            bar = progress.add_task(path.name, total=path.stat().st_size)
            try:
                entry.video = await upload_file(
                    api,
                    path,
                    title=title,
                    on_chunk=lambda n, bar=bar: progress.advance(bar, n),
                    restart=lambda bar=bar: progress.reset(bar),
                )
            except CliError as e:
                entry.error = e
            except NETWORK_ERRORS as e:
                entry.error = unreachable(api.base_url, e)
            if entry.error is not None:
                progress.update(bar, description=f"{path.name} (failed)")
    return outcomes


async def wait_streams(api: Api, out: Output, outcomes: list[FileOutcome], *, timeout_s: float) -> None:
    """Poll the stream of each uploaded file (one request a second in all) until it is ready or failed; a stream
    that failed, a poll that failed and a stream still processing at the deadline become that file's error."""
    deadline = time.monotonic() + timeout_s
    with out.job_progress() as progress:
        pending = [o for o in outcomes if o.video is not None and o.error is None]
        ids = {id(o): o.video["id"] for o in pending if o.video is not None}
        bars = {
            key: progress.add_task(f"stream {vid[:8]}", total=None, stage="processing")
            for key, vid in ids.items()
        }
        while pending:
            if time.monotonic() > deadline:
                for o in pending:
                    o.error = CliError(
                        f"{o.path.name}: the stream was not ready within {timeout_s:g} s (stream.timeout)",
                        code="stream.timeout",
                    )
                return
            o = pending.pop(0)
            try:
                o.stream = await api.call("GET", f"/api/v1/videos/{ids[id(o)]}/stream")
            except CliError as e:
                if e.exit_code != ExitCode.NOT_FOUND:
                    o.error = e
                # else: not known to streaming yet, its event is on the way
            except NETWORK_ERRORS as e:
                o.error = unreachable(api.base_url, e)
            status = o.stream["status"] if o.stream else "processing"
            ended = status in STREAM_ENDED or o.error is not None
            progress.update(
                bars[id(o)], stage=status, total=1 if ended else None, completed=1 if ended else 0
            )
            if o.stream and status == "error":
                o.error = CliError(
                    f"{o.path.name}: the stream failed: {o.stream.get('error')} (stream.failed)",
                    code="stream.failed",
                )
            if not ended:
                pending.append(o)
            await asyncio.sleep(POLL_INTERVAL_S)


@api_command(cli, "upload")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--title", help="the title (default: from the file name)")
@click.option("--wait", is_flag=True, help="then wait until each video's stream is ready")
@click.option("--timeout", default=1800.0, show_default=True, help="seconds --wait waits")
async def upload(
    api: Api, out: Output, files: tuple[Path, ...], title: str | None, wait: bool, timeout: float
) -> int:
    """Upload video files, a progress bar each; every file's outcome, and a non-zero exit if any failed (the
    code of the first failed file's error; nothing is resumed silently)."""
    outcomes = await upload_each(api, out, files, title=title)
    if wait:
        await wait_streams(api, out, outcomes, timeout_s=timeout)

    def show(rs: list[FileOutcome]) -> None:
        rows = [
            [
                r.path,
                r.video["id"] if r.video else "",
                r.status(),
                f"{r.error.message}" if r.error else "",
            ]
            for r in rs
        ]
        out.table(["file", "video", "status", "error"], rows)

    out.result([o.as_json() for o in outcomes], lambda _: show(outcomes))
    failures = [o.error for o in outcomes if o.error is not None]
    for error in failures:
        out.error(error, in_result=True)
    return int(failures[0].exit_code) if failures else 0


@api_command(cli, "import")
@click.argument("url")
@click.option("--title")
@click.option("--wait/--no-wait", default=True, show_default=True, help="wait for the import job")
async def import_(api: Api, out: Output, url: str, title: str | None, wait: bool) -> int:
    """Import a video from a URL (YouTube, TikTok, any page yt-dlp reads, or a file URL)."""
    body: dict[str, Any] = {"url": url} | ({"title": title} if title else {})
    accepted = await api.call("POST", "/api/v1/imports", json_body=body)
    if not wait:
        out.result(accepted, lambda a: out.note(f"import {a['import_id']} queued (job {a['job_id']})"))
        return 0
    board = await follow(api, out, [accepted["job_id"]])
    imported = await api.call("GET", f"/api/v1/imports/{accepted['import_id']}")
    out.result(imported, lambda i: out.out.print(f"video {i.get('video_id') or '-'}: {i.get('status', '')}"))
    return outcome(out, board.jobs[accepted["job_id"]])


@api_command(cli, "search")
@click.argument("query")
@click.option("--platform", type=click.Choice(["youtube", "tiktok"]), default="youtube", show_default=True)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 50))
@click.option(
    "--sort",
    type=click.Choice(["relevance", "views", "likes", "comments", "recent"]),
    default="relevance",
    show_default=True,
)
async def search(api: Api, out: Output, query: str, platform: str, limit: int, sort: str) -> int:
    """Search a platform (a job); the results, sortable by views, likes, comments or date."""
    accepted = await api.call(
        "POST", "/api/v1/searches", json_body={"platform": platform, "query": query, "limit": limit}
    )
    board = await follow(api, out, [accepted["job_id"]])
    error = job_failure(board.jobs[accepted["job_id"]])
    if error:
        raise error
    found = await api.call("GET", f"/api/v1/searches/{accepted['search_id']}", params={"sort": sort})

    def show(f: dict[str, Any]) -> None:
        rows = [
            [r.get("title"), r.get("uploader"), r.get("view_count"), r.get("like_count"), r.get("url")]
            for r in f.get("results", [])
        ]
        out.table(["title", "uploader", "views", "likes", "url"], rows, title=f"search {f.get('id', '')}")

    out.result(found, show)
    return 0


@api_command(cli, "captions")
@click.argument("video")
@click.option("--language", default="auto", show_default=True, help="the spoken language, or auto")
@click.option("--translate-to", default="", help="comma-separated target languages, e.g. ko,en")
@click.option("--wait/--no-wait", default=True, show_default=True)
async def captions(api: Api, out: Output, video: str, language: str, translate_to: str, wait: bool) -> int:
    """Caption a video (a paid job): transcribe, then translate; lists the tracks."""
    targets = [t.strip() for t in translate_to.split(",") if t.strip()]
    accepted = await api.call(
        "POST", f"/api/v1/videos/{video}/captions", json_body={"language": language, "translate_to": targets}
    )
    job = accepted.get("job", accepted)
    if not wait:
        out.result(accepted)
        return 0
    board = await follow(api, out, [job["id"]])
    tracks = await api.call("GET", f"/api/v1/videos/{video}/captions")
    result = {"job": board.jobs[job["id"]], "tracks": tracks["items"]}

    def show(r: dict[str, Any]) -> None:
        rows = [
            [t["id"], t["language"], t.get("kind", ""), t["status"], t.get("cue_count", "")]
            for t in r["tracks"]
        ]
        out.table(["track", "language", "kind", "status", "cues"], rows)

    out.result(result, show)
    return outcome(out, board.jobs[job["id"]])


@api_command(cli, "download")
@click.argument("video")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="the file to write")
@click.option("--captions", "language", help="download this language's caption track instead of the video")
@click.option("--format", "fmt", type=click.Choice(["vtt", "srt", "json"]), default="vtt", show_default=True)
async def download(
    api: Api, out: Output, video: str, output: Path | None, language: str | None, fmt: str
) -> None:
    """Download a video (its best rendition, from the signed HLS stream) or one of its caption tracks."""
    if language:
        tracks = (await api.call("GET", f"/api/v1/videos/{video}/captions"))["items"]
        track = next((t for t in tracks if t["language"] == language), None)
        if track is None:
            raise CliError(
                f"no {language} captions for {video}", exit_code=ExitCode.NOT_FOUND, code="captions.not_found"
            )
        target = output or Path(f"{video}.{language}.{fmt}")
        size = await _save(api, out, f"/api/v1/captions/{track['id']}.{fmt}", target)
    else:
        target, size = await download_stream(api, out, video, output)
    out.result(
        {"video_id": video, "path": str(target), "bytes": size},
        lambda r: out.note(f"saved {r['path']} ({r['bytes']} bytes)"),
    )


async def _save(api: Api, out: Output, path: str, target: Path) -> int:
    with out.transfer_progress() as progress:
        async with api.stream("GET", path) as resp:
            bar = progress.add_task(target.name, total=resp.content_length)
            size = 0
            with target.open("wb") as f:
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    f.write(chunk)
                    size += len(chunk)
                    progress.advance(bar, len(chunk))
    return size


async def _text(api: Api, url: URL) -> str:
    async with api.session.get(url) as resp:
        if resp.status >= 400:
            raise await problem_of(resp)
        return await resp.text()


def best_variant(master: str, base: URL) -> URL:
    """The highest-bandwidth variant of an HLS master playlist (or ``base`` itself for a media playlist)."""
    best: tuple[int, str] | None = None
    lines = master.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:") and i + 1 < len(lines):
            attrs = dict(a.split("=", 1) for a in line.split(":", 1)[1].split(",") if "=" in a)
            bandwidth = int(attrs.get("BANDWIDTH", "0") or 0)
            if best is None or bandwidth > best[0]:
                best = (bandwidth, lines[i + 1].strip())
    return base.join(URL(best[1], encoded=True)) if best else base


def media_parts(playlist: str, base: URL) -> list[URL]:
    """The init section (if any) and every segment of an HLS media playlist, in order."""
    parts: list[URL] = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MAP:") and 'URI="' in line:
            parts.append(base.join(URL(line.split('URI="', 1)[1].split('"', 1)[0], encoded=True)))
        elif line and not line.startswith("#"):
            parts.append(base.join(URL(line.strip(), encoded=True)))
    return parts


async def download_stream(api: Api, out: Output, video: str, output: Path | None) -> tuple[Path, int]:
    """The best rendition's init section and segments, concatenated (fMP4 → .mp4, TS → .ts)."""
    playback = await api.call("POST", f"/api/v1/videos/{video}/playback", json_body={})
    hls = URL(playback["hls_url"], encoded=True)
    master_url = URL(api.base_url).join(URL(hls.raw_path_qs, encoded=True))  # /play is served by the gateway
    variant = best_variant(await _text(api, master_url), master_url)
    parts = media_parts(await _text(api, variant), variant)
    fmp4 = any(p.path.endswith((".mp4", ".m4s")) for p in parts)
    target = output or Path(f"{video}.{'mp4' if fmp4 else 'ts'}")
    size = 0
    with out.transfer_progress() as progress, target.open("wb") as f:
        bar = progress.add_task(target.name, total=len(parts))
        for part in parts:
            async with api.session.get(part) as resp:
                if resp.status >= 400:
                    raise await problem_of(resp)
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    f.write(chunk)
                    size += len(chunk)
            progress.advance(bar, 1)
    return target, size
