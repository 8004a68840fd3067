"""``cloneCredentials``: the narrowest credential the host offers, for the platform's builder only.

A GitHub App installation token limited to the repository with contents read (minted per request, one
hour), or the link's read-only deploy key (GitHub) or ``read_repository`` deploy token (GitLab) — never
the user's own token. Where the app was uninstalled since the link was made, the link is checked again
(``RepositoryLinks.link``), which falls back to a deploy key. Every issuance writes one audit log line
naming who got what for which repository, and no secret.
"""

from __future__ import annotations

import logging

from app.domain.errors import NotFoundError, ProviderUnavailableError
from app.domain.links import CloneCredentials, LinkSecrets, RepositoryLink
from app.hosts.registry import HostRegistry
from app.security.auth import Caller
from app.services.links import NO_SUCH_LINK, RepositoryLinks
from app.storage.integrations import IntegrationRepository
from app.storage.links import LinkStore

audit = logging.getLogger("app.audit")

CONNECTION_GONE = "The connection of this link is gone: link the repository again."


class CloneCredentialIssuer:
    def __init__(
        self,
        hosts: HostRegistry,
        integrations: IntegrationRepository,
        links: LinkStore,
        linking: RepositoryLinks,
    ) -> None:
        self._hosts = hosts
        self._integrations = integrations
        self._links = links
        self._linking = linking

    async def issue(self, caller: Caller, link_id: str) -> CloneCredentials:
        """Credentials for the link ``link_id`` of the user ``caller`` acts for.

        Raises ``NotFoundError`` (no such link, or its connection is gone), and while a new read access
        has to be set up, what linking raises (``ProviderUnavailableError``, ``NeedsReconnectError``, ...).
        """
        owner = caller.user_id
        found = await self._links.with_secrets(owner, link_id)
        if found is None:
            raise NotFoundError(NO_SUCH_LINK)
        link, secrets = found
        issued = await self._credentials(owner, link, secrets)
        if issued is None:  # the app no longer covers the repository: check the link, then try again
            await self._linking.link(owner, link.integration_id, link.repository.id, link.branch)
            found = await self._links.with_secrets(owner, link_id)
            if found is None:
                raise NotFoundError(NO_SUCH_LINK)
            link, secrets = found
            issued = await self._credentials(owner, link, secrets)
        if issued is None:
            raise ProviderUnavailableError(
                f"{link.host} did not issue a clone credential for {link.repository.full_name}; try again later."
            )
        audit.info(
            "clone credentials issued",
            extra={
                "audit": "clone_credentials",
                "link_id": link.id,
                "owner": owner,
                "caller": caller.subject,
                "host": link.host,
                "repository": link.repository.full_name,
                "credential": issued.kind.value,
                "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
            },
        )
        return issued

    async def _credentials(
        self, owner: str, link: RepositoryLink, secrets: LinkSecrets
    ) -> CloneCredentials | None:
        integration = await self._integrations.get(owner, link.integration_id)
        if integration is None:
            raise NotFoundError(CONNECTION_GONE)
        if link.read_access is None:
            return None  # set up again by the caller
        return await self._hosts.host(integration.endpoint).clone_credentials(
            link.repository, link.read_access, secrets
        )
