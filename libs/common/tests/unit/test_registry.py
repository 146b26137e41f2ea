"""``common.registry``: who owns a public path (the gateway's routing reads it)."""

from __future__ import annotations

import pytest

from common import registry


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("/api/v1/videos", "ingest"),
        ("/api/v1/videos/", "ingest"),
        ("/api/v1/videos/abc", "ingest"),
        ("/api/v1/videos/abc/stream", "streaming"),
        ("/api/v1/videos/abc/playback", "streaming"),
        ("/api/v1/videos/abc/captions", "captions"),
        ("/api/v1/videos/abc/captions/x", "captions"),
        ("/api/v1/videos//stream", "ingest"),  # an empty segment is not an id
        ("/api/v1/videos/abc/streams", "ingest"),  # whole segments only
        ("/api/v1/streams", "streaming"),
        ("/api/v1/webhooks/1/deliveries", "streaming"),
        ("/play/abc/master.m3u8", "streaming"),
        ("/api/v1/analyses/batches/1", "analysis"),
        ("/api/v1/rankings", "render"),
        ("/api/v1/renders/1", "render"),
        ("/api/v1/billing/prices", "billing"),
        ("/api/v1/jobs/1", "gateway"),
        ("/api/v1/nothing", None),
        ("/playground", None),
        ("/", None),
        ("//api/v1/videos", None),
        ("api/v1/videos", None),
        ("/api/v1//videos", None),
    ],
)
def test_the_longest_prefix_owns_a_path(path: str, owner: str | None) -> None:
    assert registry.owner_of(path) == owner


def test_the_gateway_is_not_an_upstream_and_has_no_worker() -> None:
    gateway = registry.get("gateway")
    assert "gateway" not in registry.UPSTREAMS and not gateway.has_worker
    assert gateway.processes == (("api", 8080),)
    assert registry.get("streaming").processes == (("api", 8002), ("worker", 9102))
    assert registry.get("streaming").job_kinds == ("transcode",)
    with pytest.raises(KeyError):
        registry.get("nope")
