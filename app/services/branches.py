"""The branches of one of an integration's repositories (the picker's second step)."""

from __future__ import annotations

from app.domain.models import Branch, Integration
from app.hosts.base import GitHost
from app.services.credentials import HostAccess


class Branches:
    """Reads branches at the integration's host, with its current token."""

    def __init__(self, access: HostAccess) -> None:
        self._access = access

    async def list(self, integration: Integration, repository_id: str, first: int) -> list[Branch]:
        """The first ``first`` (1..100) branches of the repository ``repository_id``, in the host's order.

        Raises ``NotFoundError`` (gone or no longer covered), ``NeedsReconnectError`` (then the
        integration is marked so) and ``ProviderUnavailableError``.
        """

        async def read(host: GitHost, token: str) -> list[Branch]:
            return await host.list_branches(token, integration, repository_id, first)

        return await self._access.call(integration, read)
