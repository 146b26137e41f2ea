"""Object storage: one interface, a filesystem backend and an S3-compatible backend."""

from . import content_types
from .base import Body, InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore, StorageError, TooLarge, check_key

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


def create_store(settings: object) -> ObjectStore:
    """The store named by ``settings.storage_url``: ``file:///path`` (or ``file://./rel``) or ``s3://bucket[/prefix]``."""
    from ..settings import ServiceSettings

    assert isinstance(settings, ServiceSettings)
    url = settings.storage_url
    if url.startswith("file://"):
        from .fs import FileStore

        return FileStore(url.removeprefix("file://"))
    if url.startswith("s3://"):
        from .s3 import S3Store

        return S3Store.from_settings(settings)
    raise ValueError(f"unsupported STORAGE_URL {url!r} (use file://... or s3://bucket)")
