"""Token verification: every way a token can be wrong is a 401 with a stable code."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.auth import VERIFIER, JWKSVerifier, TokenInvalid, require_user
from common.http import create_base_app, json_response
from common.testing.auth import TokenFactory


async def whoami(request: web.Request) -> web.Response:
    p = await require_user(request)
    return json_response({"user_id": p.user_id})


@pytest.fixture
async def jwks_server(aiohttp_server, token_factory: TokenFactory):  # type: ignore[no-untyped-def]
    state = {"jwks": token_factory.jwks(), "hits": 0}

    async def jwks(_: web.Request) -> web.Response:
        state["hits"] = int(state["hits"]) + 1  # type: ignore[call-overload]
        return json_response(state["jwks"])

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    server = await aiohttp_server(app)
    return server, state


@pytest.fixture
async def client(aiohttp_client, jwks_server) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    server, _ = jwks_server
    app = create_base_app(service="authdemo")
    verifier = JWKSVerifier(
        audience="reelforge",
        issuer="reelforge-gateway",
        jwks_url=str(server.make_url("/.well-known/jwks.json")),
        min_refresh_interval_s=0,
    )
    app[VERIFIER] = verifier
    app.router.add_get("/me", whoami)
    yield await aiohttp_client(app)
    await verifier.close()


async def status_code(client: TestClient, token: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    r = await client.get("/me", headers=headers)
    return r.status, (await r.json()).get("code", "")


async def test_valid_token_fetched_from_jwks(client: TestClient, token_factory: TokenFactory) -> None:
    user = uuid.uuid4()
    r = await client.get("/me", headers=token_factory.headers(user))
    assert r.status == 200 and (await r.json())["user_id"] == str(user)


async def test_missing_token(client: TestClient) -> None:
    assert await status_code(client, None) == (401, "auth.missing_token")


async def test_expired_token(client: TestClient, token_factory: TokenFactory) -> None:
    token = token_factory.token(ttl_s=-60)
    assert await status_code(client, token) == (401, "auth.token_expired")


async def test_wrong_audience_and_issuer(client: TestClient, token_factory: TokenFactory) -> None:
    assert await status_code(client, token_factory.token(aud="someone-else")) == (401, "auth.invalid_token")
    assert await status_code(client, token_factory.token(iss="evil")) == (401, "auth.invalid_token")


async def test_tampered_payload(client: TestClient, token_factory: TokenFactory) -> None:
    header, payload, sig = token_factory.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert await status_code(client, f"{header}.{forged}.{sig}") == (401, "auth.invalid_token")


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [(None, "none"), ("secret", "HS256")],
    ids=["alg_none", "hs256_with_public_key_confusion"],
)
async def test_a_token_not_signed_with_ed25519_is_refused(
    client: TestClient, token_factory: TokenFactory, key: str | None, algorithm: str
) -> None:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "jti": "x",
        "iat": now,
        "exp": now + 60,
        "aud": "reelforge",
        "iss": "reelforge-gateway",
    }
    token = jwt.encode(claims, key, algorithm=algorithm, headers={"kid": token_factory.kid})  # type: ignore[arg-type]
    assert await status_code(client, token) == (401, "auth.invalid_token")


async def test_unknown_kid_and_foreign_key(client: TestClient, token_factory: TokenFactory) -> None:
    stranger = TokenFactory(kid=token_factory.kid, key=Ed25519PrivateKey.generate())
    assert await status_code(client, stranger.token()) == (401, "auth.invalid_token")
    unknown = TokenFactory()
    assert await status_code(client, unknown.token()) == (401, "auth.invalid_token")
    assert await status_code(client, "garbage") == (401, "auth.invalid_token")


async def test_rotated_key_is_fetched_on_unknown_kid(
    client: TestClient, jwks_server, token_factory: TokenFactory
) -> None:  # type: ignore[no-untyped-def]
    _, state = jwks_server
    assert (await client.get("/me", headers=token_factory.headers(uuid.uuid4()))).status == 200
    new = TokenFactory()
    state["jwks"] = {"keys": token_factory.jwks()["keys"] + new.jwks()["keys"]}
    r = await client.get("/me", headers=new.headers(uuid.uuid4()))
    assert r.status == 200
    r = await client.get("/me", headers=token_factory.headers(uuid.uuid4()))  # the old key still verifies
    assert r.status == 200


async def test_static_verifier_without_network(token_factory: TokenFactory) -> None:
    v = token_factory.verifier()
    p = await v.verify(token_factory.token(email="a@b.c"))
    assert p.email == "a@b.c"
    with pytest.raises(TokenInvalid):
        await v.verify(token_factory.token(ttl_s=-100))


def _signed(factory: TokenFactory, *, typ: str | None = "at+jwt", **changes: object) -> str:
    """A token signed by ``factory``'s key with its claims changed (``None`` removes one) and header ``typ``."""
    claims = jwt.decode(factory.token(), options={"verify_signature": False})
    claims = {k: v for k, v in {**claims, **changes}.items() if v is not None}
    headers: dict[str, str] = {"kid": factory.kid}
    if typ is not None:
        headers["typ"] = typ
    encoded: str = jwt.api_jws.encode(  # the JWS layer: jwt.encode would refuse or coerce some of these
        json.dumps(claims).encode(), factory.key, algorithm="EdDSA", headers=headers
    )
    return encoded


async def test_lenient_claims_and_untyped_tokens_are_refused(token_factory: TokenFactory) -> None:
    """Issue 14 item 8: a numeric-string ``exp`` or a ``typ: refresh`` header was accepted."""
    v = token_factory.verifier()
    now = int(time.time())
    assert jwt.get_unverified_header(token_factory.token())["typ"] == "at+jwt"
    assert (await v.verify(_signed(token_factory))).token_id  # the helper itself makes valid tokens
    assert await v.verify(_signed(token_factory, typ="application/AT+JWT"))  # RFC 9068 §4: either spelling
    refused = {
        "exp a numeric string": _signed(token_factory, exp=str(now + 3600)),
        "iat a numeric string": _signed(token_factory, iat=str(now)),
        "nbf a numeric string": _signed(token_factory, nbf=str(now)),
        "exp a boolean": _signed(token_factory, exp=True),
        "exp null": _signed(token_factory, exp=None),
        "typ refresh": _signed(token_factory, typ="refresh"),
        "typ JWT (tokens from before at+jwt)": _signed(token_factory, typ="JWT"),
        "no typ": _signed(token_factory, typ=None),
        "sub a number": _signed(token_factory, sub=12345),
        "sub not a UUID": _signed(token_factory, sub="alice"),
        "sub a non-canonical UUID": _signed(token_factory, sub=uuid.uuid4().hex),
        "aud a list holding ours": _signed(token_factory, aud=["reelforge", "other"]),
        "aud a prefix": _signed(token_factory, aud="reelforge-x"),
        "iss a list": _signed(token_factory, iss=["reelforge-gateway"]),
        "jti a number": _signed(token_factory, jti=7),
        "jti empty": _signed(token_factory, jti=""),
        "email an object": _signed(token_factory, email={"a": 1}),
        "iat in the future": _signed(token_factory, iat=now + 600),
        "nbf in the future": _signed(token_factory, nbf=now + 600),
    }
    for what, token in refused.items():
        with pytest.raises(TokenInvalid) as caught:
            await v.verify(token)
        assert caught.value.code == "auth.invalid_token", what
    with pytest.raises(TokenInvalid) as caught:
        await v.verify(_signed(token_factory, exp=now - 60))
    assert caught.value.code == "auth.token_expired"


async def test_lenient_tokens_are_401_over_http(client: TestClient, token_factory: TokenFactory) -> None:
    now = int(time.time())
    assert await status_code(client, _signed(token_factory, exp=str(now + 3600))) == (
        401,
        "auth.invalid_token",
    )
    assert await status_code(client, _signed(token_factory, typ="refresh")) == (401, "auth.invalid_token")
