"""The token to use for an integration right now, and acting at its host with it.

``CredentialSource.usable`` hands out an integration's current credentials: login (OAuth) tokens that
expire soon are renewed first, once across all replicas (``token_refresh``); pasted access tokens
are used as stored. ``HostAccess.call`` is what every use case that acts at a host on an
integration's behalf goes through: a NEEDS_RECONNECT integration is not sent anywhere, and a host
refusing the token marks the integration NEEDS_RECONNECT.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.domain.errors import NeedsReconnectError, NotFoundError
from app.domain.models import AuthMethod, Credentials, Integration, IntegrationStatus
from app.hosts.base import GitHost
from app.hosts.registry import HostRegistry
from app.services.token_refresh import TokenRefresher
from app.storage.integrations import IntegrationRepository

log = logging.getLogger(__name__)

T = TypeVar("T")


def require_active(integration: Integration) -> None:
    """``NeedsReconnectError`` for an integration whose token the host refused before."""
    if integration.status is IntegrationStatus.NEEDS_RECONNECT:
        raise NeedsReconnectError()


class CredentialSource:
    """Hands out the credentials of an integration, renewing a login's first when due."""

    def __init__(self, integrations: IntegrationRepository, refresher: TokenRefresher) -> None:
        self._integrations = integrations
        self._refresher = refresher

    async def usable(self, integration: Integration) -> Credentials:
        """The integration's current credentials, decrypted.

        Raises ``NotFoundError``, and for logins ``NeedsReconnectError`` or ``ProviderUnavailableError``.
        """
        if integration.auth_method is AuthMethod.OAUTH:
            return await self._refresher.fresh_credentials(integration)
        found = await self._integrations.get_with_credentials(integration.owner, integration.id)
        if found is None:
            raise NotFoundError()
        return found[1]


class HostAccess:
    """Acting at an integration's host with its token, the same way for every use case."""

    def __init__(
        self, hosts: HostRegistry, credentials: CredentialSource, integrations: IntegrationRepository
    ) -> None:
        self._hosts = hosts
        self._credentials = credentials
        self._integrations = integrations

    async def call(self, integration: Integration, action: Callable[[GitHost, str], Awaitable[T]]) -> T:
        """``action(host, access token)`` for an active integration.

        Raises ``NeedsReconnectError`` before anything is sent when the integration needs reconnecting,
        and marks it so when the host refuses its token; other errors pass through.
        """
        require_active(integration)
        credentials = await self._credentials.usable(integration)
        host = self._hosts.host(integration.endpoint)
        try:
            try:
                return await action(host, credentials.access_token)
            except NeedsReconnectError:
                renewed = await self._renewed_since(integration, credentials.access_token)
                if renewed is None:
                    raise
                # A refresh by another request spent this one's token meanwhile (GitHub and GitLab
                # invalidate the old access token when it is refreshed): not a refusal of the login.
                return await action(host, renewed)
        except NeedsReconnectError:
            await self._integrations.set_status(
                integration.owner, integration.id, IntegrationStatus.NEEDS_RECONNECT
            )
            log.info(
                "integration needs reconnecting: the host refused its token",
                extra={"integration_id": integration.id},
            )
            raise

    async def _renewed_since(self, integration: Integration, spent: str) -> str | None:
        """The login's current access token when it is no longer ``spent``, else None."""
        if integration.auth_method is not AuthMethod.OAUTH:
            return None
        current = await self._credentials.usable(integration)
        return current.access_token if current.access_token != spent else None
