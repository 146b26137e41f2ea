"""The payment provider's webhook authentication: HMAC-SHA256 over ``<timestamp>.<raw body>``.

Headers: ``X-Payment-Timestamp`` (unix seconds) and ``X-Payment-Signature: v1=<hex>`` (several
comma-separated ``v1=`` values are accepted, so a secret can be rotated without downtime).
Signing the timestamp with the body means an old delivery cannot be replayed under a fresh timestamp;
the tolerance window refuses old ones; the payment key makes a replay inside the window harmless.
"""

from __future__ import annotations

from collections.abc import Mapping

from common import signing
from common.errors import CodedError

from .models import BillingCode

TIMESTAMP_HEADER = "X-Payment-Timestamp"
SIGNATURE_HEADER = "X-Payment-Signature"


class SignatureError(CodedError):
    """The delivery is not authentic or not fresh (401); ``code`` is one of the ``payment.signature_*`` codes."""

    default_status = 401


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1=`` signature of ``body`` sent at ``timestamp``."""
    return f"v1={signing.mac(secret, timestamp, body)}"


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
    if not signing.matches_any(expected, raw_sig.split(",")):
        raise SignatureError(BillingCode.SIGNATURE_INVALID, "the signature does not match")
    if not signing.is_fresh(timestamp, now=now, tolerance_s=tolerance_s):
        raise SignatureError(
            BillingCode.SIGNATURE_EXPIRED, "the signed timestamp is outside the tolerance window"
        )
