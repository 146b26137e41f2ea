"""Which service owns a path, path hygiene, and client addresses behind trusted proxies."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from common.http import Problem
from gateway.proxy import check_path, client_ip, route_for


@pytest.mark.parametrize(
    ("method", "path", "upstream", "auth", "klass"),
    [
        ("GET", "/api/v1/videos", "ingest", True, "default"),
        ("POST", "/api/v1/videos/1/stream", "streaming", True, "default"),
        ("GET", "/api/v1/videos/1/stream/renditions", "streaming", True, "default"),
        ("POST", "/api/v1/videos/1/playback", "streaming", True, "default"),
        ("GET", "/api/v1/videos/1/captions/en", "captions", True, "default"),
        ("GET", "/api/v1/videos/1/streamer", "ingest", True, "default"),
        ("GET", "/api/v1/imports", "ingest", True, "default"),
        ("GET", "/api/v1/searches/9", "ingest", True, "default"),
        ("GET", "/api/v1/webhooks", "streaming", True, "default"),
        ("GET", "/api/v1/rankings", "render", True, "default"),
        ("GET", "/api/v1/renders/7", "render", True, "default"),
        ("GET", "/api/v1/renders/7/download", "render", False, "default"),  # a signed link: checked by render
        ("DELETE", "/api/v1/renders/7/download", "render", True, "default"),
        ("GET", "/api/v1/renders/7/download/x", "render", True, "default"),
        ("GET", "/api/v1/analyses/batches/3", "analysis", True, "default"),
        ("GET", "/api/v1/captions/4", "captions", True, "default"),
        ("GET", "/api/v1/billing/prices", "billing", False, "default"),
        ("POST", "/api/v1/billing/prices", "billing", True, "default"),
        ("GET", "/api/v1/billing/prices/x", "billing", True, "default"),
        ("GET", "/api/v1/billing/balance", "billing", True, "default"),
        ("POST", "/api/v1/billing/payments/webhook", "billing", False, "default"),
        ("GET", "/api/v1/billing/payments/webhook", "billing", True, "default"),
        ("GET", "/play/abc/master.m3u8", "streaming", False, "play"),
    ],
)
def test_route_table(method: str, path: str, upstream: str, auth: bool, klass: str) -> None:
    route = route_for(method, path)
    assert route is not None
    assert (route.upstream, route.auth, route.rate_class) == (upstream, auth, klass)


@pytest.mark.parametrize("path", ["/api/v1/videosX", "/api/v1/jobsy", "/api/v2/videos", "/playground", "/"])
def test_unowned_paths(path: str) -> None:
    assert route_for("GET", path) is None


@pytest.mark.parametrize(
    "raw",
    [
        "/api/v1/videos/../x",
        "/api/v1/videos/%2E%2E/x",
        "/api/v1/videos/a%2fb",
        "/api/v1/videos/a%5cb",
        "/api/v1/videos/./x",
    ],
)
def test_ambiguous_paths_are_refused(raw: str) -> None:
    with pytest.raises(Problem) as e:
        check_path(raw)
    assert e.value.status == 400 and e.value.code == "request.bad_path"


def test_plain_paths_pass() -> None:
    check_path("/api/v1/videos/abc/captions?lang=fr&q=a%20b")


def test_client_ip_trusts_only_configured_hops() -> None:
    req = make_mocked_request("GET", "/", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
    # a client cannot pick its own rate-limit bucket: without trusted proxies only the peer counts
    assert client_ip(req, trusted_hops=0) not in ("6.6.6.6", "203.0.113.7")
    assert client_ip(req, trusted_hops=1) == "203.0.113.7"
    assert client_ip(req, trusted_hops=2) == "6.6.6.6"
