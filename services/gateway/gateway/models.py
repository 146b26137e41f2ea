"""The gateway's API bodies (its OpenAPI document is generated from these) and its error codes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from common.events.jobs import JobError, JobSubject
from common.jobs import Job, JobStatus
from common.views import view_of


class GatewayCode(StrEnum):
    """Every error code the gateway answers with (besides ``common.errors.CommonCode``)."""

    EMAIL_TAKEN = "auth.email_taken"
    INVALID_CREDENTIALS = "auth.invalid_credentials"
    INVALID_REFRESH_TOKEN = "auth.invalid_refresh_token"
    REFRESH_EXPIRED = "auth.refresh_expired"
    REFRESH_REUSED = "auth.refresh_reused"
    TOKEN_REVOKED = "auth.token_revoked"
    INVALID_API_KEY = "auth.invalid_api_key"
    API_KEY_REVOKED = "auth.api_key_revoked"
    INSUFFICIENT_SCOPE = "auth.insufficient_scope"
    SESSION_REQUIRED = "auth.session_required"
    API_KEY_NOT_FOUND = "api_key.not_found"
    API_KEY_LIMIT = "api_key.limit_reached"
    USER_NOT_FOUND = "user.not_found"
    INVALID_EMAIL = "validation.email"
    PASSWORD_TOO_SHORT = "validation.password_too_short"
    PASSWORD_TOO_LONG = "validation.password_too_long"
    REFRESH_TOKEN_REQUIRED = "validation.refresh_token"
    INVALID_STATUS = "validation.status"
    JOB_NOT_FOUND = "job.not_found"
    JOB_NOT_CANCELABLE = "job.not_cancelable"
    RATE_LIMITED = "rate_limited"
    BAD_PATH = "request.bad_path"
    BAD_GATEWAY = "upstream.bad_gateway"
    UPSTREAM_UNAVAILABLE = "upstream.unavailable"
    UPSTREAM_TIMEOUT = "upstream.timeout"


class Credentials(msgspec.Struct, forbid_unknown_fields=False):
    """Register/login body."""

    email: Annotated[str, msgspec.Meta(description="an email address")]
    password: Annotated[str, msgspec.Meta(description="10 to 1024 characters")]


class RefreshBody(msgspec.Struct, forbid_unknown_fields=False):
    """Refresh/logout body (logout: optional, to revoke the refresh token's session too)."""

    refresh_token: str = ""


class UserView(msgspec.Struct, kw_only=True):
    """An account (never its password hash)."""

    id: uuid.UUID
    email: str
    created_at: datetime


class TokenPairView(msgspec.Struct, kw_only=True):
    """An access token (``expires_in`` seconds) and the refresh token that renews it (spent on use)."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class JwksView(msgspec.Struct, kw_only=True):
    """The public keys that verify access tokens (RFC 7517)."""

    keys: list[dict[str, Any]]


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new API key: a name to recognise it by and what it may do."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="e.g. the script using it")]
    scope: Annotated[
        Literal["read", "full"], msgspec.Meta(description="read: GET/HEAD only; full: everything but keys")
    ] = "read"


class ApiKeyView(msgspec.Struct, kw_only=True):
    """An API key as listed (never the key itself: only its public prefix)."""

    id: uuid.UUID
    name: str
    prefix: Annotated[str, msgspec.Meta(description="the key starts with rf_live_<prefix>_")]
    scope: Literal["read", "full"]
    created_at: datetime
    last_used_at: Annotated[datetime | None, msgspec.Meta(description="to the minute")]


class ApiKeyCreatedView(ApiKeyView, kw_only=True):
    """A key just created: ``key`` is shown this once (only its hash is stored)."""

    key: Annotated[str, msgspec.Meta(description="Authorization: Bearer <key>; store it now")]


class ApiKeyList(msgspec.Struct, kw_only=True):
    """The caller's active keys, newest first (at most ``API_KEYS_PER_USER``, so unpaged)."""

    items: list[ApiKeyView]


class JobsQuery(msgspec.Struct):
    """Filters of GET /jobs."""

    status: Annotated[
        str, msgspec.Meta(description="comma-separated: queued,running,succeeded,failed,canceled")
    ] = ""
    kind: Annotated[str, msgspec.Meta(description="comma-separated job kinds")] = ""


class SocketQuery(msgspec.Struct):
    """Query of the WebSocket."""

    access_token: Annotated[
        str, msgspec.Meta(description="the access token, for clients that cannot set headers")
    ] = ""


class JobView(msgspec.Struct, kw_only=True):
    """A job (ARCHITECTURE §4); ``seq`` grows with every change: a client ignores a pushed update with a lower
    seq unless it ends the job, and never changes an ended job."""

    id: uuid.UUID
    kind: str
    owner_id: uuid.UUID
    status: JobStatus
    progress: Annotated[float, msgspec.Meta(ge=0, le=100)]
    stage: str
    error: JobError | None
    result: dict[str, Any] | None
    cancel_requested: bool
    seq: int
    created_at: datetime | None
    updated_at: datetime | None
    subject: Annotated[
        JobSubject | None,
        msgspec.Meta(
            description="what the job works on: {kind: video, id, title} (null when it has no one subject)"
        ),
    ] = None

    @classmethod
    def of(cls, job: Job) -> JobView:
        """The job as the API shows it."""
        return view_of(cls, job, progress=round(job.progress, 2), error=job.error or None)
