"""asyncio byte streams: copying one into another, as a TCP proxy does (ingest's guard proxy, the test proxy)."""

from __future__ import annotations

import asyncio

CHUNK = 64 * 1024


async def copy_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` into ``writer`` until end of stream or a connection error (either ends the copy quietly)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
