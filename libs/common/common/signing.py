"""HMAC-SHA256 signatures over ``<unix timestamp>.<body>``: the one scheme behind every signed webhook.

Signing the timestamp with the body means an old message cannot be replayed under a fresh timestamp; a receiver
refuses timestamps outside its tolerance window. Streaming signs the webhooks it sends
(``Reelforge-Signature: t=<t>,v1=<hex>``); billing verifies the payment provider's
(``X-Payment-Signature: v1=<hex>[,v1=<hex>...]`` with ``X-Payment-Timestamp``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def mac(secret: str, timestamp: int, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw, hashlib.sha256).hexdigest()


def matches_any(expected: str, candidates: Iterable[str]) -> bool:
    """Whether one candidate equals ``expected``; every candidate is compared in constant time, so timing says
    nothing about which one matched (several are sent while a secret rotates)."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate.strip().encode(), expected.encode())
    return matched


def is_fresh(timestamp: int, *, now: float, tolerance_s: float) -> bool:
    """Whether a signed ``timestamp`` is within ``tolerance_s`` of ``now`` (either side)."""
    return abs(now - timestamp) <= tolerance_s


def header(secret: str, body: bytes | str, *, timestamp: int) -> str:
    """``t=<timestamp>,v1=<hex>``: a signature header carrying its own timestamp."""
    return f"t={timestamp},v1={mac(secret, timestamp, body)}"


def verify_header(
    secret: str, body: bytes | str, value: str, *, now: float, tolerance_s: float = 300
) -> bool:
    """What a receiver of a ``t=…,v1=…`` header does: recompute the HMAC and refuse stale timestamps."""
    parts = [p.strip().split("=", 1) for p in value.split(",") if "=" in p]
    try:
        timestamp = int(next((v for k, v in parts if k == "t"), ""))
    except ValueError:
        return False
    if not is_fresh(timestamp, now=now, tolerance_s=tolerance_s):
        return False
    return matches_any(mac(secret, timestamp, body), (v for k, v in parts if k == "v1"))
