"""Revocation checks shared by all replicas (Postgres) behind a short in-process cache, and the gateway's verifier."""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import jwt

from common.auth import JWKSVerifier, Principal, TokenInvalid

from .apikeys import ApiKeys, looks_like_api_key, refuse_minted
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
        # one lookup per (jti, sid) at a time: when an entry expires under load, every request in flight for
        # that token would otherwise query Postgres at once
        self._inflight: dict[tuple[str, str], asyncio.Task[bool]] = {}

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
        if checked is not None and time.monotonic() - checked < self.ttl_s:
            return False
        key = (jti, sid)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._look_up(jti, sid))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._lookup_done(key, t))
        # shielded: a caller that goes away (client disconnect) must not cancel the others' answer
        return await asyncio.shield(task)

    async def _look_up(self, jti: str, sid: str) -> bool:
        started = time.monotonic()  # the answer is as old as the moment we asked
        if await self._lookup(jti, sid):
            self._remember(self._revoked_tokens, jti, None)
            self._checked.pop(jti, None)
            return True
        self._remember(self._checked, jti, started)
        return False

    def _lookup_done(self, key: tuple[str, str], task: asyncio.Task[bool]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, so a failure nobody awaited any more is not reported as lost


class VerifiedTokens:
    """Tokens whose signature and claims passed verification, by their exact text (a bounded LRU).

    An entry is good until the token's ``exp`` or ``ttl_s`` after it was verified, whichever comes first; the
    owner clears it whenever the trusted keys change. Keyed by the whole compact JWS, so a token that differs
    in any byte (a forged signature, edited claims) is never a hit and goes through full verification.
    """

    def __init__(self, *, ttl_s: float, max_entries: int) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        """The principal of a token verified less than ``ttl_s`` ago and not yet expired, else None."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        principal, good_until = entry
        if time.monotonic() >= good_until or time.time() >= principal.expires_at:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return principal

    def put(self, token: str, principal: Principal) -> None:
        """Remember that ``token`` verified as ``principal`` just now."""
        if self.ttl_s <= 0 or self.max_entries <= 0:
            return
        self._entries[token] = (principal, time.monotonic() + self.ttl_s)
        self._entries.move_to_end(token)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, token: str) -> None:
        """Forget ``token``."""
        self._entries.pop(token, None)

    def clear(self) -> None:
        """Forget every token (the trusted keys changed)."""
        self._entries.clear()


class GatewayVerifier(JWKSVerifier):
    """``common.auth.JWKSVerifier`` over the gateway's own key ring, plus the revocation check.

    Signature and claim checks of a token are remembered for ``verified_cache_ttl_s`` (at most until the token
    expires; forgotten when the keys are reloaded): an Ed25519 verify plus PyJWT's parsing is the largest
    per-request cost of the gateway, and a client sends the same token many times a second. The revocation
    check runs on every request, cached or not.
    """

    def __init__(
        self,
        *,
        audience: str,
        issuer: str,
        keys: KeyRing,
        min_reload_interval_s: float = 1.0,
        verified_cache_ttl_s: float = 5.0,
        verified_cache_size: int = 10_000,
    ) -> None:
        self._trusted: frozenset[str] = frozenset()
        self._key_fingerprint: frozenset[str] = frozenset()
        self._verified = VerifiedTokens(ttl_s=verified_cache_ttl_s, max_entries=verified_cache_size)
        super().__init__(audience=audience, issuer=issuer, jwks=keys.jwks())
        self.keys = keys
        self.min_reload_interval_s = min_reload_interval_s
        self.revocations: RevocationCache | None = None
        self.api_keys: ApiKeys | None = None

    def load(self, jwks: dict[str, Any]) -> None:
        """Trust exactly the keys of ``jwks``; forget verified tokens if a key they may rest on left or changed."""
        super().load(jwks)
        self._trusted = frozenset(k["kid"] for k in jwks.get("keys", []) if k.get("kid"))
        fingerprint = frozenset(json.dumps(k, sort_keys=True) for k in jwks.get("keys", []) if k.get("kid"))
        if not self._key_fingerprint <= fingerprint:
            self._verified.clear()
        self._key_fingerprint = fingerprint

    def reload_keys(self) -> None:
        """Re-read the keys directory and trust exactly its keys."""
        self.keys.load()
        self.load(self.keys.jwks())

    async def verify(self, token: str) -> Principal:
        """Signature, kid, exp, aud, iss (the shared logic), then the token and its session not revoked.

        An API key (``rf_live_…``) is looked up instead (``ApiKeys.authenticate``: Postgres, every time).
        """
        if looks_like_api_key(token):
            if self.api_keys is None:
                raise TokenInvalid("auth.invalid_api_key", "API keys are not accepted here")
            return await self.api_keys.authenticate(token)
        principal = self._verified.get(token)
        if principal is None:
            principal = await self._verify_signed(token)
            refuse_minted(principal)
            self._verified.put(token, principal)
        if self.revocations is not None and await self.revocations.is_revoked(
            principal.token_id, str(principal.claims.get("sid", ""))
        ):
            self._verified.discard(token)
            raise TokenInvalid("auth.token_revoked", "this token was revoked; log in again")
        return principal

    async def _verify_signed(self, token: str) -> Principal:
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
        return await super().verify(token)
