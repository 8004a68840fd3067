"""``GitLabHost``: gitlab.com or a self-managed GitLab instance, as a ``GitHost``.

What it does is in the modules next to it: ``tokens`` (checking a token), ``roles`` (Maintainer or
higher), ``repositories`` (projects and branches for the picker), ``oauth`` (the instance as this
service's authorization server), ``messages`` and ``constants``.
"""

from __future__ import annotations

from app.domain.models import Branch, GitProvider, HostEndpoint, Integration, TokenKind, VerifiedToken
from app.hosts.base import BranchListing, Listing
from app.hosts.gitlab import branches, repositories
from app.hosts.gitlab.constants import API_PATH
from app.hosts.gitlab.tokens import TokenCheck, sanitised
from app.hosts.oauth import AuthorizationServer
from app.net.client import HostHTTP, Upstream
from app.net.hostnames import ParsedHost, host_key_of


def endpoint_of(parsed: ParsedHost) -> HostEndpoint:
    """The endpoint of the instance a user named (``app.net.hostnames.normalize_gitlab_host``)."""
    return HostEndpoint(
        provider=GitProvider.GITLAB,
        host=parsed.host_key,
        web_url=parsed.web_url,
        api_url=f"{parsed.web_url}{API_PATH}",
    )


def configured_endpoint(web_url: str) -> HostEndpoint:
    """The endpoint of the instance at ``GITLAB_URL``."""
    return HostEndpoint(
        provider=GitProvider.GITLAB,
        host=host_key_of(web_url),
        web_url=web_url,
        api_url=f"{web_url}{API_PATH}",
    )


class GitLabHost:
    """One GitLab instance (``endpoint``); ``login`` when this service's OAuth application lives there."""

    # GitLab searches names and paths itself (``search=``): one search costs a page or two, not the list.
    searches_repositories = True
    searches_branches = True

    def __init__(
        self, upstream: Upstream, endpoint: HostEndpoint, *, login: AuthorizationServer | None = None
    ) -> None:
        self._upstream = upstream
        self.endpoint = endpoint
        self.login = login
        self._api_url = endpoint.api_url.rstrip("/")
        self._web_url = endpoint.web_url.rstrip("/")

    async def verify_token(self, token: str, *, oauth: bool = False) -> VerifiedToken:
        """Check a token against the instance and describe it, without changing anything there.

        ``oauth=True`` for an OAuth access token (sent as ``Authorization: Bearer``); otherwise a
        personal, group or project access token (sent as ``PRIVATE-TOKEN``). Raises
        ``InvalidTokenError``, ``MissingPermissionsError`` (scopes), ``InsufficientRoleError`` (below
        Maintainer), ``HostNotAllowedError`` (a redirect, or not GitLab), ``ProviderUnavailableError``.
        """
        http = self._http(sanitised(token), oauth=oauth)
        return await TokenCheck(http, self._api_url, self._web_url).run(oauth=oauth)

    async def verify_login(
        self, token: str, kind: TokenKind, installation_id: str | None = None
    ) -> VerifiedToken:
        """A token from "Connect with GitLab" is checked exactly as a pasted one, as OAuth."""
        return await self.verify_token(token, oauth=True)

    async def list_repositories(
        self,
        token: str,
        integration: Integration,
        *,
        search: str | None = None,
        previous: Listing | None = None,
    ) -> Listing:
        """The projects ``integration`` reaches (matching ``search``), revalidating ``previous`` pages by ETag.

        Raises ``NeedsReconnectError`` (401 / 403 / the token's group or project gone),
        ``RateLimitedError`` or ``ProviderUnavailableError``.
        """
        http = self._http(token, oauth=integration.token_kind is TokenKind.GITLAB_OAUTH)
        return await repositories.list_repositories(http, self._api_url, integration, search, previous)

    async def list_branches(
        self,
        token: str,
        integration: Integration,
        repository_id: str,
        *,
        search: str | None = None,
        previous: BranchListing | None = None,
    ) -> BranchListing:
        """The branches of the project ``repository_id`` (its numeric id) that GitLab finds for
        ``search`` (a superset: operators are not sent, see ``branches.py``), revalidated by ETag."""
        http = self._http(token, oauth=integration.token_kind is TokenKind.GITLAB_OAUTH)
        return await branches.list_branches(http, self._api_url, repository_id, search, previous)

    async def branches_starting_with(
        self, token: str, integration: Integration, repository_id: str, prefix: str
    ) -> list[Branch] | None:
        """None: GitLab searches by itself (``searches_branches``), one request either way."""
        return None

    def _http(self, token: str, *, oauth: bool) -> HostHTTP:
        auth = {"Authorization": f"Bearer {token}"} if oauth else {"PRIVATE-TOKEN": token}
        return self._upstream.to(self.endpoint.host, headers={"Accept": "application/json", **auth})
