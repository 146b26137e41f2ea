"""Serving an app as production does, and a client that hangs up mid-download (a player seeking or closing)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import REGISTRY

__all__ = ["hang_up_mid_download", "requests_counted", "serving"]


def requests_counted(service: str, *, status: str) -> float:
    """``reelforge_http_requests_total`` of ``service`` (this process) whose status starts with ``status``."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "reelforge_http_requests"
        for sample in metric.samples
        if sample.name.endswith("_total")
        and sample.labels.get("service") == service
        and sample.labels.get("status", "").startswith(status)
    )


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[tuple[str, int]]:
    """``app`` on a free port of 127.0.0.1 with ``web.run_app``'s runner settings, as ``(host, port)``.

    Unlike aiohttp's test server, a handler is not cancelled when its client goes away (``run_app`` does not cancel
    either), so the handler meets the hang-up where production does: as an error while writing its answer.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield "127.0.0.1", int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def hang_up_mid_download(host: str, port: int, path: str, *, after_bytes: int) -> bytes:
    """GET ``path``, read the head and ``after_bytes`` of body, then reset the connection; return the head."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    got = 0
    while got < after_bytes:
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            raise AssertionError(f"the answer ended after {got} bytes, before the hang-up")
        got += len(data)
    # RST rather than FIN, as a browser aborting a download does
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    return head
