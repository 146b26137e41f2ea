"""Signing keys: Ed25519 PEM files in a directory (file name = kid); the active one signs, all are published."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.auth import ACCESS_TOKEN_TYP
from common.logging import get_logger

from .config import GatewaySettings

log = get_logger(__name__)

MANIFEST = "keys.json"
_SUFFIX = ".pem"


def access_claims(
    settings: GatewaySettings, *, user_id: uuid.UUID, email: str, ttl_s: int, **extra: str
) -> dict[str, Any]:
    """The claims of an access token for ``user_id``, valid from now for ``ttl_s`` (plus ``extra`` ones)."""
    now = int(time.time())
    return {
        "sub": str(user_id),
        "email": email,
        "jti": uuid.uuid4().hex,
        **extra,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
    }


class NoSigningKey(RuntimeError):
    """The keys directory holds no usable key (production refuses to start)."""


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring."""

    kid: str
    private_key: Ed25519PrivateKey
    created_at: float  # file mtime

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with ``kid``."""
        jwk: dict[str, Any] = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return jwk


def new_kid() -> str:
    """A sortable, unique key id: UTC timestamp + random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate_key(directory: Path, *, activate: bool = True) -> str:
    """Write a new Ed25519 key (mode 0600) and, by default, make it the active signer; return its kid."""
    directory.mkdir(parents=True, exist_ok=True)
    kid = new_kid()
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _atomic_write(directory / f"{kid}{_SUFFIX}", pem, 0o600)
    if activate:
        _atomic_write(directory / MANIFEST, json.dumps({"active": kid}).encode(), 0o644)
    return kid


class KeyRing:
    """The keys of ``directory``. The signer is the kid named by ``keys.json`` ``{"active": kid}`` or else
    the newest file (mtime, then name). Every key in the directory verifies, so rotation keeps old tokens valid.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._keys: dict[str, SigningKey] = {}
        self._active: str | None = None
        #: since when the active key has signed alone (its file's age, or the manifest's if that chose it later)
        self.active_since = 0.0
        self.loaded_at = 0.0

    def load(self) -> None:
        """(Re)read the directory; unreadable files are logged and skipped."""
        keys: dict[str, SigningKey] = {}
        if self.directory.is_dir():
            for path in sorted(self.directory.glob(f"*{_SUFFIX}")):
                kid = path.name[: -len(_SUFFIX)]
                try:
                    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
                except (ValueError, TypeError, OSError) as exc:
                    log.warning("keys.unreadable", kid=kid, error=repr(exc))
                    continue
                if not isinstance(key, Ed25519PrivateKey):
                    log.warning("keys.not_ed25519", kid=kid)
                    continue
                keys[kid] = SigningKey(kid=kid, private_key=key, created_at=path.stat().st_mtime)
        active: str | None = None
        chosen_at = 0.0
        manifest = self.directory / MANIFEST
        if manifest.is_file():
            try:
                named = json.loads(manifest.read_text()).get("active")
            except (ValueError, OSError, AttributeError) as exc:
                log.warning("keys.bad_manifest", error=repr(exc))
                named = None
            if isinstance(named, str) and named in keys:
                active = named
                # a manifest edited to name an older key (a rollback): newer keys signed until that moment
                with contextlib.suppress(OSError):
                    chosen_at = manifest.stat().st_mtime
            elif named:
                log.warning("keys.manifest_names_missing_key", kid=named)
        if active is None and keys:
            active = max(keys.values(), key=lambda k: (k.created_at, k.kid)).kid
        self._keys, self._active, self.loaded_at = keys, active, time.monotonic()
        self.active_since = max(keys[active].created_at, chosen_at) if active is not None else 0.0

    @property
    def kids(self) -> frozenset[str]:
        """Ids of every loaded key."""
        return frozenset(self._keys)

    @property
    def active(self) -> SigningKey:
        """The key that signs new tokens."""
        if self._active is None:
            raise NoSigningKey(f"no Ed25519 key in {self.directory}")
        return self._keys[self._active]

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document (every key, active first)."""
        ordered = sorted(self._keys.values(), key=lambda k: k.kid != self._active)
        return {"keys": [k.public_jwk() for k in ordered]}

    def sign(self, claims: dict[str, Any]) -> str:
        """An access token: a compact JWS (EdDSA) of ``claims``, header ``kid`` (the active key) and ``typ: at+jwt``."""
        key = self.active
        return jwt.encode(
            claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYP}
        )

    def prunable(self, *, now: float, token_ttl_s: int, leeway_s: int = 300) -> list[str]:
        """Inactive keys no unexpired token can still name: the active key has signed for longer than a token lives.

        Every other key stopped signing when the active one took over (its file appeared, or ``keys.json`` named
        it), so once ``token_ttl_s`` (+ leeway) has passed since then, their tokens have all expired.
        """
        if self._active is None:
            return []
        if now - self.active_since < token_ttl_s + leeway_s:
            return []
        return sorted(k for k in self._keys if k != self._active)

    def delete(self, kid: str) -> None:
        """Remove a key file (never the active one)."""
        if kid == self._active:
            raise ValueError("refusing to delete the active signing key")
        (self.directory / f"{kid}{_SUFFIX}").unlink(missing_ok=True)
        self._keys.pop(kid, None)
