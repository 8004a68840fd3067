"""``GitHubHost``: github.com or a GitHub Enterprise Server, as a ``GitHost``.

What it does is in the modules next to it: ``tokens`` (the user behind a token, scopes, GitHub App
installations), ``fine_grained`` (probing a fine-grained token's permissions), ``repositories``
(the picker's listings and branches), ``installations``, ``oauth`` (this service's OAuth or GitHub
App), ``messages`` and ``constants``.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from app.domain.models import Branch, GitProvider, HostEndpoint, Integration, TokenKind, VerifiedToken
from app.hosts.base import BranchListing, Listing
from app.hosts.github import branches, repositories
from app.hosts.github.constants import ACCEPT, API_VERSION, USER_AGENT
from app.hosts.github.fine_grained import verify_fine_grained
from app.hosts.github.tokens import (
    Session,
    kind_from_prefix,
    read_user,
    sane_token,
    verify_app_login,
    verify_scopes,
)
from app.hosts.oauth import AuthorizationServer
from app.net.client import HostHTTP, Upstream
from app.net.hostnames import host_key_of


def configured_endpoint(web_url: str, api_url: str) -> HostEndpoint:
    """The endpoint of the GitHub at ``GITHUB_URL`` / ``GITHUB_API_URL``."""
    return HostEndpoint(
        provider=GitProvider.GITHUB, host=host_key_of(web_url), web_url=web_url, api_url=api_url
    )


class GitHubHost:
    """One GitHub (``endpoint``); ``login`` when this service's OAuth or GitHub App lives there."""

    # GitHub has no name search on /user/repos: the catalog searches the complete list.
    searches_repositories = False
    # Nor on branches: a search is answered from the whole list (or the prefix's matching refs).
    searches_branches = False

    def __init__(
        self, upstream: Upstream, endpoint: HostEndpoint, *, login: AuthorizationServer | None = None
    ) -> None:
        self._upstream = upstream
        self.endpoint = endpoint
        self.login = login
        self._api = endpoint.api_url.rstrip("/")
        self._web = endpoint.web_url.rstrip("/")

    async def verify_token(self, token: str) -> VerifiedToken:
        """Check a personal access token against GitHub before it is stored; changes nothing there.

        Classic tokens need the scopes ``repo`` and ``admin:repo_hook``; fine-grained tokens need
        Administration, Commit statuses, Contents and Webhooks (read and write) on the repositories
        they cover. Raises ``InvalidTokenError`` (malformed, OAuth/App, unknown, expired or revoked),
        ``MissingPermissionsError`` (what is missing, granted and unverified) or
        ``ProviderUnavailableError`` / ``RateLimitedError``.
        """
        token = sane_token(token)
        kind = kind_from_prefix(token)
        session = self._session(token)
        user = await read_user(session, token)
        if kind is None:
            # Unknown prefix (e.g. a legacy 40-hex token): only classic tokens carry the scope header.
            kind = TokenKind.GITHUB_CLASSIC if user.scopes is not None else TokenKind.GITHUB_FINE_GRAINED
        if kind is TokenKind.GITHUB_CLASSIC:
            return verify_scopes(user, TokenKind.GITHUB_CLASSIC, f"{self._web}/settings/tokens")
        return await verify_fine_grained(session, user)

    async def verify_login(
        self, token: str, kind: TokenKind, installation_id: str | None = None
    ) -> VerifiedToken:
        """Check a token from "Connect with GitHub" before it is stored; changes nothing at GitHub.

        ``kind`` names the flow that issued it. An OAuth App token (``GITHUB_OAUTH_APP``, ``gho_``)
        needs ``repo`` and ``admin:repo_hook`` in ``X-OAuth-Scopes``, as a classic token does, and
        reaches all repositories. A GitHub App user token (``GITHUB_APP``, ``ghu_``) reaches the
        repositories of the app's installations the user can access: ``installation_id`` comes from a
        redirect anyone can edit, so it must be among ``GET /user/installations``, and that
        installation must hold the permissions the service needs. Raises ``InvalidTokenError``,
        ``MissingPermissionsError`` or ``ProviderUnavailableError`` / ``RateLimitedError``.
        """
        token = sane_token(token)
        session = self._session(token)
        user = await read_user(session, token)
        if kind is TokenKind.GITHUB_OAUTH_APP:
            return verify_scopes(user, TokenKind.GITHUB_OAUTH_APP, f"{self._web}/settings/applications")
        if kind is TokenKind.GITHUB_APP:
            return await verify_app_login(session, user, installation_id)
        raise ValueError(f"{kind.value} is not a kind of login token")

    async def list_repositories(
        self,
        token: str,
        integration: Integration,
        *,
        search: str | None = None,
        previous: Listing | None = None,
    ) -> Listing:
        """Every repository ``integration`` reaches, revalidating ``previous`` pages by ETag.

        ``search`` is ignored (see ``searches_repositories``). Raises ``NeedsReconnectError`` (401 /
        403), ``RateLimitedError`` or ``ProviderUnavailableError``.
        """
        return await repositories.list_repositories(
            self._http(token),
            self._api,
            integration,
            previous,
            sso_url=self.sso_authorization_url(integration),
        )

    def sso_authorization_url(self, integration: Integration) -> str | None:
        """Where the user authorizes this connection for an organization's SAML SSO (provider-facts:
        classic tokens on the tokens page, OAuth App logins on the app's page); None where GitHub has
        no such page (fine-grained tokens and GitHub App logins follow the organization's own SSO)."""
        kind = integration.token_kind
        if kind is TokenKind.GITHUB_CLASSIC:
            return f"{self._web}/settings/tokens"
        if kind is TokenKind.GITHUB_OAUTH_APP:
            if self.login is not None:
                return f"{self._web}/settings/connections/applications/{quote(self.login.client_id, safe='')}"
            return f"{self._web}/settings/applications"
        return None

    async def list_branches(
        self,
        token: str,
        integration: Integration,
        repository_id: str,
        *,
        search: str | None = None,
        previous: BranchListing | None = None,
    ) -> BranchListing:
        """Every branch of the repository ``repository_id`` (its full name), with protection, in one
        round (``branches.py``). ``search`` is ignored (see ``searches_branches``)."""
        return await branches.list_branches(self._http(token), self._api, repository_id, previous)

    async def branches_starting_with(
        self, token: str, integration: Integration, repository_id: str, prefix: str
    ) -> list[Branch] | None:
        """The branches starting with ``prefix`` through ``git/matching-refs`` (None: not known complete)."""
        return await branches.branches_starting_with(self._http(token), self._api, repository_id, prefix)

    def _session(self, token: str) -> Session:
        return Session(self._http(token), self._api, self._web)

    def _http(self, token: str) -> HostHTTP:
        return self._upstream.to(
            self.endpoint.host,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": ACCEPT,
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
            },
            # Messages name where the token went: api.github.com, not github.com.
            name=urlsplit(self._api).netloc,
        )
