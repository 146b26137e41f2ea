"""The web page at ``/``, checked without a browser: served files, content types, a strict CSP, no inline code,
every element the script looks up present, and the API paths the script calls real."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from gateway.api import STATIC_DIR, gateway_document
from gateway.proxy import route_for

from ..conftest import GatewayFactory

ASSET_TYPES = {
    ".js": {"application/javascript", "text/javascript"},
    ".css": {"text/css"},
    ".svg": {"image/svg+xml"},
}


class PageParser(HTMLParser):
    """What the page loads and where it would run inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.ids: set[str] = set()
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        for name, value in attrs:
            if name.startswith("on") or name == "style" or (value or "").lower().startswith("javascript:"):
                self.inline.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._in_script = True
            if not a.get("src"):
                self.inline.append("<script> without src")
            else:
                self.assets.append(a["src"] or "")
        if tag == "link" and a.get("href"):
            self.assets.append(a["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline script text")


def csp_directives(header: str) -> dict[str, list[str]]:
    """``Content-Security-Policy`` as ``{directive: [sources]}``."""
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def assert_strict_csp(header: str) -> None:
    """Same-origin only, no inline or eval'd code, WebSocket allowed, not framable, no plugins."""
    d = csp_directives(header)
    assert "unsafe" not in header and "data:" not in header and "*" not in header, header
    assert d["default-src"] == ["'self'"]
    assert d.get("script-src", d["default-src"]) == ["'self'"]
    assert d.get("style-src", d["default-src"]) == ["'self'"]
    connect = d["connect-src"]
    assert "'self'" in connect and "ws:" in connect and set(connect) <= {"'self'", "ws:", "wss:"}, connect
    assert d["frame-ancestors"] == ["'none'"]
    assert d["object-src"] == ["'none'"]
    assert d["base-uri"] == ["'none'"]


async def test_page_is_served_with_a_strict_policy(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    r = await client.get("/")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert_strict_csp(r.headers["Content-Security-Policy"])
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "RateLimit-Limit" not in r.headers  # the page and its files are not rate limited

    page = PageParser()
    page.feed(await r.text())
    assert page.inline == [], "the CSP blocks inline code and styles"
    assert {"/static/app.js", "/static/app.css", "/static/favicon.svg"} <= set(page.assets)

    for src in page.assets:
        a = await client.get(src)
        assert a.status == 200, src
        ext = src[src.rindex(".") :]
        assert a.content_type in ASSET_TYPES[ext], (src, a.content_type)
        assert a.headers["X-Content-Type-Options"] == "nosniff"
        assert_strict_csp(a.headers["Content-Security-Policy"])
        assert a.headers["Cache-Control"] == "no-cache"
        assert "ETag" in a.headers  # revalidation is cheap
        assert await a.read()


async def test_static_files_only(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    assert (await client.get("/static/")).status in (403, 404)  # no directory listing
    assert (await client.get("/static/nope.js")).status == 404
    r = await client.get("/static/%2e%2e/api.py")
    assert r.status in (403, 404)
    assert "async def" not in await r.text()


def test_script_finds_every_element_it_uses() -> None:
    page = PageParser()
    page.feed((STATIC_DIR / "index.html").read_text())
    js = (STATIC_DIR / "app.js").read_text()
    used = set(re.findall(r"""\$\(\s*["']([\w-]+)["']\s*\)""", js)) | set(
        re.findall(r"""show\(\s*["']([\w-]+)["']""", js)
    )
    assert used, "the script looks elements up by id"
    assert used <= page.ids, f"missing in index.html: {sorted(used - page.ids)}"
    assert "innerHTML" not in js and "eval(" not in js and "new Function" not in js


def test_script_calls_the_real_api() -> None:
    js = (STATIC_DIR / "app.js").read_text()
    paths = set(re.findall(r"""["'`](/api/v1/[\w/-]*)""", js))
    for needed in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/jobs",
        "/api/v1/ws",
    ):
        assert needed in paths, needed
    own = set(gateway_document()["paths"])
    for path in paths:
        # the gateway's own paths (documented), or proxied to the service that owns them
        assert path in own or route_for("*", path) is not None, path
    upload, playback = route_for("POST", "/api/v1/videos"), route_for("POST", "/api/v1/videos/x/playback")
    assert upload is not None and upload.upstream == "ingest"
    assert playback is not None and playback.upstream == "streaming"
