"""Verification of gateway-issued access tokens (JWT) against the gateway's JWKS; the caller's identity."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from .errors import CodedError
from .http import Problem
from .logging import get_logger

log = get_logger(__name__)

ALGORITHMS = ["EdDSA", "ES256"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: uuid.UUID
    token_id: str
    expires_at: int
    email: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    token: str = ""


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
        """Verify signature, ``kid``, expiry, audience and issuer; raise ``TokenInvalid`` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise TokenInvalid("auth.invalid_token", "malformed token") from e
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise TokenInvalid("auth.invalid_token", f"algorithm {alg!r} is not accepted")
        if not isinstance(kid, str):
            raise TokenInvalid("auth.invalid_token", "token has no key id")
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        key = self._keys.get(kid)
        if key is None:
            raise TokenInvalid("auth.invalid_token", "unknown key id")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise TokenInvalid("auth.token_expired", "the access token has expired") from e
        except jwt.PyJWTError as e:
            raise TokenInvalid("auth.invalid_token", f"invalid token: {e}") from e
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as e:
            raise TokenInvalid("auth.invalid_token", "bad subject") from e
        return Principal(
            user_id=user_id,
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            email=str(claims.get("email", "")),
            claims=claims,
            token=token,
        )


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
