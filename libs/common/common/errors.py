"""The one error a user can cause: a stable code, a message a user may read, the HTTP status it answers with.

Raise a ``CodedError`` (or a subclass that fixes the status, e.g. ``TokenInvalid``) anywhere: the request
middleware (``common.http``) renders it as ``application/problem+json``, the job runner records its code and
message as the job's error. Codes are ``<area>.<reason>``; a missing resource is always ``<resource>.not_found``
(``NotFound("video")``), and an unknown route is the bare ``not_found``. Each service lists its codes in a
``StrEnum`` in its ``models.py`` (``tests/architecture/test_error_codes.py`` checks that every code raised in the
source is listed there or here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar


class CommonCode(StrEnum):
    """The codes ``libs/common`` itself answers with (every service can send these)."""

    NOT_FOUND = "not_found"  # no such route (a missing resource is <resource>.not_found)
    METHOD_NOT_ALLOWED = "method_not_allowed"
    BAD_REQUEST = "request.bad"
    TOO_LARGE = "request.too_large"
    UNSUPPORTED_MEDIA_TYPE = "request.unsupported_media_type"
    MALFORMED_JSON = "request.malformed_json"
    MALFORMED_MULTIPART = "request.malformed_multipart"
    INVALID_CHARACTERS = "request.invalid_characters"
    VALIDATION = "validation.invalid"
    MISSING_TOKEN = "auth.missing_token"
    INVALID_TOKEN = "auth.invalid_token"
    TOKEN_EXPIRED = "auth.token_expired"
    INTERNAL = "internal.error"
    UNAVAILABLE = "service.unavailable"  # 503 with Retry-After: a dependency it cannot serve without is down
    IDEMPOTENCY_KEY_INVALID = "idempotency.key_invalid"
    IDEMPOTENCY_KEY_REUSED = "idempotency.key_reused"  # the key was used with another request
    IDEMPOTENCY_IN_PROGRESS = "idempotency.in_progress"  # the first request with the key is still running


#: an absolute filesystem path of two or more segments (``/tmp/x/y``, ``/srv/app/var/...``): never shown to users
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.])/(?:[\w.\-]+/)+[\w.\-]*")


#: what libraries add to their messages that means nothing to a user: errno prefixes, exception class names in
#: parentheses, quoted paths (after they became ``<file>``), yt-dlp's bug-report boilerplate
_LIBRARY_NOISE = (
    re.compile(r"\[Errno -?\d+\]\s*"),
    re.compile(r"\s*\((?:[A-Za-z_][\w.]*(?:Error|Exception))\)"),
    re.compile(r":\s*'?<file>'?"),
    re.compile(r"[;.]?\s*(?:please )?report this issue on .*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"[;.]?\s*Confirm you are on the latest version.*$", re.IGNORECASE | re.DOTALL),
)


def public_message(text: str) -> str:
    """``text`` as a user may read it: without the internal filesystem paths library errors quote
    (``[Errno 1] ...: '/tmp/…'``), errno prefixes, exception class names or a library's plea for bug reports.

    A safety net for what reaches users (job errors, stream errors): each service maps library errors to plain
    messages where it catches them and logs the details."""
    text = _ABSOLUTE_PATH.sub("<file>", text)
    for noise in _LIBRARY_NOISE:
        text = noise.sub("", text)
    return text.strip()


class CodedError(Exception):
    """An error a user can cause; ``status`` is the HTTP status it answers with (subclasses fix a default)."""

    default_status: ClassVar[int] = 422

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message
        self.status = status if status is not None else self.default_status
        self.headers = dict(headers or {})
        self.extra = extra


class NotFound(CodedError):
    """``<resource>.not_found`` (404): a missing resource, and another user's (ids are not probeable)."""

    default_status = 404

    def __init__(self, resource: str, message: str = "") -> None:
        super().__init__(f"{resource}.not_found", message or f"no such {resource}")


def not_found_code(resource: str) -> str:
    """The one shape of a not-found code: ``<resource>.not_found``."""
    return f"{resource}.not_found"
