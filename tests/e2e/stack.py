"""Boot the whole platform as real processes (every service's api and worker) on free ports, for e2e tests.

Each stack gets private schemas, exchanges, queues and storage, so it can run beside other suites.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from common import registry
from common.testing.process import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = registry.NAMES
#: settings of one service's processes (the failing-translation test need not wait for five back-offs)
SERVICE_ENV: dict[str, dict[str, str]] = {
    # a killed worker's job is free for another after its lease: short leases keep the takeover tests short
    "captions": {"TRANSLATE_ATTEMPTS": "2", "TRANSLATE_RETRY_INITIAL_S": "0.2", "JOB_LEASE_S": "6"},
    "render": {"JOB_LEASE_S": "6"},
}
WORKERS = registry.WORKERS
#: processes started otherwise than ``python -m <svc> <role>``: ingest's worker searches recorded yt-dlp answers
#: (a test cannot reach YouTube); everything else it does is ingest's own (tests/e2e/recorded_search.py)
ENTRY_POINTS = {"ingest:worker": [str(ROOT / "tests/e2e/recorded_search.py")]}


@dataclass
class Proc:
    """One running service process."""

    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 40) -> str:
        """The last lines this process logged."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class Stack:
    """The platform's processes and how to reach them."""

    workdir: Path
    env: dict[str, str]
    tag: str
    procs: dict[str, Proc] = field(default_factory=dict)
    #: settings of one service's processes, over ``env``
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def search_recordings(self) -> Path:
        """Where a test records the platform's answer to a search (``recorded_search.recording``)."""
        return self.workdir / "searches"

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway."""
        return f"http://127.0.0.1:{self.procs['gateway:api'].port}"

    def url(self, name: str) -> str:
        """Base URL of a process, e.g. ``streaming:worker``."""
        return f"http://127.0.0.1:{self.procs[name].port}"

    def schema(self, service: str) -> str:
        """The private schema a service uses in this stack."""
        return f"{service}_{self.tag}"

    def service_env(self, service: str) -> dict[str, str]:
        """The environment a service process of this stack runs with."""
        return {
            **self.env,
            **self.overrides.get(service, {}),
            "DB_SCHEMA": self.schema(service),
            "BUS_QUEUE": f"{service}-{self.tag}",
        }

    def start(self, service: str, role: str, *, port: int | None = None) -> Proc:
        """Start (or restart) one process."""
        name = f"{service}:{role}"
        port = port or (self.procs[name].port if name in self.procs else free_port())
        log = self.workdir / f"{service}-{role}.log"
        env = {**self.service_env(service), "HTTP_PORT": str(port), "WORKER_PORT": str(port)}
        popen = subprocess.Popen(
            [sys.executable, *ENTRY_POINTS.get(name, ["-m", service]), role],
            cwd=self.workdir,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(name, port, popen, log)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process (and whatever it started: it leads its own session) and wait for it to end."""
        proc = self.procs[name]
        if proc.popen.poll() is None:
            os.killpg(proc.popen.pid, sig)
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()

    def stop(self) -> None:
        """SIGTERM everything (graceful shutdown), then SIGKILL stragglers."""
        for proc in self.procs.values():
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()

    async def wait_ready(self, names: list[str] | None = None, timeout: float = 90.0) -> None:
        """Poll every process's /readyz until all answer 200."""
        pending = set(names or self.procs)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
            while pending:
                for name in list(pending):
                    proc = self.procs[name]
                    if proc.popen.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.popen.returncode}:\n{proc.tail()}")
                    try:
                        async with http.get(f"http://127.0.0.1:{proc.port}/readyz") as r:
                            if r.status == 200:
                                pending.discard(name)
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                if pending and time.monotonic() > deadline:
                    details = "\n\n".join(f"== {n}\n{self.procs[n].tail()}" for n in sorted(pending))
                    raise TimeoutError(f"not ready after {timeout}s: {sorted(pending)}\n{details}")
                await asyncio.sleep(0.3)


def make_stack(
    workdir: Path,
    *,
    database_url: str,
    amqp_url: str,
    redis_url: str = "",
    extra_env: dict[str, str] | None = None,
    service_env: dict[str, dict[str, str]] | None = None,
) -> Stack:
    """A stack description with private names; call ``migrate_all`` then ``start_all``."""
    tag = uuid.uuid4().hex[:8]
    ports = {svc: free_port() for svc in SERVICES}
    (workdir / "storage").mkdir(parents=True, exist_ok=True)
    (workdir / "searches").mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "REDIS_URL": redis_url,
        "BUS_EXCHANGE": f"e2e.{tag}.events",
        "BUS_DLX": f"e2e.{tag}.dlx",
        "BUS_RETRY_DELAYS_MS": "200,1000",
        "STORAGE_URL": f"file://{workdir / 'storage'}",
        "TMP_DIR": str(workdir / "tmp"),
        "JWKS_URL": f"http://127.0.0.1:{ports['gateway']}/.well-known/jwks.json",
        "GATEWAY_KEYS_DIR": str(workdir / "keys"),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['gateway']}",
        "IMPORT_ALLOW_PRIVATE": "true",
        "E2E_SEARCH_RECORDINGS": str(workdir / "searches"),
        # every journey registers users from 127.0.0.1; the auth limit itself is tested in the gateway suite
        "RATE_LIMIT_AUTH": "1000",
        # the browser journey does a user's half hour in two minutes (well over 100 requests a minute); 429s are
        # "not yet" to the other journeys, and the limit itself is tested in the gateway suite
        "RATE_LIMIT_DEFAULT": "1000",
        "RATE_LIMIT_KEY_PREFIX": f"e2e:{tag}:rl",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        # the Credits page's "Pay (test)" plays the payment provider against billing's real webhook
        "BILLING_TEST_PAYMENTS": "true",
        "PAYMENT_WEBHOOK_SECRET": f"whsec_e2e_{tag}",
        "REELFORGE_MEDIA_CACHE": os.environ.get("REELFORGE_MEDIA_CACHE", str(ROOT / "var/cache/media")),
        **{f"UPSTREAM_{svc.upper()}": f"http://127.0.0.1:{ports[svc]}" for svc in registry.UPSTREAMS},
        "BILLING_URL": f"http://127.0.0.1:{ports['billing']}",
        "INGEST_URL": f"http://127.0.0.1:{ports['ingest']}",
        # one assembled whisper model for every stack (checked against its sha256 at each load)
        "WHISPER_CACHE_DIR": os.environ.get("WHISPER_CACHE_DIR", str(ROOT / "var/cache/whisper")),
        "WHISPER_BEAM_SIZE": "1",
        # two stacks of ~15 processes may run at once (the takeover test's beside the session's): stay well inside
        # Postgres's default 100 connections
        "DB_POOL_MAX": "5",
        "DB_POOL_IDLE_S": "5",  # idle services give their connections back: tests beside the stack need them
        **(extra_env or {}),
    }
    overrides = {svc: {**SERVICE_ENV.get(svc, {}), **(service_env or {}).get(svc, {})} for svc in SERVICES}
    stack = Stack(workdir=workdir, env=env, tag=tag, overrides=overrides)
    stack._ports = ports  # type: ignore[attr-defined]
    return stack


def migrate_all(stack: Stack) -> None:
    """Run ``python -m <svc> migrate`` for every service (as ``make up`` does)."""
    for svc in SERVICES:
        done = subprocess.run(
            [sys.executable, "-m", svc, "migrate"],
            cwd=stack.workdir,
            env=stack.service_env(svc),
            capture_output=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{svc} migrate exited {done.returncode}:\n{done.stdout.decode(errors='replace')[-3000:]}"
            )


def start_all(stack: Stack) -> None:
    """Start every api and worker process."""
    ports: dict[str, int] = stack._ports  # type: ignore[attr-defined]
    for svc in SERVICES:
        stack.start(svc, "api", port=ports[svc])
    for svc in WORKERS:
        stack.start(svc, "worker")


def drop_schemas(stack: Stack, database_url: str) -> None:
    """Remove the stack's schemas."""
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for svc in SERVICES:
                await conn.execute(f"DROP SCHEMA IF EXISTS {stack.schema(svc)} CASCADE")
        finally:
            await conn.close()

    asyncio.run(drop())
