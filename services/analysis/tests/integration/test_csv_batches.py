"""A batch from a CSV through the real API and Postgres: ``POST /api/v1/analyses/batches`` takes JSON, a
``multipart/form-data`` upload (``file`` + options) or a ``text/csv`` body (options in the query);
``/api/v1/analyses/batches/csv`` stays as the multipart route the web app uses. Bad CSVs are stable 422s."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from .service import Service

pytestmark = pytest.mark.xdist_group("analysis_service")
URLS = [f"https://videos.example.com/watch?v={n}" for n in range(3)]


def _form(text: str, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", text.encode(), filename="videos.csv", content_type="text/csv")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def _post(svc: Service, path: str, headers: dict[str, str] | None = None, **kw: Any) -> tuple[int, Any]:
    async with svc.api.post(path, headers={**svc.auth, **(headers or {})}, **kw) as r:
        return r.status, await r.json()


async def _items(svc: Service, batch_id: str) -> list[dict[str, Any]]:
    status, page = await svc.get(f"/api/v1/analyses/batches/{batch_id}/items")
    assert status == 200, page
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_a_csv_batch_by_upload_or_as_the_body(
    analysis_service: Callable[..., Awaitable[Service]],
) -> None:
    svc = await analysis_service(workers=0)
    video = uuid.uuid4()
    text = "url\n" + "".join(f"{u}\n" for u in URLS) + f"{video}\n"  # a header row, three URLs and a video id

    uploaded = await _post(svc, "/api/v1/analyses/batches", data=_form(text, detail="brief"))
    as_body = await _post(
        svc,
        "/api/v1/analyses/batches?detail=detailed&output_language=ko",
        data=text.encode(),
        headers={"Content-Type": "text/csv"},
    )
    alias = await _post(svc, "/api/v1/analyses/batches/csv", data=_form(text))
    for (status, accepted), detail, language in (
        (uploaded, "brief", None),
        (as_body, "detailed", "ko"),
        (alias, "standard", None),
    ):
        assert status == 202, accepted
        assert accepted["batch"]["total"] == 4 and accepted["batch"]["counts"]["queued"] == 4
        items = await _items(svc, accepted["batch"]["id"])
        assert [i["url"] for i in items[:3]] == URLS and items[3]["video_id"] == str(video)
        assert {i["options"]["detail"] for i in items} == {detail}
        assert {i["options"].get("output_language") for i in items} == {language}

    # a CSV body retried under one Idempotency-Key is one batch; the same CSV with other options is another request
    key = {"Content-Type": "text/csv", "Idempotency-Key": "csv-1"}
    first = await _post(svc, "/api/v1/analyses/batches?detail=brief", data=text.encode(), headers=key)
    again = await _post(svc, "/api/v1/analyses/batches?detail=brief", data=text.encode(), headers=key)
    assert first[0] == 202 and again == first
    status, problem = await _post(
        svc, "/api/v1/analyses/batches?detail=detailed", data=text.encode(), headers=key
    )
    assert status == 409 and problem["code"] == "idempotency.key_reused", problem


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        ({"data": b"url\nnot a url\n", "headers": {"Content-Type": "text/csv"}}, 422, "batch.invalid_csv"),
        ({"data": b"url\n", "headers": {"Content-Type": "text/csv"}}, 422, "batch.empty"),
        ({"data": _form("url\nftp://x/y\n")}, 422, "batch.invalid_csv"),
        ({"data": _form("https://a.example/v\n", detail="huge")}, 422, "validation.invalid"),
        ({"data": b"https://a.example/v\n", "headers": {"Content-Type": "text/plain"}}, 415, None),
    ],
    ids=["bad-row", "empty", "bad-upload", "bad-detail", "other-type"],
)
async def test_a_bad_csv_batch_is_a_stable_error(
    analysis_service: Callable[..., Awaitable[Service]], send: dict[str, Any], status: int, code: str | None
) -> None:
    svc = await analysis_service(workers=0)
    got, problem = await _post(svc, "/api/v1/analyses/batches", **send)
    assert got == status, problem
    assert problem["code"] == (code or "request.unsupported_media_type")
    async with svc.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM batches") == 0
