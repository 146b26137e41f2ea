"""A service process for crash tests: ``python -m <service> <role>`` as a real subprocess, killed for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp

from .bus import RabbitBusFactory
from .waiting import wait_for

__all__ = ["ServiceProcess", "crash_worker_env", "free_port", "process_env"]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def process_env(
    *,
    database_url: str,
    schema: str,
    bus: RabbitBusFactory,
    queue: str,
    port: int,
    files: Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a service process with private names (schema, ``bus``'s exchanges, queue) on ``port``.

    ``files``: a folder for the process's object store (``files/store``) and scratch files (``files/scratch``).
    ``extra`` adds or overrides variables by their names (``JOB_LEASE_S="2"``).
    """
    if files is not None:
        extra = {"STORAGE_URL": f"file://{files / 'store'}", "TMP_DIR": str(files / "scratch"), **extra}
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DB_SCHEMA": schema,
        "AMQP_URL": bus.amqp_url,
        "BUS_EXCHANGE": bus.exchange,
        "BUS_DLX": bus.dlx,
        "BUS_QUEUE": queue,
        "HTTP_PORT": str(port),
        "WORKER_PORT": str(port),  # the worker role listens on WORKER_PORT
        "LOG_FORMAT": "json",
        # test processes run beside each other and the e2e stack on one Postgres (100 connections by default)
        "DB_POOL_MAX": "5",
        "DB_POOL_IDLE_S": "5",
        **extra,
    }


def crash_worker_env(
    service: str, *, database_url: str, schema: str, bus: RabbitBusFactory, files: Path, **extra: str
) -> dict[str, str]:
    """A worker process's environment for a crash test: a private queue (``BUS_QUEUE``), a free port
    (``WORKER_PORT``), bus retries after 200 ms, and this test run's ``sys.path`` (``extra`` adds or overrides)."""
    return process_env(
        database_url=database_url,
        schema=schema,
        bus=bus,
        queue=f"{service}-crash-{uuid.uuid4().hex[:8]}",
        port=free_port(),
        files=files,
        **{"BUS_RETRY_DELAYS_MS": "200", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **extra},
    )


class ServiceProcess:
    """One service process; ``start`` returns once its ``/readyz`` answers 200 on ``port``.

    The environment must make the process listen on ``port`` (``WORKER_PORT`` for a worker, ``HTTP_PORT`` for an
    api). Its output is appended to ``log`` so a failure can show what the process said.
    """

    def __init__(
        self,
        service: str,
        env: dict[str, str],
        port: int,
        log: Path,
        *,
        role: str = "worker",
        cwd: Path | None = None,
    ) -> None:
        self.service, self.env, self.port, self.log, self.role, self.cwd = service, env, port, log, role, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until it is ready."""
        out = self.log.open("ab")
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited
            [sys.executable, "-m", self.service, self.role],
            env=self.env,
            cwd=self.cwd,
            stdout=out,
            stderr=out,
        )
        out.close()

        async def ready() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, f"{self.service} {self.role} exited:\n{self.tail()}"
            try:
                async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(ready, timeout=timeout, interval=0.1, message=f"{self.service} {self.role} ready")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, nothing in hand is acked or handed back."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL if it does not end within 20 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, chars: int = 3000) -> str:
        """The end of what the process logged."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
