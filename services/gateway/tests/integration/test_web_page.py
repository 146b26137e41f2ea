"""The web page at ``/``, checked without a browser: served files, content types, a strict CSP, no inline code,
every element the script looks up present, and the API paths the script calls real.

The built web app (web/dist, which ``scripts/bootstrap.sh`` builds before ``make test``), and the page that says it
is not built when it is missing (503, with how to build it). tests/e2e/test_web_app.py drives the app.
"""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from pathlib import Path

from aiohttp import ClientResponse
from structlog.testing import capture_logs

from gateway.api import CHECKOUT_WEB_DIR
from gateway.config import GatewaySettings

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


def assert_page_headers(r: ClientResponse) -> None:
    """The page's hardening: an HTML document under the strict policy, not framable, not rate limited."""
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert_strict_csp(r.headers["Content-Security-Policy"])
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Cache-Control"] == "no-cache"
    assert "RateLimit-Limit" not in r.headers  # the page and its files are not rate limited


async def test_the_built_app_is_served_with_a_strict_policy(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings
) -> None:
    assert (CHECKOUT_WEB_DIR / "index.html").is_file(), "build the web app: scripts/bootstrap.sh"
    with capture_logs() as logs:
        client = await start_gateway(dataclasses.replace(gateway_settings, web_dir=str(CHECKOUT_WEB_DIR)))
    assert [e for e in logs if e["event"] == "web.app_missing"] == []
    r = await client.get("/")
    assert r.status == 200
    assert_page_headers(r)

    page = PageParser()
    page.feed(await r.text())
    assert page.inline == [], "the CSP blocks inline code and styles"
    # one script and one stylesheet, named by content hash, cached for good
    assert {Path(a).suffix for a in page.assets} == {".js", ".css", ".svg"}, page.assets
    assert all(a.startswith("/assets/") for a in page.assets), page.assets

    for src in page.assets:
        a = await client.get(src)
        assert a.status == 200, src
        ext = src[src.rindex(".") :]
        assert a.content_type in ASSET_TYPES[ext], (src, a.content_type)
        assert a.headers["X-Content-Type-Options"] == "nosniff"
        assert_strict_csp(a.headers["Content-Security-Policy"])
        assert a.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert await a.read()


async def test_without_a_build_the_page_says_so_and_how_to_build_it(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, tmp_path: Path
) -> None:
    """No silent stand-in: an empty web directory gets a 503 page naming what is missing and the commands that
    build it, and a warning in the log at start (an image or checkout without the app is an operator's mistake)."""
    empty = tmp_path / "dist"
    empty.mkdir()
    with capture_logs() as logs:
        client = await start_gateway(dataclasses.replace(gateway_settings, web_dir=str(empty)))
    missing = [e for e in logs if e["event"] == "web.app_missing"]
    assert [(e["log_level"], e["web_dir"]) for e in missing] == [("warning", str(empty))], logs
    assert "npm run build" in missing[0]["build"]

    r = await client.get("/")
    assert r.status == 503
    assert_page_headers(r)
    text = await r.text()
    assert (
        "not built" in text
        and "make up" in text
        and "cd web &amp;&amp; npm ci &amp;&amp; npm run build" in text
    )
    page = PageParser()
    page.feed(text)
    assert page.inline == [] and page.assets == ["/static/favicon.svg"], (page.inline, page.assets)
    icon = await client.get("/static/favicon.svg")
    assert icon.status == 200 and icon.content_type == "image/svg+xml"
    assert (await client.get("/assets/index.js")).status == 404  # no stale bundle from anywhere
    assert (await client.get("/.well-known/jwks.json")).status == 200  # the gateway itself works


async def test_static_files_only(start_gateway: GatewayFactory) -> None:
    client = await start_gateway()
    assert (await client.get("/static/")).status in (403, 404)  # no directory listing
    assert (await client.get("/static/nope.js")).status == 404
    r = await client.get("/static/%2e%2e/api.py")
    assert r.status in (403, 404)
    assert "async def" not in await r.text()


async def test_the_embed_page_may_be_framed_by_any_site(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, tmp_path: Path
) -> None:
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text("<!doctype html><title>app</title>")
    (build / "embed.html").write_text("<!doctype html><title>player</title>")
    client = await start_gateway(dataclasses.replace(gateway_settings, web_dir=str(build)))
    r = await client.get("/embed/3f2a0c1e-0000-4000-8000-000000000000", params={"token": "t"})
    assert r.status == 200 and "player" in await r.text()
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors *" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "X-Frame-Options" not in r.headers
    assert r.headers["Referrer-Policy"] == "no-referrer" and r.headers["X-Content-Type-Options"] == "nosniff"
    app = await client.get("/")  # the app itself stays unframable
    assert (
        app.headers["X-Frame-Options"] == "DENY"
        and "frame-ancestors 'none'" in app.headers["Content-Security-Policy"]
    )


async def test_no_embed_page_without_the_built_app(
    start_gateway: GatewayFactory, gateway_settings: GatewaySettings, tmp_path: Path
) -> None:
    client = await start_gateway(dataclasses.replace(gateway_settings, web_dir=str(tmp_path / "no-build")))
    assert (await client.get("/embed/x?token=t")).status == 404
