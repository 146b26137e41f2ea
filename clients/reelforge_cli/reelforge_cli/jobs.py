"""jobs: list them, or watch them change live over the WebSocket."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.live import Live
from rich.table import Table

from .app import api_command, cli
from .client import Api, CliError
from .live import JobBoard, current_jobs, job_failure, job_updates
from .output import Output

_COLUMNS = ["id", "kind", "status", "progress", "stage", "error", "updated"]


def _row(job: dict[str, Any]) -> list[str]:
    err = job.get("error") or {}
    return [
        job["id"][:8],
        job["kind"],
        job["status"],
        f"{job.get('progress', 0):.0f}%",
        job.get("stage") or "",
        err.get("code", ""),
        (job.get("updated_at") or "")[11:19],
    ]


def _table(jobs: list[dict[str, Any]]) -> Table:
    t = Table()
    for c in _COLUMNS:
        t.add_column(c)
    for job in jobs:
        t.add_row(*_row(job))
    return t


@api_command(cli, "jobs")
@click.option("--status", default="", help="comma-separated: queued,running,succeeded,failed,canceled")
@click.option(
    "--kind", default="", help="comma-separated job kinds (import, transcode, captions, analysis, render, …)"
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--watch",
    is_flag=True,
    help="stay connected and show every change live (--json: one JSON line per change)",
)
@click.option(
    "--job",
    "job_ids",
    multiple=True,
    help="only this job (repeat); with --watch, exit when they have all ended",
)
@click.option("--timeout", type=float, default=None, help="stop watching after this many seconds")
async def jobs(
    api: Api,
    out: Output,
    status: str,
    kind: str,
    limit: int,
    watch: bool,
    job_ids: tuple[str, ...],
    timeout: float | None,
) -> int:
    """Your jobs (every kind), newest first; --watch follows them live over the WebSocket."""
    params = {"limit": str(limit)} | ({"status": status} if status else {}) | ({"kind": kind} if kind else {})

    async def snapshot() -> list[dict[str, Any]]:
        if job_ids:
            return await current_jobs(api, job_ids, live=watch)
        return list((await api.call("GET", "/api/v1/jobs", params=params))["items"])

    if not watch:
        items = await snapshot()
        out.result(items, lambda js: out.out.print(_table(js)))
        return 0
    try:
        board = await asyncio.wait_for(_watch(api, out, snapshot, set(job_ids)), timeout)
    except TimeoutError:
        return 0
    failures = [f for f in (job_failure(board.jobs[i]) for i in job_ids) if f]
    return int(failures[0].exit_code) if failures else 0


async def _watch(api: Api, out: Output, snapshot: Any, only: set[str]) -> JobBoard:
    board = JobBoard()
    # a live table on a terminal; otherwise (--json, or plain progress) a line per change
    live = (
        Live(_table([]), console=out.out, auto_refresh=False)
        if out.live and out.out.is_terminal and not out.as_json
        else None
    )
    if live is not None:
        live.start()
    connects = 0

    async def connected() -> list[dict[str, Any]]:
        # said once the socket is open (stderr, kept out of --json): from here on no change is missed
        nonlocal connects
        jobs: list[dict[str, Any]] = await snapshot()
        connects += 1
        out.note("watching live (Ctrl+C to stop)" if connects == 1 else "reconnected: watching live again")
        return jobs

    try:
        async for job in job_updates(api, on_open=connected):
            if (only and job["id"] not in only) or not board.apply(job):
                continue
            if out.as_json:
                out.json_line(job)
            elif live is None:
                out.out.print("  ".join(v for v in _row(job) if v), markup=False)
            else:
                shown = sorted(board.jobs.values(), key=lambda j: j.get("created_at") or "", reverse=True)
                live.update(_table(shown[:30]), refresh=True)
            if only and board.all_ended(only):
                return board
    finally:
        if live is not None:
            live.stop()
    raise CliError("the live connection ended")  # job_updates reconnects for ever: not reached
