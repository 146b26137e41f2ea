"""A small asyncio TCP proxy for fault-injection tests: cut live connections, refuse new ones, resume."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from yarl import URL

from ..streams import copy_until_closed

__all__ = ["TcpProxy"]


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream twin."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter

    def abort(self) -> None:
        # abort(), not close(): a cut must look like a dead network, with no orderly goodbye
        for writer in (self.client, self.upstream):
            transport = writer.transport
            if not transport.is_closing():
                transport.abort()


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to an upstream ``host:port``; tests break the network on purpose.

    ``cut()`` drops every open connection at once (both sides see a reset), ``pause()`` makes new
    connections fail right after accept, ``resume()`` accepts them again.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.host, self._requested_port = host, port
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused = False
        self.accepted = 0
        self.refused = 0
        self.cuts = 0

    @classmethod
    def in_front_of(cls, url: str, *, default_port: int) -> TcpProxy:
        """A proxy (not started yet) to the host and port of ``url``, a database or broker URL."""
        upstream = URL(url)
        return cls(upstream.host or "127.0.0.1", upstream.port or default_port)

    def url_via(self, url: str) -> str:
        """``url`` pointed at this proxy instead of its upstream."""
        return str(URL(url).with_host(self.host).with_port(self.port))

    @property
    def port(self) -> int:
        """The port the proxy listens on (known after ``start()``)."""
        if self._server is None:
            raise RuntimeError("proxy not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def connections(self) -> int:
        """Connections currently forwarded."""
        return len(self._links)

    async def start(self) -> None:
        """Listen for clients."""
        self._server = await asyncio.start_server(self._on_client, self.host, self._requested_port)

    def cut(self) -> int:
        """Abort every current connection (client and upstream side); return how many were cut."""
        links, self._links = self._links, set()
        for link in links:
            link.abort()
        self.cuts += 1
        return len(links)

    def pause(self) -> None:
        """Refuse new connections (accepted, then closed at once) until ``resume()``."""
        self._paused = True

    def resume(self) -> None:
        """Accept and forward new connections again."""
        self._paused = False

    async def stop(self) -> None:
        """Stop listening and cut everything."""
        if self._server is not None:
            self._server.close()
        self.cut()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._paused:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst, link))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        try:
            await copy_until_closed(reader, writer)
        finally:
            # one side ended: end the other too, as a real TCP peer would see it
            self._links.discard(link)
            with contextlib.suppress(Exception):
                link.abort()
