"""The S3-compatible object store (AWS S3, Cloudflare R2, MinIO; moto in tests), on one long-lived aioboto3 client.

Uploads hold at most one part in memory: a body that ends within its first part and below the multipart
threshold is a single PutObject, anything larger is a multipart upload of equal ``part_size`` parts (R2
requires equal parts) that is aborted on any failure, so no half-written object or orphaned upload remains.
Buckets should still carry a lifecycle rule that expires incomplete multipart uploads, for a process killed
mid-upload.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import io
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError

from .base import CHUNK, Body, ObjectInfo, ObjectNotFound, ObjectStore, StorageError, TooLarge, check_key
from .content_types import DEFAULT as DEFAULT_TYPE

if TYPE_CHECKING:
    from ..settings import ServiceSettings

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_DELETE_BATCH = 1000  # the DeleteObjects maximum
_MIN_PART = 5 * 1024 * 1024  # S3's minimum size of every part but the last


class S3Store(ObjectStore):
    """Objects in one bucket, optionally under a key prefix."""

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        multipart_threshold: int = 16 * 1024 * 1024,
        part_size: int = 8 * 1024 * 1024,
        session: aioboto3.Session | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("S3Store needs a bucket")
        if part_size < _MIN_PART:
            raise ValueError(f"part_size must be at least {_MIN_PART} bytes (S3's minimum part size)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url or None
        self.region = region or None
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self._credentials = (access_key_id or None, secret_access_key or None)
        # Loading the S3 service model costs ~0.3 s per session; stores that share a session (tests, a
        # process with several buckets) pay it once.
        self._session = session
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> S3Store:
        """Build from ``storage_url = s3://bucket[/prefix]`` and the ``s3_*`` settings."""
        url = urlsplit(settings.storage_url)
        if url.scheme != "s3" or not url.netloc:
            raise ValueError(f"not an s3:// storage URL: {settings.storage_url!r}")
        return cls(
            url.netloc,
            prefix=url.path,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            multipart_threshold=settings.s3_multipart_threshold,
            part_size=settings.s3_part_size,
        )

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r})"

    async def client(self) -> Any:
        """The store's aiobotocore S3 client, created on first use and reused until ``close``."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    if self._session is None:
                        self._session = aioboto3.Session()
                    config = AioConfig(
                        signature_version="s3v4",
                        # MinIO and moto want path-style URLs; AWS picks virtual-hosted style by itself.
                        s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                        # botocore >= 1.36 adds CRC checksums to every upload, which R2 and older MinIO
                        # reject or mishandle (Cloudflare's own SDK examples set these two).
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                        retries={"mode": "standard", "max_attempts": 3},
                    )
                    self._client = await self._stack.enter_async_context(
                        self._session.client(
                            "s3",
                            endpoint_url=self.endpoint_url,
                            region_name=self.region,
                            # None falls through to the default chain (env, profile, instance role).
                            aws_access_key_id=self._credentials[0],
                            aws_secret_access_key=self._credentials[1],
                            config=config,
                        )
                    )
        return self._client

    async def close(self) -> None:
        """Close the client and its connection pool; a later call opens a new one."""
        async with self._lock:
            try:
                await self._stack.aclose()
            finally:
                self._client = None
                self._stack = contextlib.AsyncExitStack()

    async def ping(self) -> None:
        """HeadBucket: unlike HeadObject it tells a missing bucket or bad credentials from a missing key."""
        s3 = await self.client()
        await s3.head_bucket(Bucket=self.bucket)

    async def put(
        self, key: str, body: Body, *, content_type: str = DEFAULT_TYPE, max_bytes: int | None = None
    ) -> ObjectInfo:
        """PutObject below the threshold, otherwise a multipart upload that is aborted on any failure."""
        full = self._key(key)
        if isinstance(body, bytes | bytearray | memoryview):
            if max_bytes is not None and len(body) > max_bytes:
                raise TooLarge(f"{key}: {len(body)} bytes exceeds the limit of {max_bytes}")
            if len(body) < self.multipart_threshold:
                return await self._put_object(key, full, _Part.of(body), content_type)
            return await self._put_parts(key, full, _slices(body, self.part_size), content_type)
        # aclosing: a failed upload also finalises the caller's stream now rather than whenever it is collected.
        async with contextlib.aclosing(_parts(body, self.part_size, key, max_bytes)) as parts:
            return await self._put_parts(key, full, parts, content_type)

    async def get(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """GetObject with ``Range: bytes=start-end``, streaming the body in reads of up to 1 MiB."""
        full = self._key(key)
        extra: dict[str, str] = {}
        if start is not None or end is not None:
            _check_range(start, end)
            extra["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        s3 = await self.client()
        try:
            resp = await s3.get_object(Bucket=self.bucket, Key=full, **extra)
        except ClientError as e:
            if _code(e) in _NOT_FOUND:
                raise ObjectNotFound(key) from None
            if _code(e) == "InvalidRange":
                return  # a range starting at or past the end is empty, as on the filesystem
            raise
        body = resp["Body"]
        # The context releases the pooled connection even when the consumer stops early.
        async with body:
            while chunk := await body.read(CHUNK):
                yield chunk

    async def stat(self, key: str) -> ObjectInfo | None:
        """HeadObject; None on 404."""
        full = self._key(key)
        s3 = await self.client()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=full)
        except ClientError as e:
            if _code(e) in _NOT_FOUND:
                return None
            raise
        return ObjectInfo(
            key=key,
            size=head["ContentLength"],
            content_type=head.get("ContentType") or DEFAULT_TYPE,
            etag=head.get("ETag", "").strip('"'),
            last_modified=head.get("LastModified"),
        )

    async def delete(self, key: str) -> None:
        """DeleteObject (S3 answers 204 for absent keys too)."""
        s3 = await self.client()
        await s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    async def delete_prefix(self, prefix: str) -> int:
        """List and DeleteObjects in batches of 1000; returns how many were deleted."""
        count = 0
        batch: builtins.list[str] = []
        async for info in self.list(prefix):
            batch.append(self.prefix + info.key)
            if len(batch) == _DELETE_BATCH:
                count += await self._delete_batch(batch)
                batch = []
        if batch:
            count += await self._delete_batch(batch)
        return count

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """ListObjectsV2, page by page; S3 returns keys in UTF-8 binary order, which is key order here.

        Content type is not reported (listings do not carry it); use ``stat`` for it.
        """
        s3 = await self.client()
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", ()):
                yield ObjectInfo(
                    key=obj["Key"].removeprefix(self.prefix),
                    size=obj["Size"],
                    etag=obj.get("ETag", "").strip('"'),
                    last_modified=obj.get("LastModified"),
                )

    async def presigned_url(self, key: str, *, expires_in: int = 300) -> str:
        """A GetObject URL signed for ``expires_in`` seconds."""
        s3 = await self.client()
        url: str = await s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_in
        )
        return url

    # -- internals -------------------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _put_object(self, key: str, full: str, part: _Part, content_type: str) -> ObjectInfo:
        s3 = await self.client()
        resp = await s3.put_object(Bucket=self.bucket, Key=full, Body=part.body, ContentType=content_type)
        return ObjectInfo(
            key=key, size=part.size, content_type=content_type, etag=resp.get("ETag", "").strip('"')
        )

    async def _put_parts(
        self, key: str, full: str, parts: AsyncIterator[_Part], content_type: str
    ) -> ObjectInfo:
        # Only the first part is read before deciding: a body that ends inside it and below the threshold is
        # one PutObject; anything else becomes a multipart upload.
        part = await anext(parts, None)
        if part is None or (part.size < self.part_size and part.size < self.multipart_threshold):
            return await self._put_object(key, full, part or _Part.of(b""), content_type)

        s3 = await self.client()
        created = await s3.create_multipart_upload(Bucket=self.bucket, Key=full, ContentType=content_type)
        upload_id: str = created["UploadId"]
        done: builtins.list[dict[str, Any]] = []
        size = 0
        try:
            while part is not None:
                number = len(done) + 1
                resp = await s3.upload_part(
                    Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=part.body
                )
                done.append({"PartNumber": number, "ETag": resp["ETag"]})
                size += part.size
                # Drop this part before the next one is read, so at most one part is ever held.
                part = None
                part = await anext(parts, None)
            completed = await s3.complete_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        except BaseException:
            # Shielded so that a cancelled upload is still aborted instead of leaving billed, invisible parts.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    s3.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
                )
            raise
        return ObjectInfo(
            key=key, size=size, content_type=content_type, etag=completed.get("ETag", "").strip('"')
        )

    async def _delete_batch(self, keys: Sequence[str]) -> int:
        s3 = await self.client()
        resp = await s3.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
        if errors := resp.get("Errors"):
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} of {len(keys)} objects, e.g. {first.get('Key')!r}: "
                f"{first.get('Code')} {first.get('Message')}"
            )
        return len(keys)


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _check_range(start: int | None, end: int | None) -> None:
    # S3 silently ignores a malformed Range and returns the whole object; refuse it here instead.
    if (start is not None and start < 0) or (end is not None and (end < 0 or end < (start or 0))):
        raise ValueError(f"invalid byte range start={start} end={end}")


@dataclass(frozen=True)
class _Part:
    """One request body. A file-like body makes aiohttp send it in 64 KiB writes; a bytes body is handed to
    the transport whole, and Python 3.11's transport copies the unsent remainder twice (3x the part in memory).
    """

    body: io.BytesIO
    size: int

    @classmethod
    def of(cls, data: bytes | bytearray | memoryview) -> _Part:
        # BytesIO shares a bytes object's buffer instead of copying it; other buffers are copied once.
        blob = data if isinstance(data, bytes) else bytes(data)
        return cls(io.BytesIO(blob), len(blob))


async def _parts(
    body: AsyncIterable[bytes], part_size: int, key: str, max_bytes: int | None
) -> AsyncGenerator[_Part, None]:
    """Re-chunk a stream into parts of exactly ``part_size`` bytes (the last may be shorter), enforcing ``max_bytes``."""
    buf = io.BytesIO()
    total = 0
    async for chunk in body:
        total += len(chunk)
        if max_bytes is not None and total > max_bytes:
            raise TooLarge(f"{key}: upload exceeds the limit of {max_bytes} bytes")
        view = memoryview(chunk)
        while view:
            take = min(part_size - buf.tell(), len(view))
            buf.write(view[:take])
            view = view[take:]
            if buf.tell() == part_size:
                buf.seek(0)
                yield _Part(buf, part_size)
                # A fresh buffer per part: the caller may still hold the previous one.
                buf = io.BytesIO()
    if size := buf.tell():
        buf.seek(0)
        yield _Part(buf, size)


async def _slices(data: bytes | bytearray | memoryview, part_size: int) -> AsyncIterator[_Part]:
    view = memoryview(data)
    for offset in range(0, len(view), part_size):
        yield _Part.of(view[offset : offset + part_size])
