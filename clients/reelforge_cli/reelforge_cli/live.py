"""Jobs, live: the WebSocket ``/api/v1/ws`` (reconnected, re-read after each reconnect) and progress bars."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import aiohttp

from .client import Api, CliError, ExitCode
from .output import Output

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
CLOSE_EXPIRED, CLOSE_REVOKED = 4001, 4003


class JobBoard:
    """The newest state of each job, applying pushes as the gateway says (they may arrive out of order)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}

    def apply(self, job: dict[str, Any]) -> bool:
        """Take ``job`` if it ends the job or is newer (higher ``seq``); never change an ended job."""
        current = self.jobs.get(job["id"])
        if current is not None and (
            current["status"] in TERMINAL or (job["status"] not in TERMINAL and job["seq"] <= current["seq"])
        ):
            return False
        self.jobs[job["id"]] = job
        return True

    def all_ended(self, ids: Iterable[str]) -> bool:
        """Whether every one of ``ids`` is known and ended."""
        return all(self.jobs.get(i, {}).get("status") in TERMINAL for i in ids)


async def job_updates(
    api: Api, *, on_open: Callable[[], Awaitable[list[dict[str, Any]]]]
) -> AsyncIterator[dict[str, Any]]:
    """Every job snapshot of the caller, for ever: the socket's pushes, plus ``on_open()``'s jobs after each
    (re)connect (pushes sent while disconnected are not replayed, so the current state is read again)."""
    backoff = 1.0
    while True:
        await api.ensure_fresh()
        close_code: int | None = None
        try:
            async with api.session.ws_connect(
                api.url("/api/v1/ws"), headers=api.auth_headers(), heartbeat=30
            ) as ws:
                for job in await on_open():
                    yield job
                backoff = 1.0
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        data = json.loads(msg.data)
                        if data.get("type") == "job":
                            yield data["job"]
                close_code = ws.close_code
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status in (401, 403):
                raise CliError(
                    "the live connection was refused: log in again",
                    exit_code=ExitCode.AUTH,
                    code="auth.refused",
                ) from exc
        except (aiohttp.ClientConnectionError, TimeoutError):
            pass  # reconnect below
        if close_code == CLOSE_REVOKED:
            raise CliError(
                "the token or API key was revoked", exit_code=ExitCode.AUTH, code="auth.token_revoked"
            )
        if close_code == CLOSE_EXPIRED and not api.creds.api_key:
            await api.refresh(api.creds.access_token)
            continue
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 15.0)


async def current_jobs(api: Api, ids: Iterable[str], *, live: bool = False) -> list[dict[str, Any]]:
    """The jobs ``ids`` as they are now (one request each); ``live``: one the gateway does not know yet is left out.

    The gateway's job list is built from the services' events, so a job created a moment ago may not be in it
    yet; while following jobs over the socket (already open when this runs), it is pushed as soon as it is.
    """
    jobs = []
    for i in ids:
        try:
            jobs.append(await api.call("GET", f"/api/v1/jobs/{i}"))
        except CliError as exc:
            if not (live and exc.code == "job.not_found"):
                raise
    return jobs


def _describe(job: dict[str, Any]) -> str:
    return f"{job.get('kind', 'job')} {str(job['id'])[:8]}"


async def follow(api: Api, out: Output, job_ids: list[str], *, timeout_s: float | None = None) -> JobBoard:
    """Wait until every job of ``job_ids`` has ended, with a live bar per job (stderr); the final states."""
    board = JobBoard()
    if not job_ids:
        return board
    with out.job_progress() as progress:
        bars = {i: progress.add_task(f"job {i[:8]}", total=100, stage="") for i in job_ids}

        async def track() -> None:
            async for job in job_updates(api, on_open=lambda: current_jobs(api, job_ids, live=True)):
                if job["id"] not in bars or not board.apply(job):
                    continue
                stage = job["status"] if job["status"] in TERMINAL else (job.get("stage") or job["status"])
                done = 100 if job["status"] == "succeeded" else job.get("progress", 0)
                progress.update(bars[job["id"]], completed=done, stage=stage, description=_describe(job))
                if board.all_ended(job_ids):
                    return

        try:
            await asyncio.wait_for(track(), timeout_s)
        except TimeoutError:
            raise CliError(f"the job did not end within {timeout_s:.0f} s", code="job.timeout") from None
    return board


def job_failure(job: dict[str, Any]) -> CliError | None:
    """The error of a job that did not succeed, with its stable code; None if it succeeded."""
    if job["status"] == "succeeded":
        return None
    err = job.get("error") or {}
    code = err.get("code") or f"job.{job['status']}"
    exit_code = ExitCode.NO_CREDITS if code.startswith("credits.") else ExitCode.FAILED
    return CliError(
        f"{job.get('kind', 'job')} job {job['id']} {job['status']}: {err.get('message') or code} ({code})",
        exit_code=exit_code,
        code=code,
    )


def outcome(out: Output, job: dict[str, Any]) -> int:
    """The exit code of a command whose result (already printed) ends with ``job``; a failure is also said on stderr."""
    error = job_failure(job)
    if error is None:
        return 0
    out.error(error, in_result=True)
    return int(error.exit_code)
