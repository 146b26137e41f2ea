"""Accounts and sessions: Argon2id passwords, EdDSA access tokens, rotating refresh tokens with reuse detection."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from common.errors import NotFound
from common.events.gateway import UserRegistered
from common.http import Problem
from common.logging import get_logger

from . import store
from .config import GatewaySettings
from .keys import KeyRing, access_claims
from .revocation import RevocationCache

log = get_logger(__name__)

_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$"
)
MIN_PASSWORD = 10
#: Argon2 accepts any length; cap it so a megabyte "password" cannot buy a megabyte of hashing work
MAX_PASSWORD = 1024
REFRESH_PREFIX = "rft_"


@dataclass(frozen=True)
class TokenPair:
    """What login and refresh answer."""

    access_token: str
    refresh_token: str
    expires_in: int

    def public(self) -> dict[str, Any]:
        """The OAuth2-style token response body."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def normalize_email(raw: str) -> str:
    """Trimmed, lower-cased email, or a 422 ``validation.email`` problem."""
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise Problem(422, "validation.email", "enter a valid email address", field="email")
    return email


def check_password(password: str) -> None:
    """A 422 problem unless the password is long enough (and not absurdly long)."""
    if len(password) < MIN_PASSWORD:
        raise Problem(
            422,
            "validation.password_too_short",
            f"the password needs at least {MIN_PASSWORD} characters",
            field="password",
        )
    if len(password) > MAX_PASSWORD:
        raise Problem(
            422,
            "validation.password_too_long",
            f"the password may have at most {MAX_PASSWORD} characters",
            field="password",
        )


def hash_refresh_token(token: str) -> bytes:
    """The stored form of a refresh token (SHA-256: the token is 256 random bits, so no slow hash is needed)."""
    return hashlib.sha256(token.encode()).digest()


class Accounts:
    """Registration, login, token rotation and logout on the gateway's schema."""

    def __init__(
        self, *, pool: store.Pool, keys: KeyRing, revocations: RevocationCache, settings: GatewaySettings
    ) -> None:
        self.pool, self.keys, self.revocations, self.settings = pool, keys, revocations, settings
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # verified against when the email is unknown, so a miss costs as much as a wrong password
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    async def _hash(self, password: str) -> str:
        # Argon2 is tens of milliseconds of CPU: off the event loop
        return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)

    async def register(self, *, email: str, password: str, correlation_id: str = "") -> store.User:
        """Create an account and announce it (``user.registered.v1`` in the same transaction)."""
        email = normalize_email(email)
        check_password(password)
        password_hash = await self._hash(password)
        async with store.transaction(self.pool) as conn:
            user = await store.insert_user(
                conn, user_id=uuid.uuid4(), email=email, password_hash=password_hash
            )
            if user is None:
                raise Problem(409, "auth.email_taken", "an account with this email already exists")
            await store.add_event(
                conn,
                event=UserRegistered(
                    user_id=user.id,
                    email=user.email,
                    producer=self.settings.service,
                    correlation_id=correlation_id,
                ),
            )
        log.info("auth.registered", user_id=str(user.id))
        return user

    async def login(self, *, email: str, password: str) -> TokenPair:
        """A new session (refresh family) for valid credentials; 401 ``auth.invalid_credentials`` otherwise."""
        invalid = Problem(401, "auth.invalid_credentials", "the email or password is wrong")
        try:
            email = normalize_email(email)
        except Problem:
            await self._verify(self._dummy_hash, password[:MAX_PASSWORD])
            raise invalid from None
        async with self.pool.acquire() as conn:
            user = await store.user_by_email(conn, email=email)
        if user is None or len(password) > MAX_PASSWORD:
            await self._verify(self._dummy_hash, password[:MAX_PASSWORD])
            raise invalid
        if not await self._verify(user.password_hash, password):
            log.info("auth.login_failed", user_id=str(user.id))
            raise invalid
        async with store.transaction(self.pool) as conn:
            if self.hasher.check_needs_rehash(user.password_hash):
                await store.set_password_hash(conn, user_id=user.id, password_hash=await self._hash(password))
            pair = await self._issue(conn, user=user, family_id=uuid.uuid4())
        log.info("auth.login", user_id=str(user.id))
        return pair

    async def refresh(self, *, refresh_token: str) -> TokenPair:
        """Rotate: spend ``refresh_token`` and answer a new pair in the same family.

        Presenting a spent token means it was copied: the whole family (every refresh token and the access
        tokens issued from it) is revoked and 401 ``auth.refresh_reused`` is answered.
        """
        token_hash = hash_refresh_token(refresh_token)
        reused: store.RefreshToken | None = None
        async with store.transaction(self.pool) as conn:
            row = await store.refresh_token_for_update(conn, token_hash=token_hash)
            if row is None:
                raise Problem(401, "auth.invalid_refresh_token", "unknown refresh token")
            if row.family_revoked:
                raise Problem(401, "auth.token_revoked", "this session was revoked; log in again")
            if row.used_at is not None:
                reused = row
                await self._revoke_family(
                    conn, user_id=row.user_id, family_id=row.family_id, reason="refresh_reused"
                )
            elif row.expires_at <= datetime.now(UTC):
                raise Problem(401, "auth.refresh_expired", "the refresh token has expired; log in again")
            else:
                user = await store.user_by_id(conn, user_id=row.user_id)
                if user is None:
                    raise Problem(401, "auth.invalid_refresh_token", "unknown refresh token")
                pair = await self._issue(conn, user=user, family_id=row.family_id, parent=row.id)
        if reused is not None:  # committed above: the revocation must survive the error answer
            self.revocations.note_family_revoked(str(reused.family_id))
            log.warning("auth.refresh_reused", user_id=str(reused.user_id), family_id=str(reused.family_id))
            raise Problem(
                401, "auth.refresh_reused", "this refresh token was already used; the session is revoked"
            )
        return pair

    async def logout(
        self, *, user_id: uuid.UUID, jti: str, sid: str, exp: int, refresh_token: str | None
    ) -> None:
        """Revoke the calling access token, its session, and the session of ``refresh_token`` if it is the caller's."""
        async with store.transaction(self.pool) as conn:
            await store.revoke(
                conn,
                kind="token",
                value=jti,
                user_id=user_id,
                reason="logout",
                expires_at=datetime.fromtimestamp(exp, UTC) + timedelta(minutes=5),
            )
            families = {sid} if sid else set()
            if refresh_token:
                owner = await store.refresh_token_owner(conn, token_hash=hash_refresh_token(refresh_token))
                # someone else's refresh token is ignored: logout must not be a way to end other users' sessions
                if owner is not None and owner[0] == user_id:
                    families.add(str(owner[1]))
            for family in families:
                await self._revoke_family(conn, user_id=user_id, family_id=uuid.UUID(family), reason="logout")
        self.revocations.note_token_revoked(jti)
        for family in families:
            self.revocations.note_family_revoked(family)
        log.info("auth.logout", user_id=str(user_id))

    async def _revoke_family(
        self, conn: store.Connection, *, user_id: uuid.UUID, family_id: uuid.UUID, reason: str
    ) -> None:
        # a family can be refreshed for up to refresh_ttl after its last use; keep the row past that
        until = datetime.now(UTC) + timedelta(
            seconds=self.settings.refresh_token_ttl_s + self.settings.access_token_ttl_s
        )
        await store.revoke(
            conn, kind="family", value=str(family_id), user_id=user_id, reason=reason, expires_at=until
        )

    async def _issue(
        self,
        conn: store.Connection,
        *,
        user: store.User,
        family_id: uuid.UUID,
        parent: uuid.UUID | None = None,
    ) -> TokenPair:
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        token_id = uuid.uuid4()
        await store.insert_refresh_token(
            conn,
            token_id=token_id,
            family_id=family_id,
            user_id=user.id,
            token_hash=hash_refresh_token(refresh),
            expires_at=datetime.now(UTC) + timedelta(seconds=self.settings.refresh_token_ttl_s),
        )
        if parent is not None:
            await store.mark_refresh_token_used(conn, token_id=parent, replaced_by=token_id)
        ttl = self.settings.access_token_ttl_s
        access = self.keys.sign(
            access_claims(self.settings, user_id=user.id, email=user.email, ttl_s=ttl, sid=str(family_id))
        )
        return TokenPair(access_token=access, refresh_token=refresh, expires_in=ttl)

    async def me(self, *, user_id: uuid.UUID) -> store.User:
        """The caller's account (404 if it was deleted)."""
        async with self.pool.acquire() as conn:
            user = await store.user_by_id(conn, user_id=user_id)
        if user is None:
            raise NotFound("user", "this account no longer exists")
        return user
