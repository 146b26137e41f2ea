"""Personal API keys: created (shown once), listed, revoked; hashed at rest; scoped; checked on every request.

A key is ``rf_live_<prefix>_<secret>``: ``prefix`` (12 hex) names the key in listings, ``secret`` is 256 random
bits. Only the SHA-256 of the whole key is stored. Upstream services verify gateway-signed JWTs only, so a request
made with a key is forwarded with a short-lived access token minted for the key's owner (claims ``key_id`` and
``scope`` added); the gateway itself never accepts such a minted token from a client.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections import OrderedDict
from enum import StrEnum

from common.auth import Principal, TokenInvalid
from common.errors import NotFound
from common.http import Problem
from common.logging import get_logger

from . import store
from .config import GatewaySettings
from .keys import KeyRing, access_claims

log = get_logger(__name__)

KEY_PREFIX = "rf_live_"
_KEY = re.compile(r"^rf_live_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
#: methods a ``read`` key may use
READ_METHODS = frozenset({"GET", "HEAD"})
#: the routes that only read although their method is not GET/HEAD, so a ``read`` key may use them too
#: (``{id}`` is any one path segment). Minting a signed playback link writes nothing: streaming signs a short-lived
#: token for a video the caller may already read (docs/gateway.md, "API keys").
READ_ONLY_ROUTES: frozenset[tuple[str, str]] = frozenset({("POST", "/api/v1/videos/{id}/playback")})
#: the claim that marks a principal (and the token minted for it) as an API key's
KEY_CLAIM = "key_id"


class KeyScope(StrEnum):
    """What a key may do: ``read`` = GET/HEAD and ``READ_ONLY_ROUTES``, ``full`` = everything its owner may (except
    making keys)."""

    READ = "read"
    FULL = "full"


def looks_like_api_key(token: str) -> bool:
    """Whether a bearer token is meant as an API key (rather than a JWT)."""
    return token.startswith(KEY_PREFIX)


def hash_api_key(key: str) -> bytes:
    """The stored form of a key: SHA-256 (256 random bits need no slow hash; docs/gateway.md, "API keys")."""
    return hashlib.sha256(key.encode()).digest()


def key_id_of(principal: Principal) -> uuid.UUID | None:
    """The API key a principal authenticated with, or None for a login session's access token."""
    value = principal.claims.get(KEY_CLAIM)
    return uuid.UUID(value) if isinstance(value, str) else None


def _template_matches(template: str, path: str) -> bool:
    want, got = template.split("/"), path.split("/")
    return len(want) == len(got) and all(
        w == g or (w == "{id}" and g not in ("", ".", "..")) for w, g in zip(want, got, strict=True)
    )


def only_reads(method: str, path: str) -> bool:
    """Whether a request only reads: GET/HEAD, or one of ``READ_ONLY_ROUTES`` (matched segment by segment)."""
    return method in READ_METHODS or any(
        method == m and _template_matches(template, path) for m, template in READ_ONLY_ROUTES
    )


def refuse_read_only(principal: Principal, method: str, path: str) -> None:
    """403 ``auth.insufficient_scope`` when a ``read`` key attempts a request that does not only read."""
    if principal.claims.get("scope") == KeyScope.READ and not only_reads(method, path):
        raise Problem(
            403,
            "auth.insufficient_scope",
            "this API key is read-only (GET, HEAD and making playback links); use a key with scope full",
            headers={"WWW-Authenticate": 'Bearer realm="reelforge", error="insufficient_scope"'},
        )


def require_session(principal: Principal) -> None:
    """403 ``auth.session_required`` for an API key: keys are made with a password login, never with a key."""
    if key_id_of(principal) is not None:
        raise Problem(
            403,
            "auth.session_required",
            "API keys are created with a password login (a leaked key must not be able to mint more)",
        )


class ApiKeys:
    """Key management on the gateway's schema, and authentication of a presented key."""

    def __init__(self, *, pool: store.Pool, keys: KeyRing, settings: GatewaySettings) -> None:
        self.pool, self.keys, self.settings = pool, keys, settings
        # key id -> (minted access token, its principal): re-signed when half its life is gone
        self._minted: OrderedDict[uuid.UUID, Principal] = OrderedDict()

    async def create(self, *, user_id: uuid.UUID, name: str, scope: KeyScope) -> tuple[store.ApiKey, str]:
        """A new key and its full text (shown once: only its hash is kept); 409 past the per-user cap."""
        prefix = secrets.token_hex(6)
        secret = KEY_PREFIX + prefix + "_" + secrets.token_urlsafe(32)
        async with store.transaction(self.pool) as conn:
            key = await store.insert_api_key(
                conn,
                key_id=uuid.uuid4(),
                user_id=user_id,
                name=name.strip(),
                prefix=prefix,
                key_hash=hash_api_key(secret),
                scope=str(scope),
                max_active=self.settings.api_keys_per_user,
            )
        if key is None:
            raise Problem(
                409,
                "api_key.limit_reached",
                f"at most {self.settings.api_keys_per_user} active keys per account; revoke one first",
            )
        log.info("api_key.created", user_id=str(user_id), key_id=str(key.id), scope=key.scope)
        return key, secret

    async def list(self, *, user_id: uuid.UUID) -> list[store.ApiKey]:
        """The user's active keys, newest first."""
        return await store.list_api_keys(self.pool, user_id=user_id)

    async def revoke(self, *, user_id: uuid.UUID, key_id: uuid.UUID) -> None:
        """Revoke one of the user's keys: refused by every replica from the next request on (no cache)."""
        if not await store.revoke_api_key(self.pool, user_id=user_id, key_id=key_id):
            raise NotFound("api_key", "no such API key")
        self._minted.pop(key_id, None)
        log.info("api_key.revoked", user_id=str(user_id), key_id=str(key_id))

    async def authenticate(self, token: str) -> Principal:
        """The principal of a presented key (checked in Postgres on every call), or ``TokenInvalid`` (401)."""
        if not _KEY.match(token):
            raise TokenInvalid("auth.invalid_api_key", "malformed API key")
        key = await store.api_key_by_hash(
            self.pool, key_hash=hash_api_key(token), touch_after_s=self.settings.api_key_touch_interval_s
        )
        if key is None:
            raise TokenInvalid("auth.invalid_api_key", "unknown API key")
        if key.revoked_at is not None:
            self._minted.pop(key.id, None)
            raise TokenInvalid("auth.api_key_revoked", "this API key was revoked")
        return self._principal(key)

    async def is_revoked(self, principal: Principal) -> bool:
        """Whether the key behind ``principal`` was revoked since (open WebSockets are checked with it)."""
        key_id = key_id_of(principal)
        return key_id is not None and await store.api_key_revoked(self.pool, key_id=key_id)

    def _principal(self, key: store.ApiKey) -> Principal:
        ttl = self.settings.api_key_token_ttl_s
        cached = self._minted.get(key.id)
        if cached is not None and cached.expires_at - time.time() > ttl / 2:
            self._minted.move_to_end(key.id)
            return cached
        claims = access_claims(
            self.settings,
            user_id=key.user_id,
            email=key.email,
            ttl_s=ttl,
            key_id=str(key.id),
            scope=key.scope,
        )
        principal = Principal(
            user_id=key.user_id,
            token_id=claims["jti"],
            expires_at=claims["exp"],
            email=key.email,
            claims=claims,
            token=self.keys.sign(claims),
        )
        self._minted[key.id] = principal
        while len(self._minted) > 10_000:
            self._minted.popitem(last=False)
        return principal


def refuse_minted(principal: Principal) -> None:
    """A token minted for an API key is for upstream services only: a client presenting one is refused."""
    if key_id_of(principal) is not None:
        log.warning("auth.minted_token_presented", jti=principal.token_id)
        raise TokenInvalid("auth.invalid_token", "this token is not accepted from clients")
