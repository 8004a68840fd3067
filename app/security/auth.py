"""Who is calling: ``Authorization: Bearer <JWT>`` verified with joserfc.

Two ways to trust a JWT, chosen by the settings:
- ``AUTH_JWT_SECRET``: HS256 with a shared secret (development generates one into ``DATA_DIR``).
- ``AUTH_JWKS_URL``: asymmetric signatures checked against the identity provider's key set,
  with ``iss`` and ``aud`` required to match ``AUTH_ISSUER`` / ``AUTH_AUDIENCE``. The key set is
  cached and fetched again when a token names an unknown key (at most every 30 seconds, so a
  flood of forged ``kid``s cannot turn into a flood of requests).

Every failure — missing header, malformed, badly signed, expired, not yet valid, wrong issuer or
audience, no ``sub`` — is ``UnauthenticatedError``; the reason is logged, never the token.

Two kinds of callers:
- a person (the platform's frontend): a JWT without the claims below; ``sub`` owns the integrations;
- a platform service (the deployer, the builder): a JWT with ``scope`` (space-separated, e.g.
  ``git:deploy``) that acts for the user named in ``act_for`` (or for its own ``sub``). It may do only
  what its scopes allow (``graphql.permissions``); a JWT naming ``act_for`` without any scope may do
  nothing at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from app.domain.errors import UnauthenticatedError
from app.net.client import parse_json
from app.settings.model import Settings

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
_LEEWAY_SECONDS = 30
_JWKS_TTL_SECONDS = 600
_JWKS_MIN_REFRESH_SECONDS = 30
_MAX_JWT_LENGTH = 8192


# What a platform service's JWT may ask for (claim ``scope``).
SCOPE_DEPLOY = "git:deploy"  # read links and events, set commit statuses
SCOPE_CLONE = "git:clone"  # get clone credentials
_MAX_CLAIM_LENGTH = 256


@dataclass(frozen=True)
class Caller:
    """Who is calling and for whom. ``user_id`` owns what is read and changed (``act_for``, else ``sub``).

    ``scopes`` None: a person's token, which may do everything a user may; otherwise a service token
    that may do only what these scopes allow.
    """

    user_id: str
    subject: str = ""
    scopes: frozenset[str] | None = None

    @property
    def is_service(self) -> bool:
        return self.scopes is not None

    def holds(self, scope: str) -> bool:
        return self.scopes is not None and scope in self.scopes


class Authenticator:
    """Turns an ``Authorization`` header into a ``Caller`` or raises ``UnauthenticatedError``."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._jwks_url = settings.auth_jwks_url
        self._http = http
        self._secret_key = (
            OctKey.import_key(settings.auth_jwt_secret.reveal()) if settings.auth_jwt_secret else None
        )
        self._jwks: KeySet | None = None
        self._jwks_fetched_at = 0.0
        self._jwks_lock = asyncio.Lock()

    async def authenticate(self, authorization: str | None) -> Caller:
        token = _bearer_token(authorization)
        try:
            decoded = await self._decode(token)
            claims = decoded.claims
            self._claims_registry().validate(claims)
        except JoseError as exc:
            log.info("caller JWT refused: %s", type(exc).__name__)
            raise UnauthenticatedError("The bearer token is invalid or expired.") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise UnauthenticatedError("The bearer token names no user (claim 'sub').")
        scopes = _scopes(claims.get("scope"))
        acts_for = claims.get("act_for")
        if acts_for is None:
            return Caller(user_id=subject, subject=subject, scopes=scopes)
        if not isinstance(acts_for, str) or not acts_for.strip() or len(acts_for) > _MAX_CLAIM_LENGTH:
            raise UnauthenticatedError("The bearer token's claim 'act_for' does not name a user.")
        # Acting for someone else is a service's business: without scopes it may do nothing.
        return Caller(user_id=acts_for, subject=subject, scopes=scopes or frozenset())

    async def _decode(self, token: str) -> jwt.Token:
        if self._secret_key is not None:
            return jwt.decode(token, self._secret_key, algorithms=["HS256"])
        keys = await self._key_set(refresh=False)
        try:
            return jwt.decode(token, keys, algorithms=list(ASYMMETRIC_ALGORITHMS))
        except (JoseError, ValueError):
            # The identity provider may have rotated its keys since we fetched them.
            refreshed = await self._key_set(refresh=True)
            if refreshed is keys:
                raise
            return jwt.decode(token, refreshed, algorithms=list(ASYMMETRIC_ALGORITHMS))

    def _claims_registry(self) -> jwt.JWTClaimsRegistry:
        options: dict[str, jwt.ClaimsOption] = {"exp": {"essential": True}, "sub": {"essential": True}}
        if self._issuer:
            options["iss"] = {"essential": True, "value": self._issuer}
        if self._audience:
            options["aud"] = {"essential": True, "value": self._audience}
        return jwt.JWTClaimsRegistry(None, _LEEWAY_SECONDS, **options)

    async def _key_set(self, *, refresh: bool) -> KeySet:
        async with self._jwks_lock:
            age = time.monotonic() - self._jwks_fetched_at
            fresh = self._jwks is not None and age < _JWKS_TTL_SECONDS
            if self._jwks is not None and ((fresh and not refresh) or age < _JWKS_MIN_REFRESH_SECONDS):
                return self._jwks
            self._jwks = await self._fetch_jwks()
            self._jwks_fetched_at = time.monotonic()
            return self._jwks

    async def _fetch_jwks(self) -> KeySet:
        assert self._jwks_url is not None and self._http is not None
        try:
            response = await self._http.get(self._jwks_url, follow_redirects=False)
            response.raise_for_status()
            return KeySet.import_key_set(parse_json(response))
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            log.error("could not load the JWKS from AUTH_JWKS_URL: %s", type(exc).__name__)
            if self._jwks is not None:
                return self._jwks
            raise UnauthenticatedError(
                "Caller tokens cannot be checked right now; try again shortly."
            ) from None


def _scopes(claim: object) -> frozenset[str] | None:
    """The ``scope`` claim (RFC 8693: space-separated; a list is accepted too); None when absent."""
    if claim is None:
        return None
    if isinstance(claim, str):
        return frozenset(claim.split())
    if isinstance(claim, list) and all(isinstance(item, str) for item in claim):
        return frozenset(item for item in claim if item)
    raise UnauthenticatedError("The bearer token's claim 'scope' is not a list of scopes.")


def jwks_client(*, timeout_seconds: float, user_agent: str) -> httpx.AsyncClient:
    """The client that fetches ``AUTH_JWKS_URL``, and nothing else: bounded in time, never redirected.

    Not the Git hosts' guarded client: the identity provider is configured by the operator for this
    purpose only, and is never a Git host.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
        follow_redirects=False,
        headers={"User-Agent": user_agent},
    )


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise UnauthenticatedError()
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise UnauthenticatedError("Send the caller token as 'Authorization: Bearer <JWT>'.")
    if len(token) > _MAX_JWT_LENGTH or token.count(".") != 2:
        raise UnauthenticatedError("The bearer token is not a JWT.")
    return token


def issue_development_token(
    settings: Settings,
    user: str,
    *,
    lifetime_seconds: int = 12 * 3600,
    scope: str | None = None,
    act_for: str | None = None,
) -> str:
    """A JWT the development secret accepts (``python -m app dev-token``); refused in production.

    ``scope`` and ``act_for``: a platform service's token (e.g. the builder's, ``git:clone``).
    """
    if settings.production or settings.auth_jwt_secret is None:
        raise RuntimeError(
            "dev-token works only with APP_ENV=development and an HS256 secret (AUTH_JWT_SECRET)"
        )
    now = int(time.time())
    claims: dict[str, object] = {"sub": user, "iat": now, "exp": now + lifetime_seconds}
    if scope is not None:
        claims["scope"] = scope
    if act_for is not None:
        claims["act_for"] = act_for
    if settings.auth_issuer:
        claims["iss"] = settings.auth_issuer
    if settings.auth_audience:
        claims["aud"] = settings.auth_audience
    key = OctKey.import_key(settings.auth_jwt_secret.reveal())
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, key)
