"""An OAuth 2 authorization server of a Git host, as this service's registered application uses it:
where "Connect with …" sends the user, and the token endpoint behind it (code exchange, refresh,
revocation). Each host subclasses ``AuthorizationServer`` in its package (``hosts/github/oauth.py``,
``hosts/gitlab/oauth.py``); services reach it as ``GitHost.login``.

Every code the service exchanges was issued for its own PKCE S256 challenge, and every exchange sends
the verifier. A GitHub App login starts at the app's installation page, which takes no challenge:
its setup redirect is followed by ``user_authorization_url`` (the authorization with the challenge),
and a code GitHub hands out during the installation is never exchanged. Query strings and bodies are built with authlib's
OAuth 2 primitives; the requests go through ``HostHTTP`` on the shared client like every other call
to a Git host, so the SSRF guard, the no-redirect rule, rate-limit handling and messages that never
contain a URL apply here too. authlib's ``AsyncOAuth2Client`` is not used because it is a client of
its own: closing it would close the shared transport, and its errors carry the request URL.

Token endpoint answers: GitHub reports errors as HTTP 200 with ``{"error": "bad_verification_code"}``,
GitLab as 400/401 with ``{"error": "invalid_grant"}``. Both become ``OAuthExchangeError`` whose
``reason`` is the host's error code; the caller decides what a refusal means (a failed login, or a
refresh token that is dead for good). Codes and tokens are sent only in request bodies and headers:
they never appear in a message, an exception or a log line.
"""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from authlib.common.urls import url_decode
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from app.domain.errors import OAuthExchangeError, ProviderUnavailableError
from app.domain.models import Credentials, GitProvider, TokenKind
from app.net.client import Upstream, parse_json
from app.security.token_shapes import contains_credential
from app.settings.values import OAuthClient

log = logging.getLogger(__name__)

# Refresh answers that mean "this refresh token is dead for good" (used, expired or revoked):
# the user has to connect again. Anything else (client misconfiguration, an outage) is not the
# user's doing and must not cost them their connection.
REFUSED_REFRESH_REASONS = frozenset({"invalid_grant", "bad_refresh_token"})

# What a token, a code or an OAuth error code may look like; anything else is not passed on.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]{1,4096}")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def code_challenge(code_verifier: str) -> str:
    """The PKCE S256 challenge for ``code_verifier`` (RFC 7636)."""
    challenge: str = create_s256_code_challenge(code_verifier)
    return challenge


@dataclass(frozen=True)
class TokenGrant:
    """What a token endpoint handed out. ``expires_in``: seconds from now, None for tokens that never expire.

    ``refresh_token_expires_in``: seconds the refresh token lives (GitHub App logins, about six
    months); None where the host does not say (GitLab).
    """

    access_token: str
    refresh_token: str | None = None
    expires_in: int | None = None
    scopes: tuple[str, ...] | None = None
    refresh_token_expires_in: int | None = None

    def credentials_at(self, now: datetime, previous: Credentials | None = None) -> Credentials:
        """What this answer, received at ``now``, amounts to; ``previous``: the pair it renews."""
        if self.refresh_token is None and previous is not None:
            # A host that does not rotate refresh tokens leaves the old one (and its expiry) valid.
            refresh_token, refresh_expires_at = previous.refresh_token, previous.refresh_expires_at
        else:
            refresh_token, lifetime = self.refresh_token, self.refresh_token_expires_in
            refresh_expires_at = now + timedelta(seconds=lifetime) if lifetime is not None else None
        return Credentials(
            access_token=self.access_token,
            refresh_token=refresh_token,
            expires_at=now + timedelta(seconds=self.expires_in) if self.expires_in is not None else None,
            refresh_expires_at=refresh_expires_at if refresh_token else None,
        )

    def __repr__(self) -> str:  # tokens must not reach a log line through a repr
        return (
            f"TokenGrant(expires_in={self.expires_in!r}, scopes={self.scopes!r}, "
            f"refresh_token_expires_in={self.refresh_token_expires_in!r})"
        )


class AuthorizationServer(abc.ABC):
    """The OAuth endpoints of one host for this service's registered application."""

    provider: GitProvider
    token_kind: TokenKind  # what a token from this flow is
    name: str  # "GitHub", "GitLab": for messages
    # The refresh request repeats the authorization's redirect_uri (GitLab documents it so).
    refresh_with_redirect_uri: bool = False

    def __init__(self, upstream: Upstream, client: OAuthClient, web_url: str, host: str) -> None:
        self._client = client
        self._web = web_url.rstrip("/")
        self.host = host
        self._http = upstream.to(host, headers={"Accept": "application/json"})

    @property
    def client_id(self) -> str:
        return self._client.client_id

    @abc.abstractmethod
    def authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        """Where to send the user's browser to log in (and choose repositories)."""

    @property
    def installs_first(self) -> bool:
        """True when ``authorization_url`` is an app installation page (a GitHub App), not the authorization.

        Its setup redirect comes back to the callback, which sends the browser on to
        ``user_authorization_url``.
        """
        return False

    def user_authorization_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        """The authorization itself, with the PKCE challenge of ``code_verifier``."""
        return self.authorization_url(state=state, code_verifier=code_verifier, redirect_uri=redirect_uri)

    @property
    @abc.abstractmethod
    def token_url(self) -> str:
        """The token endpoint (code exchange and refresh)."""

    async def exchange_code(self, code: str, *, code_verifier: str, redirect_uri: str) -> TokenGrant:
        """Trade an authorization code for tokens.

        Raises ``OAuthExchangeError`` (the host refused: ``reason`` is its error code) or
        ``ProviderUnavailableError`` (not reached, or an answer that is not a token).
        """
        if not _TOKEN_CHARS.fullmatch(code):
            raise OAuthExchangeError(
                f"{self.name} sent back a sign-in code this service cannot use; start again.",
                reason="invalid_code",
            )
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            **self._client_credentials(),
        )
        return await self._token_request(body, doing="signing in", sent=(code, code_verifier))

    async def refresh(self, refresh_token: str, *, redirect_uri: str) -> TokenGrant:
        """Trade a refresh token for a new pair (the old access and refresh tokens stop working).

        ``redirect_uri``: the callback the login was authorized with, sent where the host wants it
        (``refresh_with_redirect_uri``). Never retried: the refresh token is single use, so a second
        attempt after a lost answer could only be refused. Raises like ``exchange_code``.
        """
        extra = {"redirect_uri": redirect_uri} if self.refresh_with_redirect_uri else {}
        body = prepare_token_request(
            "refresh_token", refresh_token=refresh_token, **extra, **self._client_credentials()
        )
        return await self._token_request(body, doing="renewing access", sent=(refresh_token,))

    @abc.abstractmethod
    async def revoke(
        self, access_token: str, refresh_token: str | None = None, *, whole_grant: bool = False
    ) -> bool:
        """Ask the host to revoke the login; True when it confirmed, False when it did not know the token.

        ``whole_grant``: also end the user's authorization of this application, every other token of
        that account included (GitHub's grant), where the host has such a thing. Only for the last
        integration of the account: several platform users may have connected the same account.
        Raises ``ProviderUnavailableError`` when the host could not be reached or answered otherwise.
        """

    def _client_credentials(self) -> dict[str, str]:
        # client_secret_post: both hosts accept it, and GitHub documents only this form.
        return {"client_id": self._client.client_id, "client_secret": self._client.client_secret.reveal()}

    async def _token_request(self, body: str, *, doing: str, sent: tuple[str, ...]) -> TokenGrant:
        response = await self._http.send("POST", self.token_url, data=dict(url_decode(body)))
        payload = _json_object(response)
        error = payload.get("error") if payload is not None else None
        if isinstance(error, str):
            raise self._refusal(error, payload.get("error_description") if payload else None, sent)
        if response.status_code != 200 or payload is None:
            raise ProviderUnavailableError(
                f"{self.name} gave an unexpected answer (HTTP {response.status_code}) while {doing}; "
                "try again later."
            )
        return self._grant(payload, doing)

    def _grant(self, payload: Mapping[str, Any], doing: str) -> TokenGrant:
        access = payload.get("access_token")
        refresh = payload.get("refresh_token")
        token_type = payload.get("token_type", "bearer")
        if (
            not isinstance(access, str)
            or not _TOKEN_CHARS.fullmatch(access)
            or (refresh is not None and not (isinstance(refresh, str) and _TOKEN_CHARS.fullmatch(refresh)))
            or not isinstance(token_type, str)
            or token_type.lower() != "bearer"
        ):
            raise ProviderUnavailableError(
                f"{self.name} answered without a usable token while {doing}; try again later."
            )
        scope = payload.get("scope")
        return TokenGrant(
            access_token=access,
            refresh_token=refresh or None,
            expires_in=_seconds(payload.get("expires_in")),
            scopes=tuple(s for s in re.split(r"[\s,]+", scope) if s) if isinstance(scope, str) else None,
            refresh_token_expires_in=_seconds(payload.get("refresh_token_expires_in")) if refresh else None,
        )

    def _refusal(self, error: str, description: Any, sent: tuple[str, ...]) -> OAuthExchangeError:
        reason = error if _ERROR_CODE.fullmatch(error) else "unknown_error"
        detail = _safe_description(description, (*sent, self._client.client_secret.reveal()))
        if reason in ("bad_verification_code", "invalid_grant"):
            message = (
                f"{self.name} did not accept the sign-in: the code is wrong, expired or already used. "
                "Start again."
            )
        elif reason in REFUSED_REFRESH_REASONS:
            message = f"{self.name} no longer accepts this login: connect again."
        elif reason in ("incorrect_client_credentials", "invalid_client", "unauthorized_client"):
            message = (
                f"{self.name} did not accept this service's OAuth application; the operator must check "
                "its client id and secret."
            )
        elif reason == "redirect_uri_mismatch":
            message = (
                f"{self.name} says the callback address does not match the OAuth application's settings; "
                "the operator must register this service's /oauth/callback address."
            )
        else:
            message = f"{self.name} refused the sign-in ({reason})" + (f": {detail}" if detail else ".")
        log.info("oauth: %s token endpoint refused the request", self.name, extra={"reason": reason})
        return OAuthExchangeError(message, reason=reason)


def _seconds(value: Any) -> int | None:
    """A lifetime in seconds as the host sent it; None for anything that is not a whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = parse_json(response)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _safe_description(value: Any, secrets: tuple[str, ...]) -> str | None:
    """The host's ``error_description`` when it is safe to show to a user, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 300 or not text.isprintable() or contains_credential(text):
        return None
    if any(secret and secret in text for secret in secrets):  # a host echoing what it was sent
        return None
    return text
