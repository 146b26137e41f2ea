"""One contract for the object-store port, run against every backend (filesystem and S3 on a moto server)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from common.settings import ServiceSettings
from common.storage import InvalidKey, ObjectNotFound, ObjectStore, TooLarge, create_store
from common.storage.base import CHUNK
from common.storage.fs import FileStore
from common.storage.s3 import S3Store

MIB = 1024 * 1024


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    """``data`` as an async stream of ``size``-byte chunks."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def generated(
    total: int, digest: hashlib._Hash | None = None, *, chunk: int = 1_000_003
) -> AsyncIterator[bytes]:
    """``total`` deterministic pseudo-random bytes, produced chunk by chunk (an odd chunk size, so parts straddle chunks)."""
    rnd = random.Random(total)
    left = total
    while left:
        data = rnd.randbytes(min(chunk, left))
        if digest is not None:
            digest.update(data)
        left -= len(data)
        yield data


async def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


async def assert_nothing_left(store: ObjectStore) -> None:
    """No object, no pending multipart upload (S3), no temp file (filesystem)."""
    assert await keys(store) == []
    if isinstance(store, S3Store):
        s3 = await store.client()
        uploads = await s3.list_multipart_uploads(Bucket=store.bucket)
        assert uploads.get("Uploads", []) == []
    if isinstance(store, FileStore):
        assert [p for p in store.root.rglob("*") if p.is_file()] == []


# -- put / get / stat ----------------------------------------------------------------------------------------


async def test_put_and_get_bytes(store: ObjectStore) -> None:
    info = await store.put("originals/v1/source.mp4", b"hello world")
    assert (info.key, info.size) == ("originals/v1/source.mp4", 11)
    assert await store.read_bytes("originals/v1/source.mp4") == b"hello world"


async def test_put_from_async_stream(store: ObjectStore) -> None:
    data = bytes(range(256)) * 1000

    async def uneven() -> AsyncIterator[bytes]:
        yield b""
        yield data[:1]
        async for c in chunks(data[1:], 7_777):
            yield c

    info = await store.put("streams/v1/720p.ts", uneven(), content_type="video/mp2t")
    assert info.size == len(data)
    assert await store.read_bytes("streams/v1/720p.ts") == data


@pytest.mark.parametrize("as_stream", [False, True], ids=["bytes", "stream"])
async def test_empty_object(store: ObjectStore, as_stream: bool) -> None:
    await store.put("empty", chunks(b"", 1) if as_stream else b"")
    assert await store.read_bytes("empty") == b""
    info = await store.stat("empty")
    assert info is not None and info.size == 0


async def test_stat_exists_and_content_type(store: ObjectStore) -> None:
    assert await store.stat("thumbs/v1/poster.jpg") is None
    assert not await store.exists("thumbs/v1/poster.jpg")
    # The extension says otherwise on purpose: the stored type is what was put, not a guess.
    await store.put("thumbs/v1/poster.bin", b"\xff\xd8jpeg", content_type="image/jpeg")
    info = await store.stat("thumbs/v1/poster.bin")
    assert info is not None
    assert (info.key, info.size, info.content_type) == ("thumbs/v1/poster.bin", 6, "image/jpeg")
    assert info.etag and info.last_modified is not None
    assert await store.exists("thumbs/v1/poster.bin")


async def test_keys_with_unusual_allowed_characters(store: ObjectStore) -> None:
    key = "captions/v 1/en=US+auto,x@y (1)!.vtt"
    await store.put(key, b"WEBVTT")
    assert await store.read_bytes(key) == b"WEBVTT"
    assert await keys(store, "captions/") == [key]


async def test_overwrite_replaces_bytes_and_type(store: ObjectStore) -> None:
    await store.put("k", b"first version, longer", content_type="text/plain")
    await store.put("k", b"second", content_type="application/json")
    assert await store.read_bytes("k") == b"second"
    info = await store.stat("k")
    assert info is not None and (info.size, info.content_type) == (6, "application/json")
    assert await keys(store) == ["k"]


async def test_get_absent_key_raises_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        async for _ in store.get("originals/missing"):
            pass
    with pytest.raises(KeyError):  # ObjectNotFound is also a KeyError, for callers that think in mappings
        await store.read_bytes("originals/missing")


async def test_put_file_and_get_file(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x00\x01" * 300_000)
    await store.put_file("renders/r1/out.mp4", src, content_type="video/mp4")
    out = await store.get_file("renders/r1/out.mp4", tmp_path / "out.bin")
    assert out.read_bytes() == src.read_bytes()


async def test_ping(store: ObjectStore) -> None:
    await store.ping()


# -- ranges --------------------------------------------------------------------------------------------------

RANGE_DATA = bytes(random.Random(1).randbytes(CHUNK * 2 + 12_345))
N = len(RANGE_DATA)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, RANGE_DATA[:1]),
        (1000, 1999, RANGE_DATA[1000:2000]),
        (N - 1, N - 1, RANGE_DATA[-1:]),
        (N - 10, None, RANGE_DATA[-10:]),
        (None, 9, RANGE_DATA[:10]),
        (CHUNK - 5, CHUNK + 4, RANGE_DATA[CHUNK - 5 : CHUNK + 5]),
        (5, None, RANGE_DATA[5:]),
        (N - 3, N + 1000, RANGE_DATA[-3:]),
        (N, None, b""),
    ],
    ids=[
        "first-byte",
        "middle",
        "last-byte",
        "start-only",
        "end-only",
        "across-chunks",
        "most",
        "end-clamped",
        "past-end",
    ],
)
async def test_range_reads(store: ObjectStore, start: int | None, end: int | None, expected: bytes) -> None:
    await store.put("r", RANGE_DATA)
    got = b"".join([c async for c in store.get("r", start=start, end=end)])
    assert len(got) == len(expected)
    assert got == expected


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 9), (None, -1)])
async def test_malformed_range_is_refused(store: ObjectStore, start: int | None, end: int | None) -> None:
    await store.put("r", b"0123456789abcdef")
    with pytest.raises(ValueError):
        async for _ in store.get("r", start=start, end=end):
            pass


async def test_abandoned_reads_release_resources(store: ObjectStore) -> None:
    await store.put("big", RANGE_DATA)
    # More abandoned reads than the S3 client's pool (10 connections): a leak would hang the full read below.
    for _ in range(15):
        async for _chunk in store.get("big"):
            break
    async with asyncio.timeout(30):
        assert await store.read_bytes("big") == RANGE_DATA


# -- list / delete -------------------------------------------------------------------------------------------

LAYOUT = ["v/a-b", "v/a/b", "v/a/c/d", "v/a0", "v/A", "v/b", "vv/y", "w/x", "v.txt"]


async def test_list_is_in_key_order_and_prefix_isolated(store: ObjectStore) -> None:
    for i, key in enumerate(LAYOUT):
        await store.put(key, b"x" * i)
    everything = [info async for info in store.list()]
    assert [i.key for i in everything] == sorted(LAYOUT)
    assert {i.key: i.size for i in everything} == {k: i for i, k in enumerate(LAYOUT)}
    assert await keys(store, "v/") == ["v/A", "v/a-b", "v/a/b", "v/a/c/d", "v/a0", "v/b"]
    assert await keys(store, "v/a") == ["v/a-b", "v/a/b", "v/a/c/d", "v/a0"]
    assert await keys(store, "v/a/") == ["v/a/b", "v/a/c/d"]
    assert await keys(store, "v") == sorted(k for k in LAYOUT if k.startswith("v"))
    assert await keys(store, "w/x") == ["w/x"]
    assert await keys(store, "nope/") == []
    assert await keys(store, "../") == []


async def test_delete(store: ObjectStore) -> None:
    await store.put("a/b/c", b"1")
    await store.put("a/d", b"2")
    await store.delete("a/b/c")
    await store.delete("a/b/c")  # absent is fine
    await store.delete("never/existed")
    assert not await store.exists("a/b/c")
    assert await keys(store) == ["a/d"]
    if isinstance(store, FileStore):
        assert not (store.root / "a" / "b").exists()  # emptied directories are pruned


async def test_delete_prefix(store: ObjectStore) -> None:
    for i in range(5):
        await store.put(f"streams/v1/{i}.ts", b"s")
    await store.put("streams/v1-other/0.ts", b"o")
    await store.put("streams/v2/0.ts", b"o")
    assert await store.delete_prefix("streams/v1/") == 5
    assert await keys(store) == ["streams/v1-other/0.ts", "streams/v2/0.ts"]
    assert await store.delete_prefix("streams/v1/") == 0


# -- invalid keys --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["../x", "/abs", "a//b", "", "a/../b", "a/./b", "a/", ".", "x#meta", "a\\b", "é"]
)
async def test_invalid_keys_are_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put(key, b"x")
    with pytest.raises(InvalidKey):
        await store.put(key, chunks(b"x", 1))
    with pytest.raises(InvalidKey):
        async for _ in store.get(key):
            pass
    with pytest.raises(InvalidKey):
        await store.stat(key)
    with pytest.raises(InvalidKey):
        await store.delete(key)
    with pytest.raises(InvalidKey):
        await store.presigned_url(key)
    await assert_nothing_left(store)


# -- size limits and failures leave nothing behind -----------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "limit"),
    [(200, 100), (12 * MIB, 10 * MIB)],
    ids=["small", "after-first-part"],  # the second starts (and must abort) an S3 multipart upload
)
async def test_too_large_stream_stores_nothing(store: ObjectStore, total: int, limit: int) -> None:
    with pytest.raises(TooLarge):
        await store.put("originals/big", generated(total, chunk=MIB), max_bytes=limit)
    assert not await store.exists("originals/big")
    await assert_nothing_left(store)


async def test_too_large_bytes_store_nothing(store: ObjectStore) -> None:
    with pytest.raises(TooLarge):
        await store.put("originals/big", b"x" * 101, max_bytes=100)
    await store.put("originals/exact", b"x" * 100, max_bytes=100)
    assert await keys(store) == ["originals/exact"]


async def test_failing_stream_keeps_the_previous_object(store: ObjectStore) -> None:
    await store.put("originals/v1", b"old", content_type="text/plain")

    async def breaks_after_a_part() -> AsyncIterator[bytes]:
        async for c in generated(9 * MIB, chunk=MIB):
            yield c
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put("originals/v1", breaks_after_a_part(), content_type="video/mp4")
    assert await store.read_bytes("originals/v1") == b"old"
    info = await store.stat("originals/v1")
    assert info is not None and info.content_type == "text/plain"
    await store.delete("originals/v1")
    await assert_nothing_left(store)


async def test_cancelled_upload_leaves_nothing(store: ObjectStore) -> None:
    stalled = asyncio.Event()

    async def stalls_after_a_part() -> AsyncIterator[bytes]:
        async for c in generated(9 * MIB, chunk=MIB):
            yield c
        stalled.set()
        await asyncio.Event().wait()  # a client that stops sending without closing
        yield b"never"

    upload = asyncio.create_task(store.put("originals/v1", stalls_after_a_part()))
    async with asyncio.timeout(30):
        await stalled.wait()
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    await assert_nothing_left(store)


# -- presigned URLs ------------------------------------------------------------------------------------------


async def test_presigned_url(store: ObjectStore) -> None:
    await store.put("thumbs/v1/sprite.jpg", b"sprite-bytes", content_type="image/jpeg")
    url = await store.presigned_url("thumbs/v1/sprite.jpg", expires_in=60)
    if isinstance(store, FileStore):
        assert url is None  # served by the app behind signed playback tokens instead
        return
    assert url is not None
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        assert await resp.read() == b"sprite-bytes"


# -- large objects stream with bounded memory ----------------------------------------------------------------

LARGE = 50 * MIB
PEAK_LIMIT = 20 * MIB  # a whole 50 MiB object would blow this; one 8 MiB S3 part plus chunks does not


async def test_large_object_streams_with_bounded_memory(
    store: ObjectStore, record_property: Callable[[str, object], None]
) -> None:
    sent = hashlib.sha256()
    tracemalloc.start()
    try:
        info = await store.put("originals/large.mp4", generated(LARGE, sent), content_type="video/mp4")
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        received = hashlib.sha256()
        size = 0
        async for chunk in store.get("originals/large.mp4"):
            received.update(chunk)
            size += len(chunk)
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    record_property("put_peak_mib", round(put_peak / MIB, 2))
    record_property("get_peak_mib", round(get_peak / MIB, 2))
    print(f"{type(store).__name__}: put peak {put_peak / MIB:.2f} MiB, get peak {get_peak / MIB:.2f} MiB")
    assert (info.size, size) == (LARGE, LARGE)
    assert received.hexdigest() == sent.hexdigest()
    assert put_peak < PEAK_LIMIT
    assert get_peak < PEAK_LIMIT
    stat = await store.stat("originals/large.mp4")
    assert stat is not None and (stat.size, stat.content_type) == (LARGE, "video/mp4")
    if isinstance(store, S3Store):
        parts = -(-LARGE // store.part_size)
        assert stat.etag.endswith(f"-{parts}"), (
            stat.etag
        )  # S3's multipart ETag: md5-of-md5s, dash, part count


# -- S3 specifics --------------------------------------------------------------------------------------------


async def test_s3_small_stream_is_a_single_put(s3_store: S3Store) -> None:
    await s3_store.put(
        "playlist.m3u8", chunks(b"#EXTM3U\n" * 1000, 100), content_type="application/vnd.apple.mpegurl"
    )
    stat = await s3_store.stat("playlist.m3u8")
    assert stat is not None and "-" not in stat.etag


async def test_s3_key_prefix_isolates_stores(s3_store: S3Store, moto_server: str) -> None:
    settings = ServiceSettings(
        storage_url=f"s3://{s3_store.bucket}/tenant-a/",
        s3_endpoint_url=moto_server,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    tenant = create_store(settings)
    try:
        assert isinstance(tenant, S3Store) and tenant.prefix == "tenant-a/"
        await tenant.put("x", b"in a")
        await s3_store.put("x", b"at root")
        assert await keys(tenant) == ["x"]
        assert await keys(s3_store) == ["tenant-a/x", "x"]
        assert await tenant.read_bytes("x") == b"in a"
        assert await tenant.delete_prefix("") == 1
        assert await keys(s3_store) == ["x"]
    finally:
        await tenant.close()


async def test_s3_ping_fails_for_a_missing_bucket(moto_server: str) -> None:
    store = S3Store("no-such-bucket-here", endpoint_url=moto_server, access_key_id="t", secret_access_key="t")
    try:
        with pytest.raises(Exception, match=r"404|NoSuchBucket|Not Found"):
            await store.ping()
    finally:
        await store.close()


async def test_s3_reuses_one_client_until_closed(s3_store: S3Store) -> None:
    first = await s3_store.client()
    await asyncio.gather(*(s3_store.put(f"k{i}", b"x") for i in range(20)))
    assert await s3_store.client() is first
    await s3_store.close()
    assert await s3_store.read_bytes("k0") == b"x"  # reopens on demand
    assert await s3_store.client() is not first
