"""Disconnect an integration: remove it here (and, for logins, revoke its token at the host).

One Git account may be connected by several platform users. Each login has a token of its own, so a
disconnect revokes that token; the host's whole grant (GitHub: every token of the account for this
app) is revoked only with the last login of the account on that host. Two disconnects racing may
both leave the grant in place (harmless: it holds no token); a connect racing the last disconnect
may lose its fresh token to the grant, and then asks to be connected again.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from app.domain.errors import (
    HostNotAllowedError,
    ProviderUnavailableError,
    PublicError,
    ServiceUnavailableError,
)
from app.domain.models import AuthMethod, Integration
from app.hosts.registry import HostRegistry
from app.services.credentials import CredentialSource
from app.services.links import RepositoryLinks
from app.storage.integrations import IntegrationRepository
from app.storage.listings import ListingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Disconnected:
    integration: Integration
    host_notified: bool
    message: str


class Disconnect:
    """``disconnectGitIntegration``."""

    def __init__(
        self,
        hosts: HostRegistry,
        integrations: IntegrationRepository,
        credentials: CredentialSource,
        listings: ListingStore,
        links: RepositoryLinks,
    ) -> None:
        self._hosts = hosts
        self._integrations = integrations
        self._credentials = credentials
        self._listings = listings
        self._links = links

    async def disconnect(self, owner: str, integration_id: str) -> Disconnected | None:
        """Delete the integration, its repository links and its tokens; None when there is no such integration.

        A pasted access token belongs to the user, who created it and alone can revoke it: it is only
        forgotten here, and the message says where to revoke it. A login is also revoked at the host;
        when the host cannot be reached the integration is removed all the same and the answer says so.
        """
        current = await self._integrations.get(owner, integration_id)
        if current is None:
            return None
        # Its links go first, while its token can still remove their hooks and keys at the host.
        await self._links.unlink_all(owner, current.id)
        if current.auth_method is AuthMethod.OAUTH:
            result = await self._disconnect_login(owner, current)
        else:
            result = await self._disconnect_token(owner, current)
        if result is not None:
            # The stored repository lists go too; if the database hiccups here, its clean-up index
            # removes the unreachable entries later, so the disconnect itself still stands.
            try:
                await self._listings.delete_for_integration(current.id)
            except ServiceUnavailableError:
                log.warning("could not drop the repository cache", extra={"integration_id": current.id})
        return result

    async def _disconnect_token(self, owner: str, current: Integration) -> Disconnected | None:
        removed = await self._integrations.delete(owner, current.id)
        if removed is None:
            return None
        integration, _credentials = removed
        where = integration.manage_access_url or integration.endpoint.web_url
        return Disconnected(
            integration=integration,
            host_notified=False,
            message=f"Disconnected. The token itself is still valid at {integration.host}; revoke it at "
            f"{where} if it is no longer needed.",
        )

    async def _disconnect_login(self, owner: str, current: Integration) -> Disconnected | None:
        # GitHub revokes a grant only when named by a valid access token: renew an expiring one first.
        # If that fails (refused, host down), revoke with what is stored; removal must not depend on it.
        with contextlib.suppress(PublicError):
            await self._credentials.usable(current)
        removed = await self._integrations.delete(owner, current.id)
        if removed is None:
            return None
        integration, credentials = removed  # the pair stored last, whoever renewed it
        where = integration.manage_access_url or integration.endpoint.web_url
        server = self._hosts.host(integration.endpoint).login
        confirmed: bool | None = None
        # A token that does not decrypt for its record (changed in the database) is sent nowhere.
        if server is not None and credentials is not None:
            try:
                # Revoking GitHub's grant would end every token of this account for the app, also
                # those of other platform users who connected the same account: only the last goes.
                last = not await self._integrations.login_of_account_exists(
                    integration.endpoint, integration.account.id
                )
            except ServiceUnavailableError:
                last = False  # when in doubt, revoke only this connection's token
            try:
                confirmed = await server.revoke(
                    credentials.access_token, credentials.refresh_token, whole_grant=last
                )
            except (ProviderUnavailableError, HostNotAllowedError) as exc:
                log.warning(
                    "oauth: revocation failed", extra={"integration_id": integration.id, "reason": exc.code}
                )
        if confirmed:
            message = f"Disconnected, and {integration.host} revoked this service's access."
        elif confirmed is False:
            message = (
                f"Disconnected. {integration.host} did not recognise this service's access (it may already "
                f"be revoked); check at {where}."
            )
        else:
            message = (
                f"Disconnected here, but {integration.host} could not be told to revoke this service's "
                f"access; revoke it at {where}."
            )
        return Disconnected(integration=integration, host_notified=bool(confirmed), message=message)
