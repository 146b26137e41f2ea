"""Object-store fixtures: a filesystem store, an S3 store on a real moto server, and ``store`` over both."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aioboto3
import pytest

from ..storage import ObjectStore
from ..storage.fs import FileStore
from ..storage.s3 import S3Store

__all__ = ["STORE_BACKENDS", "fs_store", "moto_server", "s3_session", "s3_store", "store"]

STORE_BACKENDS = ("fs", "s3")

# Run in a child process: an in-process server would share the GIL and, worse, its own allocations (moto
# joins every part of a multipart upload in memory) would be traced by tracemalloc in the memory tests.
_SERVER = """
import logging, sys
from moto.server import ThreadedMotoServer

logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()  # until the parent closes stdin (or dies)
server.stop()
"""


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto S3 server on a free port for the whole session; yields its endpoint URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        endpoint = proc.stdout.readline().strip()
        if not endpoint.startswith("http://") or endpoint.endswith(":0"):
            raise RuntimeError(f"moto server did not start (got {endpoint!r}, exit code {proc.poll()})")
        yield endpoint
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture(scope="session")
def s3_session() -> aioboto3.Session:
    """One aioboto3 session for every test: it caches the S3 service model (~0.3 s to load per session)."""
    return aioboto3.Session()


@pytest.fixture
async def fs_store(tmp_path: Path) -> AsyncIterator[FileStore]:
    """A ``FileStore`` rooted in the test's temporary directory."""
    store = FileStore(tmp_path / "storage")
    yield store
    await store.close()


@pytest.fixture
async def s3_store(moto_server: str, s3_session: aioboto3.Session) -> AsyncIterator[S3Store]:
    """An ``S3Store`` on a fresh bucket of the moto server (default part size and threshold), emptied afterwards."""
    store = S3Store(
        f"test-{uuid.uuid4().hex[:16]}",
        endpoint_url=moto_server,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        session=s3_session,
    )
    s3 = await store.client()
    await s3.create_bucket(Bucket=store.bucket)
    try:
        yield store
    finally:
        try:
            # Keeps the session-long server's memory flat: moto holds every object of every bucket.
            await store.delete_prefix("")
            s3 = await store.client()  # afresh: the test may have closed the store
            uploads = await s3.list_multipart_uploads(Bucket=store.bucket)
            for upload in uploads.get("Uploads", ()):
                await s3.abort_multipart_upload(
                    Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            await s3.delete_bucket(Bucket=store.bucket)
        finally:
            await store.close()


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each backend in turn, for contract tests; the moto server starts only if an S3 case runs."""
    backend: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return backend
