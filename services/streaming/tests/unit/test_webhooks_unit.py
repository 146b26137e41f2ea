"""Webhook domain: body shape, signature a receiver can verify, the retry schedule, and which URLs are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
import uuid

import pytest

from common.events.ingest import VideoDeleted
from common.events.streaming import StreamFailed, StreamPlayable, StreamReady
from streaming.webhooks import (
    RetryPolicy,
    WebhookError,
    build_body,
    check_url,
    new_secret,
    sign,
    validate_events,
    verify_signature,
)


def test_body_has_id_type_created_at_and_data() -> None:
    e = StreamReady(video_id=uuid.uuid4(), owner_id=uuid.uuid4(), renditions=["src", "720p"], duration_s=12.5)
    doc = json.loads(build_body(e))
    assert doc == {
        "id": str(e.id),
        "type": "stream.ready",
        "created_at": e.occurred_at.isoformat(),
        "data": {
            "video_id": str(e.video_id),
            "status": "ready",
            "renditions": ["src", "720p"],
            "duration_s": 12.5,
        },
    }
    failed = json.loads(
        build_body(
            StreamFailed(
                video_id=e.video_id, owner_id=e.owner_id, code="media.unreadable", message="cannot decode"
            )
        )
    )
    assert failed["type"] == "stream.failed"
    assert failed["data"]["error"] == {"code": "media.unreadable", "message": "cannot decode"}
    assert (
        json.loads(build_body(StreamPlayable(video_id=e.video_id, owner_id=e.owner_id)))["type"]
        == "stream.playable"
    )
    deleted = json.loads(build_body(VideoDeleted(video_id=e.video_id, owner_id=e.owner_id)))
    assert deleted["type"] == "video.deleted"
    assert deleted["data"] == {"video_id": str(e.video_id), "status": "deleted"}


def test_a_failure_told_to_subscribers_names_no_file_of_ours() -> None:
    """Issue 14: ``media.unreadable`` quoted ``/tmp/…/transcode/…/audio/index.m3u8`` to users."""
    message = "[Errno 1] Operation not permitted: '/tmp/rf/transcode/1b2c/audio/index.m3u8'"
    event = StreamFailed(
        video_id=uuid.uuid4(), owner_id=uuid.uuid4(), code="media.unreadable", message=message
    )
    error = json.loads(build_body(event))["data"]["error"]
    assert error["code"] == "media.unreadable"
    assert "/tmp" not in error["message"] and "Errno" not in error["message"], error
    assert error["message"] == "Operation not permitted"


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    secret, body = new_secret(), '{"id":"x"}'
    header = sign(secret, body, timestamp=1_700_000_000)
    expected = hmac.new(secret.encode(), b'1700000000.{"id":"x"}', hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify_signature(secret, body, header, now=1_700_000_010)


def test_receivers_reject_tampered_bodies_wrong_secrets_and_replays() -> None:
    secret, body = new_secret(), '{"id":"x"}'
    header = sign(secret, body)
    assert not verify_signature(secret, '{"id":"y"}', header)
    assert not verify_signature(new_secret(), body, header)
    old = sign(secret, body, timestamp=int(time.time()) - 3600)
    assert not verify_signature(secret, body, old)
    assert not verify_signature(secret, body, "garbage")


def test_secrets_are_unique_and_long() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_") and len(a) > 40


def test_default_schedule_keeps_retrying_for_more_than_a_day() -> None:
    policy = RetryPolicy(base_s=30, max_delay_s=6 * 3600, window_s=3 * 86400)
    delays = policy.schedule()
    assert delays[:4] == [30, 60, 120, 240]  # exponential
    assert max(delays) == 6 * 3600  # capped
    assert sum(delays) >= 24 * 3600  # at least a day of retries


def test_jitter_stays_between_half_and_the_full_nominal_delay() -> None:
    policy = RetryPolicy(base_s=10, max_delay_s=1000, window_s=10_000)
    rng = random.Random(7)
    for attempt in range(1, 10):
        nominal = min(1000, 10 * 2 ** (attempt - 1))
        samples = {policy.delay(attempt, rng=rng) for _ in range(50)}
        assert all(nominal / 2 <= s <= nominal for s in samples)
        assert len(samples) > 1  # actually jittered


def test_events_are_validated_and_deduplicated() -> None:
    assert validate_events(["stream.ready", "stream.failed", "stream.ready", "video.deleted"]) == [
        "stream.ready",
        "stream.failed",
        "video.deleted",
    ]
    for bad in ([], ["stream.deleted"], ["stream.ready", "video.ingested"]):
        with pytest.raises(WebhookError) as info:
            validate_events(bad)
        assert info.value.code == "webhook.invalid_events"


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/reelforge",
        "http://93.184.216.34:8080/x?y=1",
        "https://bücher.example/hook",
        "https://hooks.example.com./x",
    ],
)
def test_public_http_urls_are_accepted(url: str) -> None:
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/x", "webhook.invalid_url"),
        ("file:///etc/passwd", "webhook.invalid_url"),
        ("javascript:alert(1)", "webhook.invalid_url"),
        ("https:///nohost", "webhook.invalid_url"),
        ("http://example.com:99999/", "webhook.invalid_url"),
        ("http://\x85/hook", "webhook.invalid_url"),  # schemathesis: a control character as the host
        ("http://exa mple.com/hook", "webhook.invalid_url"),
        ("http://a..b/hook", "webhook.invalid_url"),
        ("http://127.0.0.1:8000/hook", "webhook.forbidden_address"),
        ("http://10.1.2.3/hook", "webhook.forbidden_address"),
        ("http://192.168.1.10/hook", "webhook.forbidden_address"),
        ("http://169.254.169.254/latest/meta-data/", "webhook.forbidden_address"),
        ("http://[::1]/hook", "webhook.forbidden_address"),
        ("http://[::ffff:127.0.0.1]/hook", "webhook.forbidden_address"),
        ("http://[2002:7f00:1::]/hook", "webhook.forbidden_address"),  # 6to4 spelling of 127.0.0.1
        (
            "http://[64:ff9b::a9fe:a9fe]/hook",
            "webhook.forbidden_address",
        ),  # NAT64 spelling of 169.254.169.254
        ("http://0.0.0.0/hook", "webhook.forbidden_address"),
        ("http://localhost/hook", "webhook.forbidden_address"),
    ],
)
def test_non_http_and_internal_targets_are_refused(url: str, code: str) -> None:
    with pytest.raises(WebhookError) as info:
        check_url(url, allow_private=False)
    assert info.value.code == code


def test_private_targets_are_allowed_when_the_setting_says_so() -> None:
    assert check_url("http://127.0.0.1:8000/hook", allow_private=True)
    with pytest.raises(WebhookError):
        check_url("ftp://127.0.0.1/", allow_private=True)


async def test_the_delivery_resolver_never_hands_out_an_internal_address() -> None:
    from streaming.webhook_sender import PublicOnlyResolver

    resolver = PublicOnlyResolver()
    try:
        for host in ("localhost", "127.0.0.1", "2130706433"):
            with pytest.raises(OSError):
                await resolver.resolve(host, 80)
    finally:
        await resolver.close()
