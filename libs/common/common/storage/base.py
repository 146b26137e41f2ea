"""The object-store port. Keys are ``/``-separated relative paths such as ``originals/<id>/source.mp4``."""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .content_types import DEFAULT as DEFAULT_TYPE

CHUNK = 1024 * 1024
_KEY = re.compile(r"^[A-Za-z0-9!_.*'()\-][A-Za-z0-9!_.*'()\-/ =+,@]*$")


class StorageError(Exception):
    """Base of storage errors."""


class ObjectNotFound(StorageError, KeyError):
    """No object under that key."""


class InvalidKey(StorageError, ValueError):
    """A key that could escape its root or that S3 would mangle."""


class TooLarge(StorageError):
    """A streamed put exceeded ``max_bytes``."""


def check_key(key: str) -> str:
    """Refuse absolute, empty, ``..``-containing or odd keys."""
    if not key or key.startswith("/") or "//" in key or not _KEY.match(key):
        raise InvalidKey(f"invalid object key: {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey(f"invalid object key: {key!r}")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of a stored object."""

    key: str
    size: int
    content_type: str = DEFAULT_TYPE
    etag: str = ""
    last_modified: datetime | None = None


Body = bytes | AsyncIterable[bytes]


class ObjectStore(abc.ABC):
    """One async interface, two real backends: the local filesystem and S3-compatible (R2, MinIO, AWS)."""

    scheme: str

    @abc.abstractmethod
    async def put(
        self,
        key: str,
        body: Body,
        *,
        content_type: str = DEFAULT_TYPE,
        max_bytes: int | None = None,
    ) -> ObjectInfo:
        """Store ``body`` (bytes or an async stream of chunks) atomically under ``key``.

        Streams are never held whole in memory. Exceeding ``max_bytes`` raises ``TooLarge`` and stores nothing.
        """

    @abc.abstractmethod
    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream an object's bytes; ``start``/``end`` are an inclusive byte range. Raises ``ObjectNotFound``."""

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo | None:
        """Metadata, or None when absent."""

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        return await self.stat(key) is not None

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Delete an object (absent is fine)."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many."""
        keys = [o.key async for o in self.list(prefix)]
        for k in keys:
            await self.delete(k)
        return len(keys)

    @abc.abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""

    @abc.abstractmethod
    async def presigned_url(self, key: str, *, expires_in: int = 300) -> str | None:
        """A short-lived URL that serves the object directly, or None when the backend cannot (filesystem)."""

    async def read_bytes(self, key: str) -> bytes:
        """The whole object (small objects only: playlists, JSON)."""
        return b"".join([c async for c in self.get(key)])

    async def put_file(self, key: str, path: Path | str, *, content_type: str = DEFAULT_TYPE) -> ObjectInfo:
        """Upload a local file, streaming."""
        return await self.put(key, _file_chunks(Path(path)), content_type=content_type)

    async def get_file(self, key: str, path: Path | str) -> Path:
        """Download an object to a local file, streaming; a failed download leaves no partial file."""
        import asyncio

        target = Path(path)
        f = await asyncio.to_thread(target.open, "wb")
        try:
            async for chunk in self.get(key):
                await asyncio.to_thread(f.write, chunk)
        except BaseException:
            await asyncio.to_thread(f.close)
            target.unlink(missing_ok=True)  # noqa: ASYNC240 - cleanup on the failure path only
            raise
        await asyncio.to_thread(f.close)
        return target

    async def ping(self) -> None:
        """Raise unless the store is reachable."""
        await self.stat("__ping__")

    async def close(self) -> None:  # noqa: B027 - a no-op default on purpose: only some backends hold clients
        """Release clients."""


async def _file_chunks(path: Path, chunk: int = CHUNK) -> AsyncIterator[bytes]:
    import asyncio

    loop = asyncio.get_running_loop()
    f = await loop.run_in_executor(None, path.open, "rb")
    try:
        while True:
            data = await loop.run_in_executor(None, f.read, chunk)
            if not data:
                return
            yield data
    finally:
        f.close()
