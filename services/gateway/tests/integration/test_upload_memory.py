"""A 200 MB upload through a running gateway process: every byte arrives, the gateway's memory stays flat."""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from common.testing.bus import unique_name
from common.testing.waiting import PeakSampler
from gateway.bench import free_port, spawn, stop, wait_http

from ..conftest import SEEN, fake_upstream_app

SIZE = 200 * 1024 * 1024
CHUNK = bytes(range(256)) * 1024  # 256 KiB of known bytes
MAX_GROWTH = 50 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert m, status
    return int(m.group(1)) * 1024


async def test_200mb_upload_is_streamed_with_bounded_memory(
    gateway_schema: str, database_url: str, aiohttp_server: Any
) -> None:
    upstream: TestServer = await aiohttp_server(fake_upstream_app("ingest"))
    port = free_port()
    with tempfile.TemporaryDirectory() as keys_dir:
        proc = spawn(
            ["gateway", "api"],
            {
                "HTTP_PORT": str(port),
                "DATABASE_URL": database_url,
                "DB_SCHEMA": gateway_schema,
                "GATEWAY_KEYS_DIR": keys_dir,
                "AMQP_URL": "memory://",
                "LOG_LEVEL": "WARNING",
                "RATE_LIMITER": "memory",
                "BUS_QUEUE": unique_name("gateway"),
                "ARGON2_MEMORY_KIB": "8192",
                "ARGON2_TIME_COST": "1",
                "UPSTREAM_INGEST": str(upstream.make_url("")).rstrip("/"),
            },
        )
        try:
            await wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as s:
                creds = {"email": f"{unique_name('up')}@example.com", "password": "upload password"}
                assert (await s.post(f"{base}/api/v1/auth/register", json=creds)).status == 201
                token = (await (await s.post(f"{base}/api/v1/auth/login", json=creds)).json())["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                # warm the proxy path once so the baseline includes its steady-state allocations
                async with s.put(f"{base}/api/v1/videos/warm/original", data=CHUNK * 8, headers=auth) as r:
                    assert r.status == 200
                baseline = rss_bytes(proc.pid)
                sent = hashlib.sha256()

                async def body() -> AsyncIterator[bytes]:
                    for _ in range(SIZE // len(CHUNK)):
                        sent.update(CHUNK)
                        yield CHUNK

                async with (
                    PeakSampler(lambda: rss_bytes(proc.pid), interval_s=0.05, start=baseline) as rss,
                    s.put(
                        f"{base}/api/v1/videos/big/original",
                        data=body(),
                        headers={**auth, "Content-Type": "video/mp4", "Content-Length": str(SIZE)},
                        timeout=aiohttp.ClientTimeout(total=300),
                    ) as r,
                ):
                    assert r.status == 200, await r.text()
                    echo = await r.json()
        finally:
            stop(proc)
    assert echo["body_len"] == SIZE
    assert echo["body_sha256"] == sent.hexdigest()
    assert upstream.app[SEEN][-1]["headers"]["Content-Length"] == str(SIZE)  # sized, not re-chunked
    assert rss.peak - baseline < MAX_GROWTH, f"gateway RSS grew by {(rss.peak - baseline) / 2**20:.1f} MiB"
    print(
        f"gateway RSS baseline {baseline / 2**20:.1f} MiB, peak {rss.peak / 2**20:.1f} MiB during a 200 MiB upload"
    )
