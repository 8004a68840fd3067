"""Connect by login: start at the host's authorization page, finish when the host sends the user back.

``ConnectByLogin.start`` stores a pending sign-in under a random ``state`` (32 bytes, single use,
bound to the caller, 10 minutes) with its PKCE verifier and where the browser returns to, and answers
the host's authorization URL. The host sends the browser to ``{PUBLIC_URL}/oauth/callback`` (or the
frontend calls ``completeGitOAuth``); ``claim`` uses the state up and ``finish`` exchanges the code, checks the token exactly as a pasted one would be checked, and only then
stores the integration. Nothing is stored when any step fails.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from app.domain.errors import (
    BadUserInputError,
    HostNotAllowedError,
    InvalidOAuthStateError,
    InvalidTokenError,
    OAuthExchangeError,
    ProviderUnavailableError,
)
from app.domain.models import AuthMethod, GitProvider, Integration, TokenKind
from app.hosts.registry import HostRegistry
from app.metrics import Metrics, error_code
from app.services.clock import Clock
from app.storage.integrations import IntegrationRepository
from app.storage.oauth_states import OAuthStateRepository, PendingAuthorization

CALLBACK_PATH = "/oauth/callback"
STATE_LIFETIME = timedelta(minutes=10)
STATE_BYTES = 32
VERIFIER_BYTES = 48  # 64 characters: RFC 7636 wants 43 to 128
MAX_RETURN_TO_LENGTH = 2048

# What we hand out (token_urlsafe); anything else is refused before it reaches the database.
_STATE_FORMAT = re.compile(r"[A-Za-z0-9_-]{40,128}")
_INSTALLATION_ID = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True)
class Authorization:
    """Where to send the browser, and the state that comes back with it."""

    url: str
    state: str
    expires_at: datetime


def checked_return_to(value: str | None, allowed_origins: tuple[str, ...]) -> str | None:
    """``returnTo`` when it is an absolute http(s) URL on one of ``FRONTEND_ORIGINS``, else BAD_USER_INPUT.

    The origin must match exactly (scheme, host and port as configured). Everything browsers read
    leniently is refused rather than interpreted: credentials (``https://app@evil``), backslashes,
    control characters and whitespace, scheme-relative ``//evil`` and other schemes.
    """
    if value is None or value == "":
        return None
    allowed = ", ".join(allowed_origins) if allowed_origins else "none are configured (FRONTEND_ORIGINS)"
    problem = f"returnTo must be an address on one of this service's frontend origins ({allowed})."
    if len(value) > MAX_RETURN_TO_LENGTH or any(ch <= " " or ch in "\\\x7f" for ch in value):
        raise BadUserInputError(problem)
    try:
        parts = urlsplit(value)
        valid_port = parts.port is None or parts.port > 0  # .port raises on one that is not a number
    except ValueError:
        valid_port = False
    if not valid_port or parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise BadUserInputError(problem)
    origin = f"{parts.scheme}://{parts.netloc.lower()}"
    if origin not in allowed_origins:
        raise BadUserInputError(problem)
    return value


class ConnectByLogin:
    """``connectGitOAuth``, ``completeGitOAuth`` and the ``/oauth/callback`` behind them."""

    def __init__(
        self,
        hosts: HostRegistry,
        states: OAuthStateRepository,
        integrations: IntegrationRepository,
        clock: Clock,
        metrics: Metrics,
        *,
        public_url: str,
        frontend_origins: tuple[str, ...],
    ) -> None:
        self._hosts = hosts
        self._states = states
        self._integrations = integrations
        self._clock = clock
        self._metrics = metrics
        self._redirect_uri = f"{public_url}{CALLBACK_PATH}"
        self._frontend_origins = frontend_origins

    async def start(self, owner: str, provider: GitProvider, return_to: str | None) -> Authorization:
        """Begin "Connect with GitHub / GitLab" for ``owner``.

        Raises ``OAuthNotConfiguredError`` (no client credentials for the provider) and
        ``BadUserInputError`` (``return_to`` not on a frontend origin).
        """
        server = self._hosts.login(provider)
        checked = checked_return_to(return_to, self._frontend_origins)
        state = secrets.token_urlsafe(STATE_BYTES)
        verifier = secrets.token_urlsafe(VERIFIER_BYTES)
        now = self._clock()
        pending = PendingAuthorization(
            owner=owner,
            provider=provider,
            token_kind=server.token_kind,
            host=server.host,
            code_verifier=verifier,
            redirect_uri=self._redirect_uri,
            return_to=checked,
            created_at=now,
            expires_at=now + STATE_LIFETIME,
        )
        await self._states.create(state, pending)
        url = server.authorization_url(state=state, code_verifier=verifier, redirect_uri=pending.redirect_uri)
        return Authorization(url=url, state=state, expires_at=pending.expires_at)

    async def claim(self, state: str, *, owner: str | None = None) -> PendingAuthorization:
        """Use the sign-in's state up; ``InvalidOAuthStateError`` when it is unknown, used, expired or not ``owner``'s.

        ``owner`` is None on the callback, where the browser carries no JWT and the state alone says
        whose sign-in it is.
        """
        try:
            if not _STATE_FORMAT.fullmatch(state or ""):
                raise InvalidOAuthStateError()
            pending = await self._states.consume(state, self._clock(), owner=owner)
            if pending is None:
                raise InvalidOAuthStateError()
        except Exception as exc:
            # Which host the sign-in was for is unknown without a valid state.
            self._metrics.connect_attempt(None, AuthMethod.OAUTH.value, None, error_code(exc))
            raise
        return pending

    async def finish(
        self, pending: PendingAuthorization, code: str | None, installation_id: str | None
    ) -> Integration:
        """Exchange ``code``, check the token like a pasted one, and store the integration for its owner.

        Raises ``OAuthExchangeError``, ``MissingPermissionsError``, ``InsufficientRoleError`` or
        ``ProviderUnavailableError``; nothing is stored when it raises.
        """
        provider, method, kind = pending.provider.value, AuthMethod.OAUTH.value, pending.token_kind.value
        try:
            integration = await self._exchange_and_store(pending, code, installation_id)
        except Exception as exc:
            self._metrics.connect_attempt(provider, method, kind, error_code(exc))
            raise
        self._metrics.connect_attempt(provider, method, kind, "connected")
        return integration

    async def complete(
        self, owner: str, state: str, code: str | None, installation_id: str | None
    ) -> Integration:
        """``completeGitOAuth``: claim ``owner``'s state, then finish the sign-in."""
        pending = await self.claim(state, owner=owner)
        return await self.finish(pending, code, installation_id)

    async def _exchange_and_store(
        self, pending: PendingAuthorization, code: str | None, installation_id: str | None
    ) -> Integration:
        endpoint = self._hosts.default_endpoint(pending.provider)
        host = self._hosts.host(endpoint)
        server = host.login
        if server is None or server.host != pending.host:
            raise OAuthExchangeError(
                "Login for this Git host is no longer configured on this service; connect with an access token.",
                reason="not_configured",
            )
        if not code:
            raise OAuthExchangeError(
                f"{server.name} did not send a sign-in code back. "
                + (
                    "The GitHub App must request user authorization during installation; ask the operator."
                    if pending.token_kind is TokenKind.GITHUB_APP
                    else "Start again."
                ),
                reason="missing_code",
            )
        grant = await server.exchange_code(
            code, code_verifier=pending.code_verifier, redirect_uri=pending.redirect_uri
        )
        try:
            verified = await host.verify_login(
                grant.access_token, pending.token_kind, _installation_id(installation_id)
            )
        except InvalidTokenError as exc:
            raise OAuthExchangeError(
                f"{server.name} issued a token it then did not accept; start again.",
                reason="token_not_accepted",
            ) from exc
        except HostNotAllowedError as exc:
            raise ProviderUnavailableError(exc.message) from exc
        now = self._clock()
        credentials = grant.credentials_at(now)
        # The token endpoint's expiry wins; without one, what checking the token found.
        verified = replace(verified, expires_at=credentials.expires_at or verified.expires_at)
        credentials = replace(credentials, expires_at=verified.expires_at)
        saved = await self._integrations.save_verified(
            pending.owner, endpoint, AuthMethod.OAUTH, verified, credentials, now
        )
        return saved.integration


def _installation_id(value: str | None) -> str | None:
    # A value that cannot be an id is treated like a forged one: it will not be among the user's.
    if value is None or value == "":
        return None
    return value if _INSTALLATION_ID.fullmatch(value) else "0"
