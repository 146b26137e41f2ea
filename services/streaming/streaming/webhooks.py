"""Webhooks, the domain: which events, the body, the signature, the retry schedule, which URLs. No I/O."""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from common import signing
from common.addresses import ip_literal, is_forbidden, is_local_name
from common.errors import CodedError, public_message
from common.events.base import Event
from common.events.ingest import VideoDeleted
from common.events.streaming import StreamFailed, StreamPlayable, StreamReady

SIGNATURE_HEADER = "Reelforge-Signature"
EVENT_ID_HEADER = "Reelforge-Event-Id"
EVENT_TYPE_HEADER = "Reelforge-Event-Type"
USER_AGENT = "Reelforge-Webhooks/1"
#: a host name as DNS knows them, in its ASCII (IDNA) form: labels of letters, digits, ``-`` and ``_``
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?", re.IGNORECASE)

#: public event name → the bus event announcing it
EVENTS: Mapping[str, type[Event]] = {
    "stream.playable": StreamPlayable,
    "stream.ready": StreamReady,
    "stream.failed": StreamFailed,
    "video.deleted": VideoDeleted,
}
BUS_EVENTS: tuple[type[Event], ...] = tuple(EVENTS.values())
_PUBLIC_NAME: Mapping[str, str] = {cls.event_type(): name for name, cls in EVENTS.items()}


class WebhookError(CodedError):
    """A webhook registration the user must fix (422; ``code`` is one of the ``webhook.*`` codes)."""


def public_event_name(event: Event) -> str | None:
    """``stream.ready`` for a ``stream.ready.v1`` bus event; None for events webhooks do not carry."""
    return _PUBLIC_NAME.get(event.type)


def validate_events(events: list[str]) -> list[str]:
    """The distinct, known event names (order kept); ``webhook.invalid_events`` otherwise."""
    unknown = sorted({e for e in events if e not in EVENTS})
    if unknown or not events:
        raise WebhookError(
            "webhook.invalid_events",
            f"unknown event(s) {', '.join(unknown)}; choose from {', '.join(EVENTS)}"
            if unknown
            else f"subscribe to at least one of {', '.join(EVENTS)}",
        )
    return list(dict.fromkeys(events))


def new_secret() -> str:
    """A fresh signing secret (shown to the user once)."""
    return "whsec_" + secrets.token_urlsafe(32)


def event_data(event: Event) -> dict[str, Any]:
    """The ``data`` object of a webhook body."""
    if isinstance(event, StreamReady):
        return {
            "video_id": str(event.video_id),
            "status": "ready",
            "renditions": list(event.renditions),
            "duration_s": event.duration_s,
        }
    if isinstance(event, StreamPlayable):
        return {"video_id": str(event.video_id), "status": "playable", "renditions": list(event.renditions)}
    if isinstance(event, StreamFailed):
        return {
            "video_id": str(event.video_id),
            "status": "error",
            # subscribers are users: what a library said about our files stays in the log (as in StreamView)
            "error": {"code": event.code, "message": public_message(event.message)},
        }
    if isinstance(event, VideoDeleted):
        return {"video_id": str(event.video_id), "status": "deleted"}
    raise ValueError(f"webhooks do not carry {event.type}")


def build_body(event: Event) -> str:
    """The exact JSON body POSTed for ``event`` (stored once, so every retry sends the same bytes)."""
    name = public_event_name(event)
    if name is None:
        raise ValueError(f"webhooks do not carry {event.type}")
    doc = {
        "id": str(event.id),
        "type": name,
        "created_at": event.occurred_at.isoformat(),
        "data": event_data(event),
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def sign(secret: str, body: str, *, timestamp: int | None = None) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>``: the ``Reelforge-Signature`` header."""
    return signing.header(secret, body, timestamp=int(time.time()) if timestamp is None else timestamp)


def verify_signature(
    secret: str, body: str, header: str, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: recompute the HMAC and refuse stale timestamps (replays)."""
    return signing.verify_header(
        secret, body, header, now=time.time() if now is None else now, tolerance_s=tolerance_s
    )


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter, for a bounded window after the event."""

    base_s: float
    max_delay_s: float
    window_s: float

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): base·2^(n-1), capped, ±jitter.

        "Equal jitter": half the delay is fixed and half random, so retries spread out (no thundering herd
        after an outage) yet never come back sooner than half the nominal delay.
        """
        nominal = float(min(self.max_delay_s, self.base_s * (2 ** max(0, attempt - 1))))
        jitter: float = (rng or random).uniform(0, nominal / 2)
        return nominal / 2 + jitter

    def schedule(self) -> list[float]:
        """The nominal (jitter-free) delays until the window closes (documentation, tests)."""
        out: list[float] = []
        total, n = 0.0, 1
        while True:
            d = min(self.max_delay_s, self.base_s * (2 ** (n - 1)))
            if total + d > self.window_s:
                return out
            out.append(d)
            total += d
            n += 1


# -- where webhooks may go ------------------------------------------------------------------------------------


def _is_host_name(host: str) -> bool:
    """Whether ``host`` is a name DNS could answer for (letters, digits, ``-``/``_``, dots; IDNA for the rest)."""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOST_NAME.fullmatch(ascii_host) is not None


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL when it is an acceptable target (http(s), a host, no private IP literal); ``webhook.invalid_url``."""
    url = url.strip()
    if len(url) > 2048:
        raise WebhookError("webhook.invalid_url", "the URL is longer than 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise WebhookError("webhook.invalid_url", f"not a valid URL: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise WebhookError("webhook.invalid_url", "the URL must be http:// or https://")
    host = parts.hostname or ""
    if not host:
        raise WebhookError("webhook.invalid_url", "the URL has no host")
    if port == 0:
        raise WebhookError("webhook.invalid_url", "port 0 is not a valid target")
    ip = ip_literal(host)
    if ip is None and not _is_host_name(host):
        raise WebhookError("webhook.invalid_url", "the URL's host is not a valid host name")
    if ip is not None and not allow_private and is_forbidden(ip):
        raise WebhookError(
            "webhook.forbidden_address",
            f"{host} is a loopback/private/link-local address; webhooks go to the internet",
        )
    if ip is None and not allow_private and is_local_name(host):
        raise WebhookError("webhook.forbidden_address", f"{host} is not a public host")
    return url
