"""The local-filesystem object store: the embedded default for ``make up`` and for tests.

Layout under ``root``: each object is a plain file at its key's path (so the tree stays browsable and
servable), with a ``<file>#meta`` JSON sidecar holding its content type and ETag. In-flight uploads live in
``root/#tmp``. ``#`` can never appear in a valid key, so internal files can neither collide with an object
nor be addressed through the store.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from .base import (
    CHUNK,
    Body,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    TooLarge,
    check_key,
)
from .content_types import DEFAULT as DEFAULT_TYPE

T = TypeVar("T")

_INTERNAL = "#"
_META_SUFFIX = "#meta"
_TMP_DIR = "#tmp"
_LIST_BATCH = 1000


class FileStore(ObjectStore):
    """Objects as files under one root directory; every blocking call runs in the default executor."""

    scheme = "file"

    def __init__(self, root: str | Path) -> None:
        # Resolved once so that a relative root (``file://./var/storage``) does not move with the CWD, and so
        # that containment checks compare like with like.
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    async def put(
        self, key: str, body: Body, *, content_type: str = DEFAULT_TYPE, max_bytes: int | None = None
    ) -> ObjectInfo:
        """Write to a temp file, fsync, then ``os.replace`` it over the key: readers never see a partial object."""
        check_key(key)
        if (
            isinstance(body, bytes | bytearray | memoryview)
            and max_bytes is not None
            and len(body) > max_bytes
        ):
            raise TooLarge(f"{key}: {len(body)} bytes exceeds the limit of {max_bytes}")
        target = await _run(self._path, key)
        tmp_dir = self.root / _TMP_DIR
        await _run(tmp_dir.mkdir, parents=True, exist_ok=True)
        tmp = tmp_dir / uuid.uuid4().hex
        f = await _run(lambda: tmp.open("xb"))
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        try:
            if isinstance(body, bytes | bytearray | memoryview):
                await _run(_write, f, md5, body)
                size = len(body)
            else:
                # Coalesce the producer's chunks (often 64 KiB from aiohttp) so each executor hop moves ~1 MiB.
                pending = bytearray()
                async for chunk in body:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"{key}: upload exceeds the limit of {max_bytes} bytes")
                    if not pending and len(chunk) >= CHUNK:
                        await _run(_write, f, md5, chunk)  # already big enough: skip the copy
                        continue
                    pending += chunk
                    if len(pending) >= CHUNK:
                        await _run(_write, f, md5, pending)
                        pending = bytearray()
                if pending:
                    await _run(_write, f, md5, pending)
            await _run(_fsync_close, f)
        except BaseException:
            # Synchronous on purpose: this must also run when the task is being cancelled, and both calls are
            # cheap. Nothing was moved into place, so the old object (if any) is untouched.
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        etag = md5.hexdigest()
        # Shielded: once the bytes are safely on disk, a cancellation must not interrupt the two renames
        # halfway; the commit then finishes (or cleans up after itself) in the background.
        await asyncio.shield(_run(self._commit, tmp, target, {"content_type": content_type, "etag": etag}))
        return ObjectInfo(key=key, size=size, content_type=content_type, etag=etag)

    async def get(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream the file in ~1 MiB reads, seeking to ``start`` and stopping after ``end`` (inclusive)."""
        _check_range(start, end)
        path = await _run(self._path, key)
        try:
            f = await _run(lambda: path.open("rb"))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        try:
            if start:
                await _run(f.seek, start)
            remaining = None if end is None else end - (start or 0) + 1
            while remaining is None or remaining > 0:
                data = await _run(f.read, CHUNK if remaining is None else min(CHUNK, remaining))
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data
        finally:
            f.close()

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and mtime from the file, content type and ETag from its sidecar."""
        return await _run(self._stat, key)

    async def delete(self, key: str) -> None:
        """Remove the file and its sidecar, then any directories that became empty."""
        await _run(self._delete, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` in one executor call."""

        def delete_all() -> int:
            keys = [info.key for info in self._walk_prefix(prefix)]
            for k in keys:
                self._delete(k)
            return len(keys)

        return await _run(delete_all)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Walk the tree in S3 key order, in batches so a large tree neither blocks the loop nor fills memory.

        Content type and ETag are not reported (as with S3 listings); use ``stat`` for them.
        """
        walker = self._walk_prefix(prefix)
        while batch := await _run(lambda: list(islice(walker, _LIST_BATCH))):
            for info in batch:
                yield info

    async def presigned_url(self, key: str, *, expires_in: int = 300) -> str | None:
        """None: files are served by the app behind its own signed playback tokens."""
        check_key(key)
        return None

    async def ping(self) -> None:
        """Raise unless the root exists (it is created if missing) and is writable."""

        def check() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise StorageError(f"storage root {self.root} is not writable")

        await _run(check)

    # -- blocking helpers (run in the executor) ------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file for ``key``; refuses keys whose resolved path (after symlinks) leaves the root."""
        check_key(key)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidKey(f"invalid object key: {key!r} escapes the storage root")
        return path

    def _commit(self, tmp: Path, target: Path, meta: dict[str, str]) -> None:
        meta_tmp = tmp.with_name(tmp.name + _META_SUFFIX)
        meta_tmp.write_text(json.dumps(meta))
        try:
            # A concurrent delete may prune the freshly created parent directory between mkdir and replace;
            # rmdir only removes empty directories, so retrying is safe and loses nothing.
            for attempt in range(5):
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if target.is_dir():
                        raise IsADirectoryError(target)
                    # Sidecar first: a crash in between leaves the old bytes with the new type rather than an
                    # object whose metadata is missing.
                    os.replace(meta_tmp, _meta_path(target))
                    os.replace(tmp, target)
                    return
                except FileNotFoundError:
                    if attempt == 4:
                        raise
                except (NotADirectoryError, IsADirectoryError, FileExistsError) as e:
                    # S3 allows both ``a`` and ``a/b``; a directory tree cannot hold both.
                    key = str(target.relative_to(self.root))
                    raise InvalidKey(f"key {key!r} conflicts with an existing object or prefix") from e
        finally:
            # Both are gone after a successful commit; after a failed one nothing of this upload may remain.
            meta_tmp.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)

    def _stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        meta = _read_meta(path)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=meta.get("content_type", DEFAULT_TYPE),
            etag=meta.get("etag", ""),
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _delete(self, key: str) -> None:
        path = self._path(key)
        if not path.is_file():
            return
        path.unlink(missing_ok=True)
        _meta_path(path).unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError as e:
                # Not empty (or raced with a put): the parents above are then not empty either.
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise
            parent = parent.parent

    def _walk_prefix(self, prefix: str) -> Iterator[ObjectInfo]:
        head, _, tail = prefix.rpartition("/")
        if head:
            try:
                check_key(head)
            except InvalidKey:
                return  # no valid key can start with this prefix
            start = (self.root / head).resolve()
            if not start.is_relative_to(self.root):
                return
            yield from self._walk(start, head + "/", tail)
        else:
            yield from self._walk(self.root, "", tail)

    def _walk(self, directory: Path, rel: str, name_prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as it:
                entries = [e for e in it if _INTERNAL not in e.name and e.name.startswith(name_prefix)]
        except (FileNotFoundError, NotADirectoryError):
            return

        # Sorting a directory as ``name/`` makes a depth-first walk yield exactly S3's key order: every key
        # below ``a`` starts with ``a/``, which sorts after ``a-b`` and before ``a0``.
        def order(e: os.DirEntry[str]) -> str:
            return e.name + "/" if e.is_dir(follow_symlinks=False) else e.name

        for e in sorted(entries, key=order):
            # Symlinks are skipped: following them could list files outside the root or loop forever.
            if e.is_dir(follow_symlinks=False):
                yield from self._walk(Path(e.path), rel + e.name + "/", "")
            elif e.is_file(follow_symlinks=False):
                st = e.stat(follow_symlinks=False)
                yield ObjectInfo(
                    key=rel + e.name, size=st.st_size, last_modified=datetime.fromtimestamp(st.st_mtime, UTC)
                )


def _check_range(start: int | None, end: int | None) -> None:
    if (start is not None and start < 0) or (end is not None and (end < 0 or end < (start or 0))):
        raise ValueError(f"invalid byte range start={start} end={end}")


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + _META_SUFFIX)


def _read_meta(path: Path) -> dict[str, str]:
    try:
        data: Any = json.loads(_meta_path(path).read_text())
    except (FileNotFoundError, ValueError):
        # A file dropped into the tree by hand has no sidecar; it is still a valid object.
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write(f: Any, md5: Any, data: bytes | bytearray | memoryview) -> None:
    f.write(data)
    md5.update(data)


def _fsync_close(f: Any) -> None:
    # Without fsync a crash right after os.replace can leave a zero-length file under the key.
    try:
        f.flush()
        os.fsync(f.fileno())
    finally:
        f.close()


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)
