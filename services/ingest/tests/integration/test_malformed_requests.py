"""Issue 14 item 2 against the real ingest app: malformed uploads and NUL bytes get a 4xx with a code, not a 500."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from structlog.testing import capture_logs

from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from ingest.config import IngestSettings

from ..conftest import AppFactory

PART = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nabc\r\n--x--\r\n'


@pytest.fixture
async def client(
    start_app: AppFactory, settings: IngestSettings, memory_bus: Any, fs_store: ObjectStore
) -> Any:
    return await start_app(settings.with_(import_allow_private=True), bus=memory_bus, store=fs_store)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("multipart/form-data", PART, (400, "request.malformed_multipart")),  # no boundary
        ("multipart/form-data; boundary=y", PART, (400, "request.malformed_multipart")),  # not the body's
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="fi\x01le"\r\n\r\nabc\r\n--x--\r\n',
            (400, "request.malformed_multipart"),
        ),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="title"\r\n\r\na\x00b\r\n' + PART[5:],
            (400, "request.invalid_characters"),
        ),
    ],
    ids=["no-boundary", "wrong-boundary", "control-char-in-name", "nul-in-title"],
)
async def test_a_malformed_upload_is_a_4xx_with_a_code(
    client: Any, token_factory: TokenFactory, content_type: str, body: bytes, expected: tuple[int, str]
) -> None:
    headers = {**token_factory.headers(uuid.uuid4()), "Content-Type": content_type}
    with capture_logs() as logs:
        resp = await client.post("/api/v1/videos", data=body, headers=headers)
        assert (resp.status, (await resp.json())["code"]) == expected
    assert not [e for e in logs if e["event"] == "http.unhandled"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"url": "http://127.0.0.1:9/v.mp4", "title": "a\\u0000b"}',
        b'{"url": "http://127.0.0.1:9/v\\u0000.mp4"}',
    ],
    ids=["title", "url"],
)
async def test_a_nul_in_an_import_is_refused_before_postgres(
    client: Any, token_factory: TokenFactory, body: bytes
) -> None:
    headers = {**token_factory.headers(uuid.uuid4()), "Content-Type": "application/json"}
    resp = await client.post("/api/v1/imports", data=body, headers=headers)
    assert (resp.status, (await resp.json())["code"]) == (400, "request.invalid_characters")
