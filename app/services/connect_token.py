"""Connect by access token: check the token against its host, then store it — never the other way round."""

from __future__ import annotations

from app.domain.errors import InvalidTokenError
from app.domain.models import AuthMethod, Credentials, GitProvider, Integration, TokenKind
from app.hosts.registry import HostRegistry
from app.metrics import Metrics, error_code
from app.services.clock import Clock
from app.storage.integrations import IntegrationRepository


class ConnectByToken:
    """``connectGitToken`` and ``updateGitToken``."""

    def __init__(
        self,
        hosts: HostRegistry,
        integrations: IntegrationRepository,
        clock: Clock,
        metrics: Metrics,
        *,
        max_integrations: int,
    ) -> None:
        self._hosts = hosts
        self._integrations = integrations
        self._clock = clock
        self._metrics = metrics
        self._max_integrations = max_integrations

    async def connect(self, owner: str, provider: GitProvider, token: str, host: str | None) -> Integration:
        """Verify ``token`` on ``host`` (the provider's default when None) and store it for ``owner``.

        Connecting the same account on the same host again updates that integration; a new one beyond
        ``max_integrations`` raises ``LimitReachedError``. Raises the ``ConnectError`` subclasses and
        ``ProviderUnavailableError``; nothing is stored when it raises.
        """
        method = AuthMethod.ACCESS_TOKEN.value
        kind: TokenKind | None = None  # unknown until the host has described the token
        try:
            endpoint = await self._hosts.endpoint_for(provider, host)
            verified = await self._hosts.host(endpoint).verify_token(token)
            kind = verified.token_kind
            saved = await self._integrations.save_verified(
                owner,
                endpoint,
                AuthMethod.ACCESS_TOKEN,
                verified,
                Credentials(access_token=token.strip(), expires_at=verified.expires_at),
                self._clock(),
                limit=self._max_integrations,
            )
        except Exception as exc:
            self._metrics.connect_attempt(
                provider.value, method, kind.value if kind else None, error_code(exc)
            )
            raise
        self._metrics.connect_attempt(provider.value, method, verified.token_kind.value, "connected")
        return saved.integration

    async def replace(self, owner: str, integration_id: str, token: str) -> Integration | None:
        """Replace the token of an integration after the same checks; None when there is no such integration.

        The new token must act as the same account: a token of another account is refused rather than
        silently turning the integration into a different one.
        """
        current = await self._integrations.get(owner, integration_id)
        if current is None:
            return None
        if current.auth_method is not AuthMethod.ACCESS_TOKEN:
            raise InvalidTokenError(
                "This integration was connected by login; connect it again by login instead of pasting a token."
            )
        verified = await self._hosts.host(current.endpoint).verify_token(token)
        if verified.account.id != current.account.id:
            raise InvalidTokenError(
                f"This token belongs to {verified.account.login}, but the integration is for "
                f"{current.account.login}; connect it as a new integration instead."
            )
        return await self._integrations.replace_token(
            current,
            verified,
            Credentials(access_token=token.strip(), expires_at=verified.expires_at),
            self._clock(),
        )
