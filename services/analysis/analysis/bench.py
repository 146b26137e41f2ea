"""``make bench-analysis``: a batch of 2,376 URLs through the service, then the same batch again (all cached).

The platform runs for real: the analysis api (in this process) and two worker processes on a fresh schema, RabbitMQ,
Redis (the quota governor) and the filesystem store. Outside it, in a child process of its own (so that it does not
share an event loop or a GIL with the api): a video platform on 127.0.0.1 whose pages yt-dlp reads (json3 subtitles,
one distinct transcript a video) and a Gemini stub that answers in 1 s and allows 1,000 requests and 1M tokens a
minute (429 with ``RetryInfo`` beyond, as Gemini does). In this process, billing's side of the saga (every hold
granted; the settles are read from the outbox). Printed: wall time, items lost, 429s the stub sent, the workers' CPU
per item (from /proc; the stand-ins' CPU is printed apart), and the credits each run captured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from common import db
from common.events.base import decode_as
from common.events.billing import CreditsHoldGranted, CreditsSettleRequested
from common.storage.fs import FileStore
from common.testing.auth import TokenFactory
from common.testing.bus import RabbitBusFactory, delete_queues, service_queues
from common.testing.gemini import GeminiStub, analysis_reply
from common.testing.http import price_list, serving
from common.testing.process import ServiceProcess, free_port, process_env
from common.testing.subtitles import SubtitleServer, talk

from .app import create_app
from .config import AnalysisSettings

ROOT = Path(__file__).resolve().parents[3]
PRICE = 5


class _CountingStub(GeminiStub):
    """The Gemini stub with ``GET /_bench/stats``: requests seen and refused (the stub runs in another process)."""

    def routes(self, app: web.Application) -> None:
        """The stub's routes and the counters."""
        super().routes(app)
        app.router.add_get("/_bench/stats", self._stats)

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response({"requests": len(self.requests), "refused": self.refused})


def _stand_ins(items: int, pipe: Connection) -> None:
    """The child process: the subtitle platform and the Gemini stub, until the parent says stop (or goes away)."""

    async def serve() -> None:
        async with SubtitleServer() as platform, _CountingStub() as gemini:
            gemini.responder = analysis_reply
            gemini.delay_s, gemini.window_s = 1.0, 60.0
            gemini.requests_per_window, gemini.tokens_per_window = 1000, 1_000_000
            urls = [platform.add(f"b{k}", talk(f"Welcome to video number {k}.")) for k in range(items)]
            pipe.send((gemini.base_url, gemini.api_key, urls))
            await asyncio.to_thread(_wait_for_stop, pipe)

    asyncio.run(serve())


def _wait_for_stop(pipe: Connection) -> None:
    with contextlib.suppress(EOFError):
        pipe.recv()


class _StandIns:
    """The child process of the stand-ins, seen from the bench."""

    def __init__(self, items: int) -> None:
        self._pipe, child = multiprocessing.get_context("spawn").Pipe()
        self.proc = multiprocessing.get_context("spawn").Process(
            target=_stand_ins, args=(items, child), daemon=True
        )
        self.proc.start()
        child.close()
        self.gemini_url, self.api_key, self.urls = "", "", list[str]()

    async def started(self) -> None:
        """Wait for the servers' addresses."""
        self.gemini_url, self.api_key, self.urls = await asyncio.to_thread(self._pipe.recv)

    async def stats(self, http: aiohttp.ClientSession) -> dict[str, int]:
        """The stub's counters."""
        async with http.get(f"{self.gemini_url}/_bench/stats") as r:
            stats: dict[str, int] = await r.json()
            return stats

    def cpu_s(self) -> float:
        """The child's CPU seconds so far."""
        assert self.proc.pid is not None
        return _cpu_s(self.proc.pid)

    def stop(self) -> None:
        """Stop the servers and the process."""
        with contextlib.suppress(OSError):
            self._pipe.send("stop")
        self.proc.join(timeout=20)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _grant_holds(pool: asyncpg.Pool, bus: Any, stop: asyncio.Event) -> None:
    """Billing's answer to every hold: granted."""
    granted: set[str] = set()
    while not stop.is_set():
        rows = await pool.fetch(
            "SELECT hold_ref, account_id, amount FROM credit_holds WHERE status = 'requested'"
        )
        for r in rows:
            if r["hold_ref"] not in granted:
                granted.add(r["hold_ref"])
                event = CreditsHoldGranted(
                    hold_ref=r["hold_ref"], account_id=r["account_id"], amount=r["amount"], producer="billing"
                )
                await bus.publish(event)
        await asyncio.sleep(0.5)


async def _captured(pool: asyncpg.Pool) -> int:
    rows = await pool.fetch("SELECT body FROM outbox WHERE routing_key = 'credits.settle_requested.v1'")
    return sum(decode_as(bytes(r["body"]), CreditsSettleRequested).capture for r in rows)


async def _run_batch(
    http: aiohttp.ClientSession, base: str, auth: dict[str, str], urls: list[str], pool: asyncpg.Pool
) -> dict[str, Any]:
    started = time.perf_counter()
    captured_before = await _captured(pool)
    async with http.post(
        f"{base}/api/v1/analyses/batches", json={"items": [{"url": u} for u in urls]}, headers=auth
    ) as r:
        assert r.status == 202, await r.text()
        batch_id = (await r.json())["batch"]["id"]
    shown = 0.0
    while True:
        async with http.get(f"{base}/api/v1/analyses/batches/{batch_id}", headers=auth) as r:
            batch = await r.json()
        if batch["state"] == "done":
            break
        if time.perf_counter() - started - shown >= 20.0:  # the pace: CPU-bound or quota-bound
            shown = time.perf_counter() - started
            ended = sum(batch["counts"][s] for s in ("succeeded", "cached", "failed", "canceled"))
            print(f"  {shown:5.0f} s: {ended} ended", flush=True)
        await asyncio.sleep(1.0)
    wall = time.perf_counter() - started
    await asyncio.sleep(2.0)  # the last chunks' settles reach the outbox with their job's end
    counts = batch["counts"]
    ended = sum(counts[s] for s in ("succeeded", "cached", "failed", "canceled"))
    return {
        "wall_s": round(wall, 1),
        "counts": counts,
        "items_lost": len(urls) - ended,
        "credits_charged": batch["credits"],
        "credits_captured": await _captured(pool) - captured_before,
    }


async def _workers(env: dict[str, str], n: int, logs: Path) -> list[ServiceProcess]:
    procs = []
    for k in range(n):
        port = free_port()
        proc = ServiceProcess(
            "analysis", {**env, "WORKER_PORT": str(port)}, port, logs / f"worker-{k}.log", cwd=ROOT
        )
        await proc.start(timeout=120)
        procs.append(proc)
    return procs


async def bench(*, items: int, workers: int, workdir: Path) -> dict[str, Any]:
    """Run the benchmark; its numbers."""
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    tag = uuid.uuid4().hex[:8]
    schema, queue = f"bench_analysis_{tag}", f"bench-analysis-{tag}"
    stand_ins, buses = _StandIns(items), RabbitBusFactory(amqp_url)
    await stand_ins.started()
    urls = stand_ins.urls
    bus = await buses()
    env = process_env(
        database_url=database_url,
        schema=schema,
        bus=buses,
        queue=queue,
        port=0,
        files=workdir,
        REDIS_URL=redis_url,
        GEMINI_API_KEY=stand_ins.api_key,
        GEMINI_BASE_URL=stand_ins.gemini_url,
        GEMINI_MODEL="gemini-stub",
        GEMINI_QUOTA_PREFIX=f"bench-quota-{tag}",
        IMPORT_ALLOW_PRIVATE="true",
        JOB_CONCURRENCY="12",
        BATCH_CHUNK_SIZE="100",
        BATCH_ITEM_CONCURRENCY="24",
        LOG_LEVEL="WARNING",
    )
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "analysis", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    settings = AnalysisSettings.from_env(env, billing_url=f"http://127.0.0.1:{free_port()}")
    tokens = TokenFactory()
    app = create_app(
        settings, role="api", bus=bus, store=FileStore(workdir / "store"), verifier=tokens.verifier()
    )
    app.cleanup_ctx.insert(0, price_list(settings.billing_url, {"analysis_per_video": PRICE}))
    procs: list[ServiceProcess] = []
    stop = asyncio.Event()
    pool = await db.create_pool(database_url, schema=schema, min_size=1, max_size=2)
    try:
        async with serving(app) as (host, port), aiohttp.ClientSession() as http:
            procs = await _workers(env, workers, workdir)
            granter = asyncio.create_task(_grant_holds(pool, bus, stop))
            auth = {"Authorization": f"Bearer {tokens.token(uuid.uuid4())}"}
            base = f"http://{host}:{port}"
            out: dict[str, Any] = {"items": items, "workers": workers}
            for name in ("first", "again"):
                cpu, outside = sum(_cpu_s(p.proc.pid) for p in procs if p.proc), stand_ins.cpu_s()
                before = await stand_ins.stats(http)
                run = await _run_batch(http, base, auth, urls, pool)
                run["worker_cpu_ms_per_item"] = round(
                    1000 * (sum(_cpu_s(p.proc.pid) for p in procs if p.proc) - cpu) / items, 1
                )
                run["stand_ins_cpu_ms_per_item"] = round(1000 * (stand_ins.cpu_s() - outside) / items, 1)
                after = await stand_ins.stats(http)
                run["gemini_requests"] = after["requests"] - before["requests"]
                run["gemini_429s"] = after["refused"] - before["refused"]
                out[name] = run
            stop.set()
            await granter
            return out
    finally:
        for proc in procs:
            proc.stop()
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()
        await buses.cleanup()
        await delete_queues(amqp_url, service_queues(queue, settings.bus_retry_delays_ms))
        stand_ins.stop()


def main(argv: list[str] | None = None) -> int:
    """Run and print."""
    parser = argparse.ArgumentParser(prog="python -m analysis.bench")
    parser.add_argument("--items", type=int, default=2376)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-analysis")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(bench(items=args.items, workers=args.workers, workdir=args.workdir))
    for name in ("first", "again"):
        r = result[name]
        print(
            f"{name:>5}: {result['items']} items in {r['wall_s']} s wall, {r['items_lost']} lost, states {r['counts']},"
            f" {r['gemini_requests']} model requests, {r['gemini_429s']} answered 429,"
            f" worker CPU {r['worker_cpu_ms_per_item']} ms/item (stand-ins {r['stand_ins_cpu_ms_per_item']} ms/item),"
            f" credits captured {r['credits_captured']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
