"""Object keys: what ``check_key`` accepts, and that no key reaches outside a ``FileStore`` root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.settings import ServiceSettings
from common.storage import InvalidKey, ObjectNotFound, check_key, create_store
from common.storage.fs import FileStore
from common.storage.s3 import S3Store

VALID = [
    "originals/0b9f/source.mp4",
    "a",
    "streams/v1/720p/seg_00001.m4s",
    "captions/v 1/en=US+auto,x@y.vtt",
    ".hidden/file",
    "a..b/c..d",
    "(x)/!y/'z'*",
]
INVALID = [
    "",
    "/abs",
    "../x",
    "a/../b",
    "..",
    ".",
    "a/./b",
    "a//b",
    "a/",
    "a\\b",
    "a#b",
    "%2e%2e/x",
    "a?b",
    "tab\there",
    "new\nline",
    "é",
    " leading-space",
    "x/\x00",
]


@pytest.mark.parametrize("key", VALID)
def test_check_key_accepts(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", INVALID)
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


def test_invalid_key_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        check_key("../etc/passwd")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the store root holding a secret."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret").write_bytes(b"secret")
    return d


@pytest.fixture
def fs(tmp_path: Path) -> FileStore:
    (tmp_path / "root").mkdir()
    return FileStore(tmp_path / "root")


async def test_symlinked_directory_out_of_the_root_is_refused(fs: FileStore, outside: Path) -> None:
    os.symlink(outside, fs.root / "link")
    with pytest.raises(InvalidKey):
        await fs.read_bytes("link/secret")
    with pytest.raises(InvalidKey):
        await fs.stat("link/secret")
    with pytest.raises(InvalidKey):
        await fs.put("link/planted", b"x")
    with pytest.raises(InvalidKey):
        await fs.delete("link/secret")
    assert not (outside / "planted").exists()
    assert (outside / "secret").read_bytes() == b"secret"


async def test_symlinked_file_out_of_the_root_is_refused(fs: FileStore, outside: Path) -> None:
    os.symlink(outside / "secret", fs.root / "leak")
    with pytest.raises(InvalidKey):
        await fs.read_bytes("leak")
    with pytest.raises(InvalidKey):
        await fs.put("leak", b"overwritten")
    assert (outside / "secret").read_bytes() == b"secret"


async def test_listing_neither_follows_symlinks_nor_escapes(fs: FileStore, outside: Path) -> None:
    os.symlink(outside, fs.root / "link")
    await fs.put("real/file", b"x")
    assert [i.key async for i in fs.list()] == ["real/file"]
    assert [i.key async for i in fs.list("link/")] == []
    assert [i.key async for i in fs.list("../outside/")] == []
    assert await fs.delete_prefix("../") == 0
    assert (outside / "secret").exists()


async def test_internal_files_are_neither_listed_nor_addressable(fs: FileStore) -> None:
    await fs.put("v/a.bin", b"data", content_type="video/mp4")
    on_disk = sorted(str(p.relative_to(fs.root)) for p in fs.root.rglob("*") if p.is_file())
    assert on_disk == ["v/a.bin", "v/a.bin#meta"]
    assert [i.key async for i in fs.list()] == ["v/a.bin"]
    with pytest.raises(InvalidKey):
        await fs.stat("v/a.bin#meta")


async def test_a_key_cannot_be_both_object_and_prefix_on_disk(fs: FileStore) -> None:
    await fs.put("a", b"file")
    with pytest.raises(InvalidKey):
        await fs.put("a/b", b"below a file")
    await fs.put("c/d", b"x")
    with pytest.raises(InvalidKey):
        await fs.put("c", b"over a directory")
    with pytest.raises(ObjectNotFound):
        await fs.read_bytes("c")  # a directory is not an object
    assert [i.key async for i in fs.list()] == ["a", "c/d"]
    assert [p.name for p in (fs.root / "#tmp").iterdir()] == []


def test_create_store_resolves_a_relative_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = create_store(ServiceSettings(storage_url="file://./var/storage"))
    assert isinstance(store, FileStore)
    assert store.root == tmp_path.resolve() / "var" / "storage"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [("s3://media", "media", ""), ("s3://media/", "media", ""), ("s3://media/a/b/", "media", "a/b/")],
)
def test_s3_store_from_settings(url: str, bucket: str, prefix: str) -> None:
    store = create_store(ServiceSettings(storage_url=url, s3_endpoint_url="http://127.0.0.1:9000"))
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.endpoint_url) == (bucket, prefix, "http://127.0.0.1:9000")


def test_s3_store_refuses_parts_below_the_s3_minimum() -> None:
    with pytest.raises(ValueError):
        S3Store.from_settings(ServiceSettings(storage_url="s3://media", s3_part_size=1024))
