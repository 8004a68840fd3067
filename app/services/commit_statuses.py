"""``setCommitStatus``: the platform's deployer reports a build on a commit of a linked repository."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from app.domain.errors import BadUserInputError, NotFoundError
from app.domain.links import CommitStatusRequest
from app.hosts.base import GitHost
from app.services.credentials import HostAccess
from app.storage.integrations import IntegrationRepository
from app.storage.links import LinkStore

NO_SUCH_LINK = "No repository link with this id."
CONNECTION_GONE = "The connection of this link is gone: link the repository again."
MAX_CONTEXT = 255
MAX_URL = 2048
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def checked(request: CommitStatusRequest) -> CommitStatusRequest:
    """The request with its commit id in lower case; BAD_USER_INPUT for what no host would take."""
    sha = request.sha.strip().lower()
    if not _SHA.match(sha):
        raise BadUserInputError("`sha` must be a full commit id: 40 hexadecimal characters (64 for SHA-256).")
    context = request.context.strip()
    if not context or len(context) > MAX_CONTEXT or not context.isprintable():
        raise BadUserInputError(f"`context` must be 1 to {MAX_CONTEXT} printable characters.")
    target = (request.target_url or "").strip() or None
    if target is not None:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(target) > MAX_URL:
            raise BadUserInputError("`targetUrl` must be an http(s) URL.")
    description = (request.description or "").strip() or None
    return CommitStatusRequest(sha, request.state, context, description, target)


class CommitStatuses:
    """Sets commit statuses at the host with the link's integration token."""

    def __init__(self, access: HostAccess, integrations: IntegrationRepository, links: LinkStore) -> None:
        self._access = access
        self._integrations = integrations
        self._links = links

    async def set(self, owner: str, link_id: str, request: CommitStatusRequest) -> CommitStatusRequest:
        """Report ``request`` on the commit; what was sent (the commit id normalised).

        Raises ``BadUserInputError`` (before anything is sent), ``NotFoundError`` (no such link, the
        connection or repository gone, a commit the repository does not have), ``MissingPermissionsError``,
        ``NeedsReconnectError`` and ``ProviderUnavailableError``.
        """
        request = checked(request)
        link = await self._links.get(owner, link_id)
        if link is None:
            raise NotFoundError(NO_SUCH_LINK)
        integration = await self._integrations.get(owner, link.integration_id)
        if integration is None:
            raise NotFoundError(CONNECTION_GONE)

        async def report(host: GitHost, token: str) -> None:
            await host.set_commit_status(token, integration, link.repository, request)

        await self._access.call(integration, report)
        return request
