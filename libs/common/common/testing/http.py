"""Serving an app as production does, and a client that hangs up mid-download (a player seeking or closing)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from typing import Self

from aiohttp import web
from prometheus_client import REGISTRY

__all__ = ["LocalServer", "hang_up_mid_download", "price_list", "requests_counted", "served_at", "serving"]


class LocalServer:
    """A stand-in for an outside service on a free port of 127.0.0.1; a subclass adds its routes in ``routes``.

    ``async with Server() as server:`` serves for the block (``start``/``close`` by hand where a block does not fit).
    """

    base_url = ""
    client_max_size = 64 * 1024 * 1024
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def routes(self, app: web.Application) -> None:
        """Add the server's routes to ``app``."""
        raise NotImplementedError

    async def start(self) -> str:
        """Serve; returns the base URL."""
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.base_url

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def served_at(url: str, app: web.Application) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context serving ``app`` (a stand-in for another service) at ``url``'s port of 127.0.0.1 for the
    lifetime of the app it is added to (``app.cleanup_ctx.insert(0, served_at(...))``)."""

    async def ctx(_: web.Application) -> AsyncIterator[None]:
        async with serving(app, port=int(url.rsplit(":", 1)[1])):
            yield

    return ctx


def price_list(url: str, prices: dict[str, int]) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context serving billing's price list (``prices``) at ``url`` for the app's lifetime, from a real
    HTTP server where a paid service's ``BILLING_URL`` points (``app.cleanup_ctx.insert(0, price_list(...))``)."""

    async def listed(request: web.Request) -> web.Response:
        return web.json_response({"prices": prices})

    billing = web.Application()
    billing.router.add_get("/api/v1/billing/prices", listed)
    return served_at(url, billing)


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
async def serving(app: web.Application, *, port: int = 0) -> AsyncIterator[tuple[str, int]]:
    """``app`` on ``port`` (default: a free one) of 127.0.0.1 with ``web.run_app``'s runner settings, as
    ``(host, port)``.

    Unlike aiohttp's test server, a handler is not cancelled when its client goes away (``run_app`` does not cancel
    either), so the handler meets the hang-up where production does: as an error while writing its answer.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
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
