"""Revocation checks shared by all replicas (Postgres) behind a short in-process cache, and the gateway's verifier."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import jwt

from common.auth import JWKSVerifier, Principal, TokenInvalid

from .keys import KeyRing

RevokedLookup = Callable[[str, str], Awaitable[bool]]


class RevocationCache:
    """``is_revoked(jti, sid)`` with a TTL on "not revoked" answers; a revocation, once seen, is cached for good.

    Another replica's logout reaches this one within ``ttl_s``; this replica's own revocations apply at once.
    """

    def __init__(self, lookup: RevokedLookup, *, ttl_s: float = 5.0, max_entries: int = 100_000) -> None:
        self._lookup, self.ttl_s, self.max_entries = lookup, ttl_s, max_entries
        self._checked: OrderedDict[str, float] = OrderedDict()  # jti -> when it was last found not revoked
        self._revoked_tokens: OrderedDict[str, None] = OrderedDict()
        self._revoked_families: OrderedDict[str, None] = OrderedDict()

    def _remember(self, d: OrderedDict[str, Any], key: str, value: Any) -> None:
        d[key] = value
        d.move_to_end(key)
        while len(d) > self.max_entries:
            d.popitem(last=False)

    def note_token_revoked(self, jti: str) -> None:
        """This replica revoked ``jti``."""
        self._remember(self._revoked_tokens, jti, None)
        self._checked.pop(jti, None)

    def note_family_revoked(self, sid: str) -> None:
        """This replica revoked session ``sid``."""
        self._remember(self._revoked_families, sid, None)
        # tokens of that session may sit in the "not revoked" cache under their jti
        self._checked.clear()

    async def is_revoked(self, jti: str, sid: str) -> bool:
        """Whether the token or its session is revoked, as of at most ``ttl_s`` ago."""
        if jti in self._revoked_tokens or (sid and sid in self._revoked_families):
            return True
        checked = self._checked.get(jti)
        now = time.monotonic()
        if checked is not None and now - checked < self.ttl_s:
            return False
        if await self._lookup(jti, sid):
            self._remember(self._revoked_tokens, jti, None)
            self._checked.pop(jti, None)
            return True
        self._remember(self._checked, jti, now)
        return False


class GatewayVerifier(JWKSVerifier):
    """``common.auth.JWKSVerifier`` over the gateway's own key ring, plus the revocation check."""

    def __init__(
        self, *, audience: str, issuer: str, keys: KeyRing, min_reload_interval_s: float = 1.0
    ) -> None:
        self._trusted: frozenset[str] = frozenset()
        super().__init__(audience=audience, issuer=issuer, jwks=keys.jwks())
        self.keys = keys
        self.min_reload_interval_s = min_reload_interval_s
        self.revocations: RevocationCache | None = None

    def load(self, jwks: dict[str, Any]) -> None:
        """Trust exactly the keys of ``jwks``."""
        super().load(jwks)
        self._trusted = frozenset(k["kid"] for k in jwks.get("keys", []) if k.get("kid"))

    def reload_keys(self) -> None:
        """Re-read the keys directory and trust exactly its keys."""
        self.keys.load()
        self.load(self.keys.jwks())

    async def verify(self, token: str) -> Principal:
        """Signature, kid, exp, aud, iss (the shared logic), then the token and its session not revoked."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            kid = None
        # another replica may have rotated to a key this one has not read yet
        if (
            isinstance(kid, str)
            and kid not in self.keys.kids
            and (time.monotonic() - self.keys.loaded_at >= self.min_reload_interval_s)
        ):
            self.reload_keys()
        principal = await super().verify(token)
        if self.revocations is not None and await self.revocations.is_revoked(
            principal.token_id, str(principal.claims.get("sid", ""))
        ):
            raise TokenInvalid("auth.token_revoked", "this token was revoked; log in again")
        return principal
