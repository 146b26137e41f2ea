"""Malformed requests get a 4xx with a code from the one request-parsing path, never a 500 (issue 14, item 2)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from aiohttp import web
from structlog.testing import capture_logs
from yarl import URL

from common.http import create_base_app, form_field, form_parts, json_response, part_chunks, read_json


class Login(msgspec.Struct):
    email: str
    password: str = ""


async def echo_json(request: web.Request) -> web.Response:
    body = await read_json(request, Login)
    return json_response({"email": body.email})


async def echo_form(request: web.Request) -> web.Response:
    fields: dict[str, Any] = {}
    async for part in form_parts(request):
        if part.name == "file":
            fields["file"] = sum([len(c) async for c in part_chunks(part)])
        else:
            fields[part.name or ""] = await form_field(part)
    return json_response(fields)


async def echo_query(request: web.Request) -> web.Response:
    return json_response({"kind": request.query.get("kind"), "id": request.match_info["id"]})


@pytest.fixture
async def client(aiohttp_client: Any) -> Any:
    app = create_base_app(service="probe")
    app.router.add_post("/json", echo_json)
    app.router.add_post("/form", echo_form)
    app.router.add_get("/things/{id}", echo_query)
    return await aiohttp_client(app)


async def _code(resp: Any) -> tuple[int, str]:
    assert resp.content_type == "application/problem+json", await resp.text()
    return resp.status, (await resp.json())["code"]


FORM = "multipart/form-data"
GOOD_PART = b'--x\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n--x--\r\n'


async def test_the_well_formed_requests_work(client: Any) -> None:
    assert (await (await client.post("/json", json={"email": "a@b.c"})).json()) == {"email": "a@b.c"}
    resp = await client.post("/form", data=GOOD_PART, headers={"Content-Type": f"{FORM}; boundary=x"})
    assert await resp.json() == {"title": "hello"}
    assert (await (await client.get("/things/1?kind=a")).json()) == {"kind": "a", "id": "1"}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (FORM, GOOD_PART),  # no boundary
        (f"{FORM}; boundary=y", GOOD_PART),  # a boundary the body does not use
        (
            f"{FORM}; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="a\x01b"\r\n\r\nv\r\n--x--\r\n',
        ),
        (
            f"{FORM}; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        ),  # cut short
    ],
    ids=["no-boundary", "wrong-boundary", "control-char-in-name", "truncated"],
)
async def test_a_malformed_multipart_body_is_400(client: Any, content_type: str, body: bytes) -> None:
    with capture_logs() as logs:
        resp = await client.post("/form", data=body, headers={"Content-Type": content_type})
        assert await _code(resp) == (400, "request.malformed_multipart")
    assert not [e for e in logs if e["event"] == "http.unhandled"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [("unknown-field", (400, "request.malformed_json")), ("top-level", (422, "validation.invalid"))],
)
async def test_json_nested_50000_deep_is_4xx_not_a_recursion_error(
    client: Any, where: str, expected: tuple[int, str]
) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    body = b'{"email": "a@b.c", "extra": ' + deep + b"}" if where == "unknown-field" else deep
    with capture_logs() as logs:
        resp = await client.post("/json", data=body, headers={"Content-Type": "application/json"})
        assert await _code(resp) == expected
    assert not [e for e in logs if e["event"] == "http.unhandled"]


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.get(URL("/things/1?kind=a%00b", encoded=True)),
        lambda c: c.get(URL("/things/ord_%00x", encoded=True)),
        lambda c: c.post(
            "/json", data=b'{"email": "a\\u0000b"}', headers={"Content-Type": "application/json"}
        ),
        lambda c: c.post(
            "/form",
            data=b'--x\r\nContent-Disposition: form-data; name="title"\r\n\r\na\x00b\r\n--x--\r\n',
            headers={"Content-Type": f"{FORM}; boundary=x"},
        ),
    ],
    ids=["query", "path", "json-string", "form-field"],
)
async def test_a_nul_byte_anywhere_is_400_invalid_characters(client: Any, send: Any) -> None:
    assert await _code(await send(client)) == (400, "request.invalid_characters")


async def test_an_escaped_backslash_before_u0000_is_not_a_nul(client: Any) -> None:
    resp = await client.post(
        "/json", data=b'{"email": "a\\\\u0000b"}', headers={"Content-Type": "application/json"}
    )
    assert (await resp.json()) == {"email": "a\\u0000b"}
