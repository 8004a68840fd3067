"""``GitHubHost``: github.com or a GitHub Enterprise Server, as a ``GitHost``.

What it does is in the modules next to it: ``tokens`` (the user behind a token, scopes, GitHub App
installations), ``fine_grained`` (probing a fine-grained token's permissions), ``repositories``
(the picker's listings and branches), ``installations``, ``oauth`` (this service's OAuth or GitHub
App), ``messages`` and ``constants``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote, urlsplit

from app.domain.errors import NotFoundError, ProviderUnavailableError
from app.domain.links import (
    CloneCredentials,
    CommitStatusRequest,
    LinkSecrets,
    ReadAccess,
    ReadAccessKind,
)
from app.domain.models import (
    Branch,
    GitProvider,
    HostEndpoint,
    Integration,
    Repository,
    TokenKind,
    VerifiedToken,
)
from app.hosts.base import BranchListing, HeadPage, Listing
from app.hosts.deploy import DeliveryAttempt, GrantedReadAccess, HookHealth, IncomingDelivery, LinkTarget
from app.hosts.github import branches, deliveries, deploy_keys, repositories, statuses, webhooks
from app.hosts.github.app import GitHubApp
from app.hosts.github.constants import ACCEPT, API_VERSION, USER_AGENT
from app.hosts.github.fine_grained import verify_fine_grained
from app.hosts.github.messages import REPOSITORY_GONE
from app.hosts.github.repository_scope import RepositoryRequests, RepositoryScope, repository_path
from app.hosts.github.tokens import (
    Session,
    kind_from_prefix,
    read_user,
    sane_token,
    verify_app_login,
    verify_scopes,
)
from app.hosts.oauth import AuthorizationServer
from app.net.client import HostHTTP, Upstream, json_body
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
        self,
        upstream: Upstream,
        endpoint: HostEndpoint,
        *,
        login: AuthorizationServer | None = None,
        app: GitHubApp | None = None,
    ) -> None:
        self._upstream = upstream
        self.endpoint = endpoint
        self.login = login
        self._app = app  # this service's GitHub App, when configured for this GitHub
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

    async def first_page(
        self, token: str, integration: Integration, *, size: int, count: bool
    ) -> HeadPage | None:
        """The most recently pushed repositories (``/user/repos?sort=pushed``) in one round."""
        return await repositories.first_page(
            self._http(token),
            self._api,
            integration,
            size=size,
            count=count,
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

    # --- deploying from a repository (see GitHost) ---------------------------------------------------

    async def link_target(self, token: str, integration: Integration, repository_id: str) -> LinkTarget:
        """``GET /repos/{o}/{r}``: the repository, and ``permissions.admin`` of the token's user."""
        scope = self._scope(token, integration, repository_id)
        response = await scope.http.get(scope.base)
        if response.status_code != 200:
            raise scope.refusal(response, doing="read the repository", permission="metadata:read")
        entry = repositories.parse_repository_entry(json_body(response, scope.http.host), self._web)
        if entry is None:
            raise NotFoundError(REPOSITORY_GONE)
        return LinkTarget(entry.repository, can_administer=entry.admin, required_role="admin")

    async def ensure_webhook(
        self,
        token: str,
        integration: Integration,
        repository: Repository,
        *,
        url: str,
        secret: str,
        hook_id: str | None,
    ) -> str:
        """A ``push`` webhook (tag pushes are pushes on GitHub) with ``content_type: json``."""
        return await webhooks.ensure_webhook(
            self._scope(token, integration, repository), url, secret, hook_id
        )

    async def webhook_health(
        self, token: str, integration: Integration, repository: Repository, hook_id: str
    ) -> HookHealth:
        """``GET …/hooks/{id}``: gone on 404, disabled when ``active`` is false."""
        return await webhooks.webhook_health(self._scope(token, integration, repository), hook_id)

    async def delete_webhook(
        self, token: str, integration: Integration, repository: Repository, hook_id: str
    ) -> None:
        """``DELETE …/hooks/{id}`` (404: already gone)."""
        await webhooks.delete_webhook(self._scope(token, integration, repository), hook_id)

    async def app_read_access(self, repository: Repository) -> ReadAccess | None:
        """The GitHub App's installation on the repository, when the app is configured and installed."""
        if self._app is None:
            return None
        installation = await self._app.installation_for(repository.full_name)
        if installation is None:
            return None
        return ReadAccess(ReadAccessKind.APP_INSTALLATION, installation_id=installation)

    async def create_read_access(
        self, token: str, integration: Integration, repository: Repository, *, title: str
    ) -> GrantedReadAccess:
        """A new read-only Ed25519 deploy key, with GitHub's SSH host keys for ``known_hosts``."""
        scope = self._scope(token, integration, repository)
        known_hosts = await deploy_keys.known_hosts(scope.http, self._api, self._web)
        return await deploy_keys.create_deploy_key(scope, title, known_hosts)

    async def read_access_exists(
        self, token: str, integration: Integration, repository: Repository, access: ReadAccess
    ) -> bool:
        """A deploy key by its id; an app installation is checked when a clone token is minted."""
        if access.kind is ReadAccessKind.APP_INSTALLATION:
            return True
        return await deploy_keys.deploy_key_exists(
            self._scope(token, integration, repository), access.host_id
        )

    async def delete_read_access(
        self, token: str, integration: Integration, repository: Repository, access: ReadAccess
    ) -> None:
        """Remove the deploy key; an app installation belongs to the user and stays."""
        if access.kind is ReadAccessKind.DEPLOY_KEY:
            await deploy_keys.delete_deploy_key(self._scope(token, integration, repository), access.host_id)

    async def clone_credentials(
        self, repository: Repository, access: ReadAccess, secrets: LinkSecrets
    ) -> CloneCredentials | None:
        """An installation token over HTTPS (``x-access-token``), or the deploy key over SSH."""
        if access.kind is ReadAccessKind.APP_INSTALLATION:
            if self._app is None or access.installation_id is None:
                return None
            minted = await self._app.repository_token(access.installation_id, repository.full_name)
            if minted is None:
                return None
            return CloneCredentials(
                url=f"{self._web}/{repository.full_name}.git",
                username="x-access-token",
                password=minted.token,
                expires_at=minted.expires_at,
                kind=ReadAccessKind.APP_INSTALLATION,
            )
        if secrets.ssh_private_key is None:
            raise ProviderUnavailableError("This link has no deploy key stored: link the repository again.")
        return CloneCredentials(
            url=deploy_keys.ssh_clone_url(self._web, repository.full_name),
            ssh_private_key=secrets.ssh_private_key,
            ssh_known_hosts=access.known_hosts,
            kind=ReadAccessKind.DEPLOY_KEY,
        )

    async def set_commit_status(
        self, token: str, integration: Integration, repository: Repository, status: CommitStatusRequest
    ) -> None:
        """``POST …/statuses/{sha}`` (description cut to 140 characters)."""
        await statuses.set_commit_status(self._scope(token, integration, repository), status)

    async def delivery_log(
        self,
        token: str,
        integration: Integration,
        repository: Repository,
        hook_id: str,
        *,
        since: datetime,
        max_pages: int,
    ) -> list[DeliveryAttempt]:
        """``GET …/hooks/{id}/deliveries``, newest first, back to ``since``."""
        scope = self._scope(token, integration, repository)
        return await webhooks.delivery_log(scope, hook_id, since, max_pages)

    async def redeliver(
        self,
        token: str,
        integration: Integration,
        repository: Repository,
        hook_id: str,
        attempt: DeliveryAttempt,
    ) -> None:
        """``POST …/hooks/{id}/deliveries/{delivery id}/attempts``."""
        await webhooks.redeliver(self._scope(token, integration, repository), hook_id, attempt)

    def verify_delivery(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """``X-Hub-Signature-256``: HMAC-SHA256 of the raw body, compared in constant time."""
        return deliveries.verify_delivery(headers, body, secret)

    def parse_delivery(self, headers: Mapping[str, str], body: bytes) -> IncomingDelivery:
        """``ping``, ``push`` (branch or tag) or anything else, with ``X-GitHub-Delivery``."""
        return deliveries.parse_delivery(headers, body)

    def _scope(self, token: str, integration: Integration, repository: Repository | str) -> RepositoryScope:
        # GitHub addresses a repository by its full name, which is also its id here.
        full_name = repository if isinstance(repository, str) else repository.id
        repository_path(self._api, full_name)  # NotFound for an id that is not owner/name
        return RepositoryScope(
            RepositoryRequests(self._http(token), self._api), self._api, full_name, integration
        )

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
