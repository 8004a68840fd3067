from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import respx
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from app.domain.errors import UnauthenticatedError
from app.security.auth import Authenticator
from app.settings.model import Settings
from app.settings.values import Secret

SECRET = "s" * 48
HS = Settings(auth_jwt_secret=Secret(SECRET))


def sign(claims: dict[str, Any], key: Any = None, alg: str = "HS256", kid: str | None = None) -> str:
    header: dict[str, Any] = {"alg": alg}
    if kid:
        header["kid"] = kid
    return jwt.encode(header, claims, key or OctKey.import_key(SECRET))


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **extra}


async def test_valid_hs256_token_names_the_caller() -> None:
    caller = await Authenticator(HS).authenticate(f"Bearer {sign(claims())}")
    assert caller.user_id == "alice"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        f"Bearer {sign(claims(exp=int(time.time()) - 3600))}",
        f"Bearer {sign(claims(), OctKey.import_key('other' * 10))}",
        f"Bearer {sign({'exp': int(time.time()) + 60})}",
        f"Bearer {sign(claims(nbf=int(time.time()) + 3600))}",
    ],
    ids=[
        "missing",
        "empty",
        "basic",
        "no-token",
        "garbage",
        "bad-segments",
        "expired",
        "wrong-key",
        "no-sub",
        "not-yet-valid",
    ],
)
async def test_bad_caller_tokens_are_unauthenticated(header: str | None) -> None:
    with pytest.raises(UnauthenticatedError):
        await Authenticator(HS).authenticate(header)


async def test_unsigned_alg_none_token_is_refused() -> None:
    import base64
    import json

    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    forged = f"{b64({'alg': 'none'})}.{b64(claims())}."
    with pytest.raises(UnauthenticatedError):
        await Authenticator(HS).authenticate(f"Bearer {forged}")


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


def jwks_settings() -> Settings:
    return Settings(
        auth_jwks_url="https://idp.example.com/jwks.json",
        auth_issuer="https://idp.example.com/",
        auth_audience="git-integrations",
    )


async def test_jwks_token_with_issuer_and_audience_is_accepted(rsa_key: RSAKey) -> None:
    token = sign(claims(iss="https://idp.example.com/", aud="git-integrations"), rsa_key, "RS256", "k1")
    with respx.mock(assert_all_mocked=True) as mock:
        route = mock.get("https://idp.example.com/jwks.json").respond(json=KeySet([rsa_key]).as_dict())
        async with httpx.AsyncClient() as http:
            auth = Authenticator(jwks_settings(), http)
            assert (await auth.authenticate(f"Bearer {token}")).user_id == "alice"
            assert (await auth.authenticate(f"Bearer {token}")).user_id == "alice"
    assert route.call_count == 1  # the key set is cached


@pytest.mark.parametrize(
    "extra",
    [
        {"iss": "https://evil.example.com/", "aud": "git-integrations"},
        {"iss": "https://idp.example.com/", "aud": "x"},
        {"aud": "git-integrations"},
    ],
    ids=["wrong-issuer", "wrong-audience", "no-issuer"],
)
async def test_jwks_token_with_wrong_issuer_or_audience_is_refused(
    rsa_key: RSAKey, extra: dict[str, str]
) -> None:
    token = sign(claims(**extra), rsa_key, "RS256", "k1")
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get("https://idp.example.com/jwks.json").respond(json=KeySet([rsa_key]).as_dict())
        async with httpx.AsyncClient() as http:
            with pytest.raises(UnauthenticatedError):
                await Authenticator(jwks_settings(), http).authenticate(f"Bearer {token}")


async def test_jwks_mode_refuses_hs256_tokens_signed_with_the_public_key(rsa_key: RSAKey) -> None:
    # The classic algorithm-confusion attack: HS256 keyed with the public key must not pass.
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    signing_input = ".".join(
        b64(json.dumps(part).encode())
        for part in (
            {"alg": "HS256", "kid": "k1"},
            claims(iss="https://idp.example.com/", aud="git-integrations"),
        )
    )
    mac = hmac.new(rsa_key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(mac)}"
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get("https://idp.example.com/jwks.json").respond(json=KeySet([rsa_key]).as_dict())
        async with httpx.AsyncClient() as http:
            with pytest.raises(UnauthenticatedError):
                await Authenticator(jwks_settings(), http).authenticate(f"Bearer {token}")
