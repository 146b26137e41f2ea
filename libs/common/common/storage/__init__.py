"""Object storage: one interface, a filesystem backend and an S3-compatible backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import content_types
from .base import Body, InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore, StorageError, TooLarge, check_key

if TYPE_CHECKING:
    from ..settings import ServiceSettings

__all__ = [
    "Body",
    "InvalidKey",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "TooLarge",
    "check_key",
    "content_types",
    "create_store",
]


def create_store(settings: ServiceSettings) -> ObjectStore:
    """The store named by ``settings.storage_url``: ``file:///path`` (or ``file://./rel``) or ``s3://bucket[/prefix]``."""
    url = settings.storage_url
    if url.startswith("file://"):
        from .fs import FileStore

        return FileStore(url.removeprefix("file://"))
    if url.startswith("s3://"):
        from .s3 import S3Store

        return S3Store.from_settings(settings)
    raise ValueError(f"unsupported STORAGE_URL {url!r} (use file://... or s3://bucket)")
