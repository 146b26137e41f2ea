"""``python -m gateway.bench``: proxied GET through the gateway vs the same GET straight to the upstream.

Three processes: a trivial upstream (``python -m gateway.bench upstream``), the real gateway
(``python -m gateway api``: real Postgres schema, Redis limiter when reachable, else in-process) and this
process as the load generator (its own event loop, aiohttp client, bounded concurrency). The limit is raised
so the run measures the proxy's overhead (JWT verify + revocation check + limiter + proxying), not 429s.

Besides req/s and latency, each run reports the CPU time (user + system, from ``/proc/<pid>/stat``) that the
gateway and the upstream processes spent per request. On a shared machine req/s moves with whatever else runs;
CPU µs per request does not, so it is the number to compare between versions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
BODY = json.dumps({"id": "bench", "title": "a trivial upstream answer", "status": "ready"}).encode()
MAX_REQUESTS = 200_000
MAX_CONCURRENCY = 1024
MAX_ROUNDS = 10
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process ``pid`` (all its threads) has used; None off Linux or when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: the fields we want follow the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15 of proc(5))


def _bounded(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be between {low} and {high}")
        return value

    return parse


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(
    url: str, *, timeout_s: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers 200 (or fail, with the process's exit status if it died)."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} did not come up in {timeout_s}s")


def spawn(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a Python module in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", *args], env={**os.environ, **env}, stdout=subprocess.DEVNULL
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a process we started and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def upstream_app() -> web.Application:
    """The trivial upstream: a small JSON answer to any path."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/healthz", answer)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def drive(
    url: str,
    *,
    headers: dict[str, str],
    requests: int,
    concurrency: int,
    processes: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """``requests`` GETs with ``concurrency`` in flight; throughput, latency percentiles (ms) and, for each of
    ``processes`` (name -> pid), the CPU µs it spent per request (``cpu_us_<name>``)."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)

        async def worker() -> None:
            nonlocal errors
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                async with session.get(url, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        pids = {"loadgen": os.getpid(), **(processes or {})}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    latencies.sort()
    result = {
        "requests": requests,
        "errors": errors,
        "rps": requests / wall,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }
    for name in pids:
        before, after = cpu_before[name], cpu_after[name]
        if before is not None and after is not None:
            result[f"cpu_us_{name}"] = (after - before) / requests * 1e6
    return result


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-metric median over rounds (errors are summed)."""
    if len(runs) == 1:
        return runs[0]
    out = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k not in ("errors", "requests")}
    out["errors"] = sum(r["errors"] for r in runs)
    out["requests"] = runs[0]["requests"]
    return out


async def _redis_reachable(url: str) -> bool:
    from redis.asyncio import Redis

    client: Redis[Any] = Redis.from_url(url, socket_connect_timeout=1)
    try:
        await client.ping()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()  # type: ignore[attr-defined]


async def _authorization(gw: str, *, api_key: bool) -> dict[str, str]:
    """A fresh account's ``Authorization``: its access token, or an API key made with it."""
    async with aiohttp.ClientSession() as s:
        creds = {"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark password"}
        async with s.post(f"{gw}/api/v1/auth/register", json=creds) as r:
            assert r.status == 201, await r.text()
        async with s.post(f"{gw}/api/v1/auth/login", json=creds) as r:
            token = (await r.json())["access_token"]
        if api_key:
            body = {"name": "bench", "scope": "read"}
            async with s.post(
                f"{gw}/api/v1/auth/keys", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as r:
                token = (await r.json())["key"]
    return {"Authorization": f"Bearer {token}"}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start upstream and gateway, warm up, measure both paths, tear down."""
    from common import db

    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    limiter = "redis" if args.limiter != "memory" and await _redis_reachable(redis_url) else "memory"
    schema = f"gateway_bench_{uuid.uuid4().hex[:8]}"
    await db.migrate(database_url, schema=schema, directories=[MIGRATIONS])
    up_port, gw_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as keys_dir:
            procs.append(spawn(["gateway.bench", "upstream", "--port", str(up_port)], {}))
            procs.append(
                spawn(
                    ["gateway", "api"],
                    {
                        "HTTP_PORT": str(gw_port),
                        "DATABASE_URL": database_url,
                        "DB_SCHEMA": schema,
                        "GATEWAY_KEYS_DIR": keys_dir,
                        "AMQP_URL": "memory://",
                        "LOG_LEVEL": "WARNING",
                        "RATE_LIMITER": limiter,
                        "REDIS_URL": redis_url if limiter == "redis" else "",
                        "RATE_LIMIT_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
                        "RATE_LIMIT_DEFAULT": str(10**9),
                        "RATE_LIMIT_API_KEY": str(10**9),
                        "RATE_LIMIT_AUTH": "1000",
                        "UPSTREAM_INGEST": f"http://127.0.0.1:{up_port}",
                        "ARGON2_MEMORY_KIB": "8192",
                        "ARGON2_TIME_COST": "1",
                    },
                )
            )
            await wait_http(f"http://127.0.0.1:{up_port}/healthz", proc=procs[0])
            await wait_http(f"http://127.0.0.1:{gw_port}/healthz", proc=procs[1])
            gw = f"http://127.0.0.1:{gw_port}"
            auth = await _authorization(gw, api_key=args.auth == "api-key")
            path = "/api/v1/videos/bench"
            direct_url, proxied_url = f"http://127.0.0.1:{up_port}{path}", f"{gw}{path}"
            for url in (direct_url, proxied_url):  # warm-up: connections, caches, JIT-free but still
                await drive(url, headers=auth, requests=min(200, args.requests), concurrency=args.concurrency)
            pids = {"upstream": procs[0].pid, "gateway": procs[1].pid}
            runs: dict[str, list[dict[str, float]]] = {direct_url: [], proxied_url: []}
            for _ in range(args.rounds):  # interleaved, so a burst of outside load hits both targets alike
                for url, done in runs.items():
                    done.append(
                        await drive(
                            url,
                            headers=auth,
                            requests=args.requests,
                            concurrency=args.concurrency,
                            processes=pids,
                        )
                    )
            direct, proxied = _median_run(runs[direct_url]), _median_run(runs[proxied_url])
    finally:
        for p in procs:
            stop(p)
        await db.drop_schema(database_url, schema)
    result: dict[str, Any] = {
        "limiter": limiter,
        "auth": args.auth,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "direct": direct,
        "gateway": proxied,
        "rps_ratio": proxied["rps"] / direct["rps"],
        "p50_overhead_ms": proxied["p50_ms"] - direct["p50_ms"],
    }
    if "cpu_us_gateway" in proxied and "cpu_us_upstream" in proxied:
        # what one proxied request costs the gateway, against what the upstream's own work costs
        result["gateway_cpu_us_per_request"] = proxied["cpu_us_gateway"]
        result["upstream_cpu_us_per_request"] = proxied["cpu_us_upstream"]
        result["gateway_to_upstream_cpu_ratio"] = proxied["cpu_us_gateway"] / max(
            proxied["cpu_us_upstream"], 1e-9
        )
    return result


def _print(result: dict[str, Any]) -> None:
    rounds = f", median of {result['rounds']} rounds" if result["rounds"] > 1 else ""
    print(
        f"gateway bench: {result['requests']} GETs per target, concurrency {result['concurrency']}{rounds}, "
        f"{result['cpus']} CPUs, limiter={result['limiter']} (3 processes: upstream, gateway, load generator)"
    )

    def cpu(r: dict[str, float], name: str) -> str:
        value = r.get(f"cpu_us_{name}")
        return f"{value:>9.0f}" if value is not None else f"{'-':>9}"

    print(
        f"{'target':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f"   CPU µs/req: {'gateway':>9} {'upstream':>9} {'loadgen':>9}"
    )
    for name in ("direct", "gateway"):
        r = result[name]
        print(
            f"{name:<10} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>7}"
            f"               {cpu(r, 'gateway')} {cpu(r, 'upstream')} {cpu(r, 'loadgen')}"
        )
    print(
        f"gateway/direct throughput ratio: {result['rps_ratio']:.2f}; "
        f"added p50 latency: {result['p50_overhead_ms']:.2f} ms"
    )
    if "gateway_cpu_us_per_request" in result:
        print(
            f"CPU per proxied request: gateway {result['gateway_cpu_us_per_request']:.0f} µs, "
            f"upstream {result['upstream_cpu_us_per_request']:.0f} µs "
            f"(gateway/upstream {result['gateway_to_upstream_cpu_ratio']:.2f})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m gateway.bench [--requests N] [--concurrency C] [--rounds R] [--json]`` or ``upstream --port P``."""
    parser = argparse.ArgumentParser(prog="python -m gateway.bench")
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "upstream"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--requests",
        type=_bounded("--requests", 1, MAX_REQUESTS),
        default=3000,
        help="GETs per target and round",
    )
    parser.add_argument(
        "--concurrency",
        type=_bounded("--concurrency", 1, MAX_CONCURRENCY),
        default=32,
        help="requests in flight",
    )
    parser.add_argument(
        "--rounds",
        type=_bounded("--rounds", 1, MAX_ROUNDS),
        default=1,
        help="alternate direct/gateway runs this many times; report the medians",
    )
    parser.add_argument("--limiter", choices=["auto", "memory"], default="auto")
    parser.add_argument(
        "--auth",
        choices=["jwt", "api-key"],
        default="jwt",
        help="authenticate with an access token or an API key",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.mode == "upstream":
        web.run_app(upstream_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)
        return 0
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    failed = {name: result[name]["errors"] for name in ("direct", "gateway") if result[name]["errors"]}
    if failed:
        # a run whose requests were refused (401, 429, 5xx) measured the refusal, not the proxy
        print(f"gateway bench: INVALID, non-200 answers: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
