"""Check a stored integration against its host again and record the outcome in its status."""

from __future__ import annotations

from datetime import datetime

from app.domain.errors import (
    InsufficientRoleError,
    InvalidTokenError,
    MissingPermissionsError,
    NeedsReconnectError,
    NotFoundError,
)
from app.domain.models import AuthMethod, Integration, IntegrationStatus
from app.hosts.registry import HostRegistry
from app.services.clock import Clock
from app.services.credentials import CredentialSource
from app.storage.integrations import IntegrationRepository


class VerifyIntegration:
    """``verifyGitIntegration``."""

    def __init__(
        self,
        hosts: HostRegistry,
        integrations: IntegrationRepository,
        credentials: CredentialSource,
        clock: Clock,
    ) -> None:
        self._hosts = hosts
        self._integrations = integrations
        self._credentials = credentials
        self._clock = clock

    async def verify(self, owner: str, integration_id: str) -> Integration | None:
        """Verify the stored token again; None when there is no such integration.

        A token the host no longer accepts, or that lost required permissions, sets
        ``NEEDS_RECONNECT``; a token that passes is ``ACTIVE`` again with refreshed account details
        and permissions. ``ProviderUnavailableError`` leaves the status as it was: an outage is not
        the user's token's fault. A login is renewed first when due and checked as at connect time;
        its tokens are left as they are.
        """
        current = await self._integrations.get(owner, integration_id)
        if current is None:
            return None
        if current.auth_method is AuthMethod.OAUTH:
            return await self._verify_login(owner, current)
        now = self._clock()
        try:
            found = await self._integrations.get_with_credentials(owner, integration_id)
        except NeedsReconnectError:  # its stored token no longer matches its record
            return await self._needs_reconnect(owner, integration_id, now)
        if found is None:
            return None
        integration, credentials = found
        try:
            verified = await self._hosts.host(integration.endpoint).verify_token(credentials.access_token)
        except (InvalidTokenError, MissingPermissionsError):
            return await self._needs_reconnect(owner, integration_id, now)
        if verified.account.id != integration.account.id:  # pragma: no cover - a token cannot change account
            return await self._needs_reconnect(owner, integration_id, now)
        # The token is the same one: record what was found, without re-encrypting and rewriting it.
        return await self._integrations.record_verified(owner, integration, verified, now)

    async def _verify_login(self, owner: str, integration: Integration) -> Integration | None:
        try:
            credentials = await self._credentials.usable(integration)
        except NotFoundError:
            return None
        except NeedsReconnectError:
            return await self._needs_reconnect(owner, integration.id, self._clock())
        resource = integration.resource
        installation_id = (
            resource.ids[0] if resource and resource.kind == "installations" and resource.ids else None
        )
        host = self._hosts.host(integration.endpoint)
        try:
            verified = await host.verify_login(
                credentials.access_token, integration.token_kind, installation_id
            )
        except (InvalidTokenError, MissingPermissionsError, InsufficientRoleError):
            verified = None
        if verified is None or verified.account.id != integration.account.id:
            return await self._needs_reconnect(owner, integration.id, self._clock())
        return await self._integrations.record_verified(owner, integration, verified, self._clock())

    async def _needs_reconnect(self, owner: str, integration_id: str, now: datetime) -> Integration | None:
        return await self._integrations.set_status(
            owner, integration_id, IntegrationStatus.NEEDS_RECONNECT, verified_at=now
        )
