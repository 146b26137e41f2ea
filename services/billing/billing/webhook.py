"""The payment provider's webhook authentication: HMAC-SHA256 over ``<timestamp>.<raw body>``.

Headers: ``X-Payment-Timestamp`` (unix seconds) and ``X-Payment-Signature: v1=<hex>`` (several
comma-separated ``v1=`` values are accepted, so a secret can be rotated without downtime).
Signing the timestamp with the body means an old delivery cannot be replayed under a fresh timestamp;
the tolerance window refuses old ones; the payment key makes a replay inside the window harmless.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from common.errors import CodedError

from .models import BillingCode

TIMESTAMP_HEADER = "X-Payment-Timestamp"
SIGNATURE_HEADER = "X-Payment-Signature"


class SignatureError(CodedError):
    """The delivery is not authentic or not fresh (401); ``code`` is one of the ``payment.signature_*`` codes."""

    default_status = 401


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1=`` signature of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers a provider (or a test) sends with ``body``."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance_s: int) -> None:
    """Raise ``SignatureError`` unless a ``v1`` signature matches and the timestamp is within the window."""
    raw_ts = headers.get(TIMESTAMP_HEADER, "")
    raw_sig = headers.get(SIGNATURE_HEADER, "")
    if not raw_ts or not raw_sig:
        raise SignatureError(
            BillingCode.SIGNATURE_MISSING, f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required"
        )
    try:
        timestamp = int(raw_ts)
    except ValueError as e:
        raise SignatureError(BillingCode.SIGNATURE_INVALID, "malformed timestamp") from e
    expected = sign(secret, timestamp, body)
    candidates = [part.strip() for part in raw_sig.split(",")]
    # compare every candidate (constant time each) so timing says nothing about which one matched
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise SignatureError(BillingCode.SIGNATURE_INVALID, "the signature does not match")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            BillingCode.SIGNATURE_EXPIRED, "the signed timestamp is outside the tolerance window"
        )
