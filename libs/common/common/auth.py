"""Verification of gateway-issued access tokens (JWT) against the gateway's JWKS; the caller's identity."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp
import jwt
from aiohttp import web

from .errors import CodedError, NotFound
from .http import Problem
from .logging import get_logger

log = get_logger(__name__)

ALGORITHMS = ["EdDSA", "ES256"]
#: the JOSE header ``typ`` of an access token (RFC 9068 §2.1); verifiers refuse any other
ACCESS_TOKEN_TYP = "at+jwt"
_ACCESS_TYPS = frozenset({ACCESS_TOKEN_TYP, "application/" + ACCESS_TOKEN_TYP})
_REQUIRED = ("exp", "iat", "sub", "jti", "aud", "iss")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: uuid.UUID
    token_id: str
    expires_at: int
    email: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    token: str = ""


class Owned(Protocol):
    """A record some user owns."""

    @property
    def owner_id(self) -> uuid.UUID: ...


R = TypeVar("R", bound=Owned)


def owned(record: R | None, user: Principal, resource: str) -> R:
    """``record`` when ``user`` owns it; else 404 ``<resource>.not_found`` (another user's is as missing as none:
    ids are not probeable)."""
    if record is None or record.owner_id != user.user_id:
        raise NotFound(resource)
    return record


class TokenInvalid(CodedError):
    """The token cannot be trusted (401; ``code`` is ``auth.invalid_token`` or ``auth.token_expired``)."""

    default_status = 401


class JWKSVerifier:
    """Verifies EdDSA/ES256 JWTs by ``kid`` from a JWKS URL (cached, refreshed on an unknown kid) or static keys."""

    def __init__(
        self,
        *,
        audience: str,
        issuer: str,
        jwks_url: str = "",
        jwks: dict[str, Any] | None = None,
        cache_ttl_s: float = 300.0,
        min_refresh_interval_s: float = 5.0,
        leeway_s: float = 5.0,
    ) -> None:
        self.audience, self.issuer, self.jwks_url = audience, issuer, jwks_url
        self.cache_ttl_s, self.min_refresh_interval_s, self.leeway_s = (
            cache_ttl_s,
            min_refresh_interval_s,
            leeway_s,
        )
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        if jwks is not None:
            self.load(jwks)
            self._fetched_at = float("inf")

    def load(self, jwks: dict[str, Any]) -> None:
        """Replace the key set from a JWKS document."""
        keys: dict[str, jwt.PyJWK] = {}
        for k in jwks.get("keys", []):
            kid = k.get("kid")
            if not kid:
                continue
            try:
                keys[kid] = jwt.PyJWK(k)
            except jwt.PyJWTError as exc:
                log.warning("auth.jwks_bad_key", kid=kid, error=str(exc))
        self._keys = keys

    async def _refresh(self, *, force: bool) -> None:
        if not self.jwks_url:
            return
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if (force and age < self.min_refresh_interval_s) or (not force and age < self.cache_ttl_s):
                return
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
            try:
                async with self._session.get(self.jwks_url) as resp:
                    resp.raise_for_status()
                    self.load(json.loads(await resp.read()))
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("auth.jwks_fetch_failed", url=self.jwks_url, error=repr(exc))
            finally:
                self._fetched_at = time.monotonic()

    async def close(self) -> None:
        """Close the HTTP session used to fetch keys."""
        if self._session is not None:
            await self._session.close()

    async def verify(self, token: str) -> Principal:
        """Verify ``typ``, signature, ``kid``, claim types, expiry, audience and issuer; raise ``TokenInvalid``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenInvalid("auth.invalid_token", "malformed token") from e
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if alg not in ALGORITHMS:
            raise TokenInvalid("auth.invalid_token", f"algorithm {alg!r} is not accepted")
        if not isinstance(kid, str):
            raise TokenInvalid("auth.invalid_token", "token has no key id")
        # RFC 9068 §4: only a token typed as an access token is one (not an ID token, not a refresh token)
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TYPS:
            raise TokenInvalid("auth.invalid_token", "not an access token (typ must be at+jwt)")
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        key = self._keys.get(kid)
        if key is None:
            raise TokenInvalid("auth.invalid_token", "unknown key id")
        try:
            # signature only: PyJWT coerces claim types (``"exp": "1999999999"`` passes ``int()``), so the
            # claims are type-checked below before their values are compared
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.PyJWTError as e:
            raise TokenInvalid("auth.invalid_token", f"invalid token: {e}") from e
        user_id = self._check_claims(claims)
        return Principal(
            user_id=user_id,
            token_id=claims["jti"],
            expires_at=int(claims["exp"]),
            email=claims.get("email", ""),
            claims=claims,
            token=token,
        )

    def _check_claims(self, claims: dict[str, Any]) -> uuid.UUID:
        """Strict types and exact values: the subject's id, or ``TokenInvalid`` / ``auth.token_expired``."""
        _check_claim_types(claims)
        user_id = _subject(claims)
        # exactly the strings this verifier trusts (no audience lists, no other types)
        if claims["aud"] != self.audience or not isinstance(claims["aud"], str):
            raise TokenInvalid("auth.invalid_token", "wrong audience")
        if claims["iss"] != self.issuer or not isinstance(claims["iss"], str):
            raise TokenInvalid("auth.invalid_token", "wrong issuer")
        now = time.time()
        if claims["exp"] <= now - self.leeway_s:
            raise TokenInvalid("auth.token_expired", "the access token has expired")
        if claims.get("nbf", 0) > now + self.leeway_s or claims["iat"] > now + self.leeway_s:
            raise TokenInvalid("auth.invalid_token", "the token is not valid yet")
        return user_id


def _check_claim_types(claims: dict[str, Any]) -> None:
    missing = [name for name in _REQUIRED if name not in claims]
    if missing:
        raise TokenInvalid("auth.invalid_token", f"token lacks {', '.join(missing)}")
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name, 0)
        # bool is an int in Python, never a NumericDate in JSON
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TokenInvalid("auth.invalid_token", f"{name} must be a number")
    for name in ("jti", "sub", "email", "sid"):
        if not isinstance(claims.get(name, ""), str):
            raise TokenInvalid("auth.invalid_token", f"{name} must be a string")
    if not claims["jti"]:
        raise TokenInvalid("auth.invalid_token", "jti is empty")


def _subject(claims: dict[str, Any]) -> uuid.UUID:
    try:
        user_id = uuid.UUID(claims["sub"])
    except ValueError as e:
        raise TokenInvalid("auth.invalid_token", "bad subject") from e
    if str(user_id) != claims["sub"]:  # only the canonical form the gateway writes
        raise TokenInvalid("auth.invalid_token", "bad subject")
    return user_id


VERIFIER: web.AppKey[JWKSVerifier] = web.AppKey("jwks_verifier", JWKSVerifier)
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def bearer_token(request: web.Request) -> str | None:
    """The bearer token of the Authorization header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def require_user(request: web.Request) -> Principal:
    """The authenticated caller, or a 401 problem (``auth.missing_token``, ``auth.invalid_token``, ...)."""
    cached: Principal | None = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    token = bearer_token(request)
    if token is None:
        raise Problem(
            401,
            "auth.missing_token",
            "a Bearer access token is required",
            headers={"WWW-Authenticate": 'Bearer realm="reelforge"'},
        )
    try:
        principal = await request.app[VERIFIER].verify(token)
    except TokenInvalid as e:
        e.headers["WWW-Authenticate"] = 'Bearer realm="reelforge", error="invalid_token"'
        raise
    request[PRINCIPAL] = principal
    return principal
