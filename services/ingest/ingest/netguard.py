"""SSRF protection for URL imports: a forward proxy that enforces the address policy (``common.addresses``) on
every connection.

yt-dlp is pointed at ``GuardProxy`` (its ``proxy`` option), so every request it makes (the page, each redirect
hop, each format URL, each HLS fragment) arrives here as ``CONNECT host:port`` or an absolute-form ``GET``.
The proxy resolves the host itself, refuses internal addresses, and connects to the very address it checked:
a DNS answer that changes between check and connect (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from common.addresses import AddressPolicy, ForbiddenAddress, IPAddress, UnresolvableHost, split_http_url
from common.jobs import ErrorCode, JobFailure
from common.logging import get_logger
from common.streams import copy_until_closed

log = get_logger(__name__)

_HEAD_LIMIT = 64 * 1024


def split_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL; ``JobFailure(source.unsupported)`` for anything else."""
    try:
        return split_http_url(url)
    except ValueError as exc:
        raise JobFailure(ErrorCode.SOURCE_UNSUPPORTED, str(exc)) from exc


async def resolve(policy: AddressPolicy, host: str, port: int) -> list[IPAddress]:
    """The policy's addresses for ``host:port``, its refusals as the job failures an import reports."""
    try:
        return await policy.resolve(host, port)
    except ForbiddenAddress as exc:
        raise JobFailure(ErrorCode.SOURCE_FORBIDDEN, str(exc)) from exc
    except UnresolvableHost as exc:
        raise JobFailure(ErrorCode.SOURCE_UNAVAILABLE, str(exc)) from exc


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Refuse a URL that is not http(s) or whose host resolves to an internal address."""
    _, host, port = split_url(url)
    await resolve(policy, host, port)


@dataclass
class GuardProxy:
    """A forward HTTP proxy on 127.0.0.1 that only connects to addresses the policy admits.

    One instance per job: ``refusals`` tells the job why yt-dlp's request failed.
    """

    policy: AddressPolicy
    connect_timeout_s: float = 15.0
    refusals: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        """The proxy URL to hand to yt-dlp."""
        assert self._server is not None, "proxy not started"
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> GuardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _HEAD_LIMIT:
            await _reply(writer, 431, "Request Header Fields Too Large")
            return
        request_line, _, rest = head.decode("latin-1").partition("\r\n")
        method, target, version = [*request_line.split(" "), "", "", ""][:3]
        if method.upper() == "CONNECT":
            host, _, port_s = target.rpartition(":")
            port = int(port_s) if port_s.isdigit() else 443
            upstream = await self._connect(host, port, writer)
            if upstream is None:
                return
            up_reader, up_writer = upstream
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _pipe_both(reader, writer, up_reader, up_writer)
            return
        try:
            parts = urlsplit(target)
            port = parts.port or 80
        except ValueError:
            parts, port = None, 0
        if parts is None or parts.scheme.lower() != "http" or not parts.hostname:
            await _reply(writer, 400, "Bad Request")
            return
        upstream = await self._connect(parts.hostname, port, writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        # one request per connection: a kept-alive client connection could name another host next
        headers = [
            line
            for line in rest.split("\r\n")
            if line and not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))
        ]
        new_head = f"{method} {path} {version}\r\n" + "".join(h + "\r\n" for h in headers)
        new_head += "Connection: close\r\n\r\n"
        up_writer.write(new_head.encode("latin-1"))
        await up_writer.drain()
        await _pipe_both(reader, writer, up_reader, up_writer)

    async def _connect(
        self, host: str, port: int, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            addrs = await resolve(self.policy, host, port)
        except JobFailure as exc:
            if exc.code == ErrorCode.SOURCE_FORBIDDEN:
                self.refusals.append(exc.message)
                log.warning("ingest.ssrf_refused", host=host, port=port, reason=exc.message)
                await _reply(writer, 403, "Forbidden", note="forbidden_address")
            else:
                await _reply(writer, 502, "Bad Gateway", note="unresolvable")
            return None
        last: Exception | None = None
        for ip in addrs:
            try:
                # connect to the address that was checked, never to the name again (DNS rebinding)
                return await asyncio.wait_for(asyncio.open_connection(str(ip), port), self.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                last = exc
        log.info("ingest.proxy_connect_failed", host=host, port=port, error=repr(last))
        await _reply(writer, 502, "Bad Gateway", note="connect_failed")
        return None


async def _reply(writer: asyncio.StreamWriter, status: int, reason: str, *, note: str = "") -> None:
    extra = f"X-Reelforge-Proxy: {note}\r\n" if note else ""
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await copy_until_closed(reader, writer)
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    upload = asyncio.create_task(_pipe(reader, up_writer))
    try:
        # the exchange is over when the upstream is done answering; a client may half-close earlier
        await _pipe(up_reader, writer)
    finally:
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upload
        up_writer.close()
