"""Playback tokens: bound to one video, short-lived, signed with a key id so keys rotate."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.playback import (
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    KeyConfigError,
    PlaybackKeys,
    TokenError,
    clamp_ttl,
    sign_token,
    verify_token,
)

KEYS = PlaybackKeys.parse(["new:new-secret-0123456789abcdef", "old:old-secret-0123456789abcdef"])
VIDEO = uuid.uuid4()


def _code(keys: PlaybackKeys, token: str, video: uuid.UUID = VIDEO) -> str:
    with pytest.raises(TokenError) as info:
        verify_token(keys, token, video_id=video)
    code: str = info.value.code
    return code


def test_a_fresh_token_opens_its_video_and_reports_its_expiry() -> None:
    exp = int(time.time()) + 600
    token = sign_token(KEYS, video_id=VIDEO, expires_at=exp)
    assert verify_token(KEYS, token, video_id=VIDEO) == exp
    # compact and URL-safe: it travels in a query string on every segment request
    assert len(token) < 160 and all(c.isalnum() or c in "-_." for c in token)


def test_an_expired_token_is_refused_as_expired() -> None:
    token = sign_token(KEYS, video_id=VIDEO, expires_at=int(time.time()) - 1)
    assert _code(KEYS, token) == TOKEN_EXPIRED


def test_a_token_for_another_video_is_refused() -> None:
    token = sign_token(KEYS, video_id=uuid.uuid4(), expires_at=int(time.time()) + 600)
    assert _code(KEYS, token) == TOKEN_INVALID


def test_a_token_whose_payload_was_edited_is_invalid_not_expired() -> None:
    token = sign_token(KEYS, video_id=VIDEO, expires_at=int(time.time()) - 10)
    payload_b64, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    payload["exp"] = int(time.time()) + 10_000  # try to extend an expired token
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    assert _code(KEYS, f"{forged}.{sig}") == TOKEN_INVALID


def test_a_token_with_a_flipped_signature_byte_is_invalid() -> None:
    token = sign_token(KEYS, video_id=VIDEO, expires_at=int(time.time()) + 600)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert _code(KEYS, flipped) == TOKEN_INVALID


def test_keys_rotate_old_tokens_verify_until_their_key_is_removed() -> None:
    old_only = PlaybackKeys.parse(["old:old-secret-0123456789abcdef"])
    issued_before_rotation = sign_token(old_only, video_id=VIDEO, expires_at=int(time.time()) + 600)
    # after rotation: the new key signs, the old one still verifies
    assert verify_token(KEYS, issued_before_rotation, video_id=VIDEO)
    assert (
        json.loads(
            base64.urlsafe_b64decode(sign_token(KEYS, video_id=VIDEO, expires_at=1).split(".")[0] + "==")
        )["kid"]
        == "new"
    )
    # once the old key is retired, its tokens stop working
    retired = PlaybackKeys.parse(["new:new-secret-0123456789abcdef"])
    assert _code(retired, issued_before_rotation) == TOKEN_INVALID


def test_a_token_signed_with_an_unknown_key_id_is_invalid() -> None:
    other = PlaybackKeys.parse(["zzz:some-other-secret-0123456789"])
    token = sign_token(other, video_id=VIDEO, expires_at=int(time.time()) + 600)
    assert _code(KEYS, token) == TOKEN_INVALID


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "....", "%%%.%%%", "eyJ2IjoxfQ.", "x" * 600])
def test_garbage_is_invalid(token: str) -> None:
    assert _code(KEYS, token) == TOKEN_INVALID


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_no_string_but_a_signed_one_opens_a_video(token: str) -> None:
    with pytest.raises(TokenError):
        verify_token(KEYS, token, video_id=VIDEO)


@pytest.mark.parametrize(
    "entries",
    [[], ["nokey"], ["k:short"], ["k:0123456789abcdef", "k:0123456789abcdeX"], ["bad kid:0123456789abcdef"]],
)
def test_malformed_key_settings_are_refused(entries: list[str]) -> None:
    with pytest.raises(KeyConfigError):
        PlaybackKeys.parse(entries)


def test_token_lifetime_defaults_to_an_hour_and_is_clamped() -> None:
    kw = {"default": 3600, "minimum": 60, "maximum": 86400}
    assert clamp_ttl(None, **kw) == 3600
    assert clamp_ttl(5, **kw) == 60
    assert clamp_ttl(-100, **kw) == 60
    assert clamp_ttl(900, **kw) == 900
    assert clamp_ttl(10**9, **kw) == 86400


def test_keys_come_from_the_environment_and_the_public_dev_key_is_refused_in_production() -> None:
    from common.settings import SettingsError
    from streaming.config import StreamingSettings
    from streaming.playback_webhooks import playback_keys

    env = {"PLAYBACK_KEYS": "2025b:" + "s" * 32 + ", 2025a:" + "t" * 32, "ENVIRONMENT": "production"}
    keys = playback_keys(StreamingSettings.from_env(env))
    assert keys.signing_kid == "2025b" and set(keys.secrets) == {"2025b", "2025a"}
    with pytest.raises(SettingsError):
        playback_keys(StreamingSettings(environment="production"))
    with pytest.raises(SettingsError):
        playback_keys(StreamingSettings(playback_keys=("k:short",)))
    assert playback_keys(StreamingSettings()).signing_kid == "dev"  # development works out of the box


def test_an_unknown_delivery_mode_stops_the_service_at_startup() -> None:
    from common.settings import SettingsError
    from streaming.app import create_app
    from streaming.config import StreamingSettings

    with pytest.raises(SettingsError):
        create_app(StreamingSettings(playback_delivery="cdn"), role="api")
