"""analyze, batch, rank: the analysis and render services (API of issues 11 and 12)."""

from __future__ import annotations

import asyncio
import csv
import re
from pathlib import Path
from typing import Any

import click

from .app import api_command, cli
from .client import Api, CliError, ExitCode
from .live import follow, job_failure, outcome
from .media import POLL_INTERVAL_S, _save
from .output import Output

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
BATCH_POLL_S = 2.0
BATCH_ENDED = frozenset({"done", "canceled"})


def item_of(value: str) -> dict[str, str]:
    """``{video_id}`` for a UUID, ``{url}`` for a URL; a ``CliError`` otherwise."""
    value = value.strip()
    if _UUID.match(value):
        return {"video_id": value.lower()}
    if value.startswith(("http://", "https://")):
        return {"url": value}
    raise CliError(f"not a video id or URL: {value!r}", exit_code=ExitCode.USAGE, code="validation.item")


def _options(language: str | None, detail: str) -> dict[str, Any]:
    return {"detail": detail} | ({"output_language": language} if language else {})


@api_command(cli, "analyze")
@click.argument("target")
@click.option(
    "--detail", type=click.Choice(["brief", "standard", "detailed"]), default="standard", show_default=True
)
@click.option("--language", help="write the analysis in this language (default: the transcript's)")
@click.option("--wait/--no-wait", default=True, show_default=True)
async def analyze(api: Api, out: Output, target: str, detail: str, language: str | None, wait: bool) -> int:
    """Analyse a video (a video id of yours or a URL): summary, key points, chapters, highlights (a paid job)."""
    accepted = await api.call(
        "POST", "/api/v1/analyses", json_body=item_of(target) | {"options": _options(language, detail)}
    )
    analysis, job = accepted["analysis"], accepted["job"]
    if wait:
        board = await follow(api, out, [job["id"]])
        job = board.jobs[job["id"]]
        analysis = await api.call("GET", f"/api/v1/analyses/{analysis['id']}")

    def show(a: dict[str, Any]) -> None:
        r = a.get("result") or {}
        out.out.print(f"[bold]{r.get('title') or a.get('title', '')}[/bold]\n{r.get('summary', '')}")
        for p in r.get("key_points", []):
            out.out.print(f" • {p}")
        out.table(["start", "chapter"], [[_clock(c["start_s"]), c["title"]] for c in r.get("chapters", [])])

    out.result(analysis, show)
    return outcome(out, job) if wait else 0


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def read_items(path: Path) -> list[dict[str, str]]:
    """The first column of each CSV row (a header row is skipped), as batch items."""
    items: list[dict[str, str]] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        for n, row in enumerate(csv.reader(f)):
            if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                continue
            try:
                items.append(item_of(row[0]))
            except CliError:
                if n == 0:
                    continue  # a header
                raise
    if not items:
        raise CliError(f"{path}: no URLs or video ids", exit_code=ExitCode.USAGE, code="validation.empty")
    return items


@api_command(cli, "batch")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--detail", type=click.Choice(["brief", "standard", "detailed"]), default="standard", show_default=True
)
@click.option("--language", help="write the analyses in this language")
@click.option(
    "--export",
    "export",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the results as JSON lines",
)
@click.option("--wait/--no-wait", default=True, show_default=True)
async def batch(
    api: Api, out: Output, csv_file: Path, detail: str, language: str | None, export: Path | None, wait: bool
) -> int:
    """Analyse every URL or video id of a CSV (first column) as one batch, with live counts and ETA."""
    items = read_items(csv_file)
    created = await api.call(
        "POST", "/api/v1/analyses/batches", json_body={"items": items, "options": _options(language, detail)}
    )
    created = created.get("batch", created)  # the answer is {batch, job}
    batch_id = created["id"]
    if wait:
        created = await watch_batch(api, out, created)
    if export is not None:
        await _save(api, out, f"/api/v1/analyses/batches/{batch_id}/export?format=jsonl", export)
    out.result(
        created,
        lambda b: out.table(
            ["batch", "state", *sorted(b["counts"])],
            [[b["id"], b["state"], *(b["counts"][k] for k in sorted(b["counts"]))]],
        ),
    )
    failed = created.get("counts", {}).get("failed", 0)
    return int(ExitCode.FAILED) if wait and (failed or created["state"] == "canceled") else 0


async def watch_batch(api: Api, out: Output, batch: dict[str, Any]) -> dict[str, Any]:
    """Poll the batch every 2 s until it is done or canceled: items ended of the total, counts by state,
    throughput, the server's ETA and the quota state, live on stderr."""
    with out.count_progress() as progress:
        bar = progress.add_task(
            f"batch {batch['id'][:8]}",
            total=batch["total"],
            completed=batch_ended(batch),
            stage=batch_stage(batch),
            eta=_eta(batch),
        )
        while True:
            await asyncio.sleep(BATCH_POLL_S)
            b = await api.call("GET", f"/api/v1/analyses/batches/{batch['id']}")
            progress.update(
                bar, total=b["total"], completed=batch_ended(b), stage=batch_stage(b), eta=_eta(b)
            )
            if b["state"] in BATCH_ENDED:
                return dict(b)


def batch_ended(b: dict[str, Any]) -> int:
    """How many of a batch's items have ended (whatever their outcome)."""
    counts = b.get("counts", {})
    return sum(counts.get(k, 0) for k in ("succeeded", "cached", "failed", "canceled"))


def batch_stage(b: dict[str, Any]) -> str:
    """A batch's counts by state, its throughput, and why it waits when the model quota holds it."""
    stage = " ".join(f"{k}={v}" for k, v in sorted(b.get("counts", {}).items()) if v)
    stage += f" {b.get('throughput_per_min', 0):.1f}/min"
    quota = b.get("quota", {})
    if quota.get("state") == "parked":
        stage += f" — {quota.get('message') or 'waiting for the model quota'}"
    return stage


def _eta(b: dict[str, Any] | None) -> str:
    """The server's estimate of the time left (``eta_s``), as rich shows one; ``-:--:--`` while unknown."""
    eta_s = (b or {}).get("eta_s")
    return "-:--:--" if eta_s is None else _clock(round(eta_s))


def _source(search_id: str | None, urls: tuple[str, ...], videos: tuple[str, ...]) -> dict[str, Any]:
    given = [
        s
        for s in (
            {"search_id": search_id} if search_id else None,
            {"urls": list(urls)} if urls else None,
            {"video_ids": list(videos)} if videos else None,
        )
        if s
    ]
    if len(given) != 1:
        raise CliError(
            "give exactly one of --query, --search, --url…, --video…",
            exit_code=ExitCode.USAGE,
            code="validation.source",
        )
    return given[0]


@api_command(cli, "rank")
@click.argument("title")
@click.option("--query", help="search this first and rank its results")
@click.option("--platform", type=click.Choice(["youtube", "tiktok"]), default="youtube", show_default=True)
@click.option("--search", "search_id", help="rank the results of an earlier search")
@click.option("--url", "urls", multiple=True, help="a clip's URL (repeat)")
@click.option("--video", "videos", multiple=True, help="one of your video ids (repeat)")
@click.option("-n", "n", default=5, show_default=True, type=click.IntRange(3, 10))
@click.option("--order", type=click.Choice(["countdown", "top_down"]), default="countdown", show_default=True)
@click.option(
    "--order-by",
    type=click.Choice(["views", "likes", "comments", "manual"]),
    default="views",
    show_default=True,
)
@click.option("--clip-seconds", default=8.0, show_default=True)
@click.option("--intro-seconds", type=float, help="the title card's length (default: the service's, 1.5)")
@click.option("--outro-seconds", type=float, help="the sources card's length (default: the service's, 3)")
@click.option("--language", default="en", show_default=True)
@click.option("--render/--no-render", default=True, show_default=True, help="render the short at once")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="download the rendered short here"
)
async def rank(
    api: Api,
    out: Output,
    title: str,
    query: str | None,
    platform: str,
    search_id: str | None,
    urls: tuple[str, ...],
    videos: tuple[str, ...],
    n: int,
    order: str,
    order_by: str,
    clip_seconds: float,
    intro_seconds: float | None,
    outro_seconds: float | None,
    language: str,
    render: bool,
    output: Path | None,
) -> int:
    """Make a "Top N" vertical short: from a search, URLs or your videos; render it with live progress."""
    if query:
        accepted = await api.call(
            "POST",
            "/api/v1/searches",
            json_body={"platform": platform, "query": query, "limit": max(n * 2, 10)},
        )
        board = await follow(api, out, [accepted["job_id"]])
        error = job_failure(board.jobs[accepted["job_id"]])
        if error:
            raise error
        search_id = accepted["search_id"]
    body = {
        "title": title,
        "source": _source(search_id, urls, videos),
        "n": n,
        "order": order,
        "order_by": order_by,
        "clip_seconds": clip_seconds,
        "language": language,
    }
    template = {k: v for k, v in (("intro_s", intro_seconds), ("outro_s", outro_seconds)) if v is not None}
    if template:
        body["options"] = template
    project = await api.call("POST", "/api/v1/rankings", json_body=body)
    result: dict[str, Any] = {"project": project}
    if render:
        started = await api.call("POST", f"/api/v1/rankings/{project['id']}/renders", json_body={})
        result["render"] = done = await watch_render(api, out, started)
        if done["status"] != "succeeded":
            raise CliError(
                f"the render {done['status']}: {(done.get('error') or {}).get('message', '')}",
                code=(done.get("error") or {}).get("code", "render.failed"),
            )
        if output is not None and done.get("download_url"):
            await _save(api, out, done["download_url"], output)
            result["path"] = str(output)
    out.result(
        result,
        lambda r: out.table(
            ["rank", "title", "views", "source"],
            [
                [i["rank"], i["title"], i.get("view_count"), i.get("source_url") or i.get("video_id")]
                for i in r["project"]["items"]
            ],
        ),
    )
    return 0


async def watch_render(api: Api, out: Output, render: dict[str, Any]) -> dict[str, Any]:
    """Poll a render once a second until it ends, with a bar of its progress and stage."""
    with out.job_progress() as progress:
        bar = progress.add_task(f"render {str(render['id'])[:8]}", total=100, stage=render.get("stage", ""))
        while render["status"] not in ("succeeded", "failed", "canceled"):
            await asyncio.sleep(POLL_INTERVAL_S)
            render = await api.call("GET", f"/api/v1/renders/{render['id']}")
            progress.update(bar, completed=render.get("progress", 0), stage=render.get("stage", ""))
        progress.update(
            bar,
            completed=100 if render["status"] == "succeeded" else render.get("progress", 0),
            stage=render["status"],
        )
    return render
