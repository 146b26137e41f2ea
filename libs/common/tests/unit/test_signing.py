"""``common.signing``: the HMAC scheme behind billing's incoming and streaming's outgoing webhooks."""

from __future__ import annotations

import hashlib
import hmac

from common import signing

SECRET = "whsec_test"
BODY = '{"id":"x"}'
T = 1_700_000_000


def test_the_mac_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.{BODY}".encode(), hashlib.sha256).hexdigest()
    assert signing.mac(SECRET, T, BODY) == expected == signing.mac(SECRET, T, BODY.encode())


def test_any_of_several_candidates_may_match() -> None:
    good = signing.mac(SECRET, T, BODY)
    assert signing.matches_any(good, ["v1=nope", f" {good} "])
    assert not signing.matches_any(good, ["nope", ""])
    assert not signing.matches_any(good, [])


def test_freshness_is_a_window_on_either_side() -> None:
    assert signing.is_fresh(T, now=T + 300, tolerance_s=300)
    assert signing.is_fresh(T, now=T - 300, tolerance_s=300)
    assert not signing.is_fresh(T, now=T + 301, tolerance_s=300)


def test_a_header_verifies_and_nothing_else_does() -> None:
    header = signing.header(SECRET, BODY, timestamp=T)
    assert header.startswith(f"t={T},v1=")
    assert signing.verify_header(SECRET, BODY, header, now=T + 10)
    assert not signing.verify_header(SECRET, BODY + " ", header, now=T + 10)  # the body changed
    assert not signing.verify_header("other", BODY, header, now=T + 10)  # another secret
    assert not signing.verify_header(SECRET, BODY, header, now=T + 301)  # stale: a replay
    forged = header.replace(f"t={T}", f"t={T + 100}")  # a fresh timestamp on an old signature
    assert not signing.verify_header(SECRET, BODY, forged, now=T + 100)
    assert not signing.verify_header(SECRET, BODY, "garbage", now=T)
    assert not signing.verify_header(SECRET, BODY, "t=abc,v1=00", now=T)
