"""Connect by login: start at the host's authorization page; only the user who started finishes.

``ConnectByLogin.start`` stores a pending sign-in under a random ``state`` (32 bytes, single use,
bound to the caller, 10 minutes) with its PKCE verifier and where the browser returns to, and answers
the host's authorization URL. The host sends the browser to ``{PUBLIC_URL}/oauth/callback``, which
never finishes anything: it cannot know which platform user the browser belongs to, so finishing
there would let anyone who starts a login and forwards the host's URL collect a victim's account.
It hands ``state`` and ``code`` on to ``returnTo`` (``app.oauth_callback``), and the frontend, signed
in, calls ``completeGitOAuth``: ``complete`` uses up the state only when it is the caller's, exchanges
the code with the verifier, checks the token exactly as a pasted one would be checked, and only then
stores the integration. Nothing is stored when any step fails.

GitHub App: the login starts at the app's installation page, which takes no PKCE challenge. Its
setup redirect (``installation_id``, ``setup_action``) comes back to the callback, which notes the
installation on the state (``continue_after_installation``) and sends the browser on to the
authorization with the challenge; only a code from there is exchanged. A code GitHub issued during
the installation ("Request user authorization (OAuth) during installation") was issued without our
challenge: it is remembered and never exchanged, whatever state it is later presented with.
"""

from __future__ import annotations

import contextlib
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
    LimitReachedError,
    OAuthExchangeError,
    ProviderUnavailableError,
)
from app.domain.models import AuthMethod, GitProvider, Integration
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
        max_integrations: int,
    ) -> None:
        self._hosts = hosts
        self._max_integrations = max_integrations
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

    async def returned(self, state: str) -> PendingAuthorization:
        """The sign-in the host sent the browser back for, without using it up (the callback's view).

        Raises ``InvalidOAuthStateError`` (unknown, used or expired) or ``ServiceUnavailableError``.
        """
        if not _STATE_FORMAT.fullmatch(state or ""):
            raise InvalidOAuthStateError()
        pending = await self._states.find(state, self._clock())
        if pending is None:
            raise InvalidOAuthStateError()
        return pending

    async def continue_after_installation(
        self, state: str | None, installation_id: str | None, code: str | None
    ) -> str:
        """A GitHub App's setup redirect: where to send the browser next (the authorization with PKCE).

        ``installation_id`` is kept with the state (GitHub confirms it later through the user's
        token); ``code``, issued without our challenge, is remembered so that it is never exchanged.
        Raises ``InvalidOAuthStateError`` for a state that is unknown, used, expired or not a GitHub
        App sign-in.
        """
        now = self._clock()
        usable_state = state is not None and _STATE_FORMAT.fullmatch(state) is not None
        pending = None
        if usable_state and state is not None:
            pending = await self._states.note_installation(
                state, now, _installation_id(installation_id), code or None
            )
        if pending is None:
            if code:
                await self._states.remember_installation_code(code, now)
            if state is None:
                raise InvalidOAuthStateError(
                    "GitHub finished the installation without saying which sign-in it belongs to: "
                    "connect again from the app to finish."
                )
            raise InvalidOAuthStateError()
        server = self._hosts.login_at(self._hosts.default_endpoint(pending.provider))
        if server is None or not server.installs_first or server.host != pending.host:
            raise InvalidOAuthStateError(
                "This sign-in was not started as a GitHub App installation: start again from the app."
            )
        assert state is not None
        return server.user_authorization_url(
            state=state, code_verifier=pending.code_verifier, redirect_uri=pending.redirect_uri
        )

    async def end(self, state: str) -> PendingAuthorization | None:
        """Use the state up because the flow ended at the host (cancelled, refused, awaiting approval).

        None when it is unknown, used or expired (nothing to end).
        """
        if not _STATE_FORMAT.fullmatch(state or ""):
            return None
        return await self._states.consume(state, self._clock())

    async def complete(
        self, owner: str, state: str, code: str | None, installation_id: str | None
    ) -> Integration:
        """``completeGitOAuth``: use up ``owner``'s state, exchange ``code``, check and store the login.

        Raises ``InvalidOAuthStateError`` (unknown, used, expired or another user's: then it is not
        used up), ``OAuthExchangeError``, ``MissingPermissionsError``, ``InsufficientRoleError``,
        ``LimitReachedError`` or ``ProviderUnavailableError``; nothing is stored when it raises.
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
        provider, method, kind = pending.provider.value, AuthMethod.OAUTH.value, pending.token_kind.value
        try:
            integration = await self._exchange_and_store(
                pending, code, _installation_id(installation_id) or pending.installation_id
            )
        except Exception as exc:
            self._metrics.connect_attempt(provider, method, kind, error_code(exc))
            raise
        self._metrics.connect_attempt(provider, method, kind, "connected")
        return integration

    def ended_at_host(self, pending: PendingAuthorization, code: str) -> None:
        """Count a sign-in the host ended (``ACCESS_DENIED``, ``INSTALLATION_PENDING_APPROVAL``, ...)."""
        self._metrics.connect_attempt(
            pending.provider.value, AuthMethod.OAUTH.value, pending.token_kind.value, code
        )

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
                f"{server.name} did not send a sign-in code back. Start again.", reason="missing_code"
            )
        if server.installs_first and not pending.authorization_started:
            # The code can only be one GitHub issued during the installation, without our challenge.
            raise OAuthExchangeError(
                "GitHub has not sent this sign-in back to the service after the installation: the GitHub "
                f"App's Setup URL must be {self._redirect_uri}. Start again.",
                reason="installation_not_returned",
            )
        if await self._states.is_installation_code(code):
            raise OAuthExchangeError(
                "This sign-in code was issued during a GitHub App installation, without this service's "
                "PKCE challenge, so it is never exchanged. Start again.",
                reason="installation_code",
            )
        grant = await server.exchange_code(
            code, code_verifier=pending.code_verifier, redirect_uri=pending.redirect_uri
        )
        try:
            verified = await host.verify_login(grant.access_token, pending.token_kind, installation_id)
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
        try:
            saved = await self._integrations.save_verified(
                pending.owner,
                endpoint,
                AuthMethod.OAUTH,
                verified,
                credentials,
                now,
                limit=self._max_integrations,
            )
        except LimitReachedError:
            # Not kept, so not left valid at the host either: this token only, not the whole grant,
            # which another platform user's integration of the same account may still use.
            with contextlib.suppress(ProviderUnavailableError):
                await server.revoke(credentials.access_token, credentials.refresh_token)
            raise
        return saved.integration


def _installation_id(value: str | None) -> str | None:
    # A value that cannot be an id is treated like a forged one: it will not be among the user's.
    if value is None or value == "":
        return None
    return value if _INSTALLATION_ID.fullmatch(value) else "0"
