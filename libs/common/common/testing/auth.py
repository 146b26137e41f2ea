"""Tokens for tests: an Ed25519 signing key, its JWKS, and a factory of gateway-shaped access tokens."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..auth import ACCESS_TOKEN_TYP, JWKSVerifier

__all__ = ["TokenFactory", "token_factory"]


@dataclass
class TokenFactory:
    """Signs access tokens the way the gateway does (EdDSA, ``kid``, ``typ: at+jwt``, aud, iss)."""

    audience: str = "reelforge"
    issuer: str = "reelforge-gateway"
    kid: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document."""
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": [jwk]}

    def verifier(self) -> JWKSVerifier:
        """A verifier that trusts this factory's key."""
        return JWKSVerifier(audience=self.audience, issuer=self.issuer, jwks=self.jwks())

    def token(self, user_id: uuid.UUID | None = None, *, ttl_s: int = 3600, **claims: Any) -> str:
        """A signed access token for ``user_id`` (random when omitted)."""
        now = int(time.time())
        payload = {
            "sub": str(user_id or uuid.uuid4()),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "aud": self.audience,
            "iss": self.issuer,
            **claims,
        }
        return jwt.encode(
            payload, self.key, algorithm="EdDSA", headers={"kid": self.kid, "typ": ACCESS_TOKEN_TYP}
        )

    def headers(self, user_id: uuid.UUID, **claims: Any) -> dict[str, str]:
        """An Authorization header for ``user_id``."""
        return {"Authorization": f"Bearer {self.token(user_id, **claims)}"}


@pytest.fixture
def token_factory() -> TokenFactory:
    """A fresh signing key per test."""
    return TokenFactory()
