"""``GitLabHost``: gitlab.com or a self-managed GitLab instance, as a ``GitHost``.

What it does is in the modules next to it: ``tokens`` (checking a token), ``roles`` (Maintainer or
higher), ``repositories`` (projects and branches for the picker), ``oauth`` (the instance as this
service's authorization server), ``messages`` and ``constants``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from app.domain.errors import NotFoundError
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
from app.hosts.gitlab import branches, deliveries, deploy_tokens, messages, repositories, webhooks
from app.hosts.gitlab.constants import API_PATH, MAINTAINER, REQUIRED_ROLE
from app.hosts.gitlab.project_scope import ProjectScope
from app.hosts.gitlab.tokens import TokenCheck, sanitised
from app.hosts.oauth import AuthorizationServer
from app.net.client import HostHTTP, Upstream, json_body
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

    async def first_page(
        self, token: str, integration: Integration, *, size: int, count: bool
    ) -> HeadPage | None:
        """The projects with the latest activity in one round (``x-total`` counts them up to 10,000)."""
        http = self._http(token, oauth=integration.token_kind is TokenKind.GITLAB_OAUTH)
        return await repositories.first_page(http, self._api_url, integration, size=size)

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
        """The first names starting with ``prefix`` by name, from GitLab's ``^`` search (``branches.py``)."""
        http = self._http(token, oauth=integration.token_kind is TokenKind.GITLAB_OAUTH)
        return await branches.branches_starting_with(http, self._api_url, repository_id, prefix)

    # --- deploying from a repository (see GitHost) ---------------------------------------------------

    async def link_target(self, token: str, integration: Integration, repository_id: str) -> LinkTarget:
        """``GET /projects/:id``: the project, and whether the token's user is Maintainer or higher there."""
        scope = self._scope(token, integration, repository_id)
        response = await scope.http.get(scope.url())
        if response.status_code != 200:
            raise scope.refusal(response, doing="read the project")
        body = json_body(response, scope.http.host)
        repository = repositories.parse_project(body, self._web_url, listed_as_maintainer=False)
        if repository is None:
            raise NotFoundError(messages.PROJECT_GONE)
        # When GitLab names no level (access inherited in a way it does not report), the hook request
        # itself will tell: a user who may well be allowed is not refused here.
        level = repositories.access_level(body)
        return LinkTarget(
            repository, can_administer=level is None or level >= MAINTAINER, required_role=REQUIRED_ROLE
        )

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
        """A project hook for push and tag push events whose ``X-Gitlab-Token`` is ``secret``."""
        return await webhooks.ensure_webhook(
            self._scope(token, integration, repository), url, secret, hook_id
        )

    async def webhook_health(
        self, token: str, integration: Integration, repository: Repository, hook_id: str
    ) -> HookHealth:
        """``GET /projects/:id/hooks/:hook_id``: gone on 404, disabled by ``alert_status``."""
        return await webhooks.webhook_health(self._scope(token, integration, repository), hook_id)

    async def delete_webhook(
        self, token: str, integration: Integration, repository: Repository, hook_id: str
    ) -> None:
        """``DELETE /projects/:id/hooks/:hook_id`` (404: already gone)."""
        await webhooks.delete_webhook(self._scope(token, integration, repository), hook_id)

    async def app_read_access(self, repository: Repository) -> ReadAccess | None:
        """GitLab has no app of this service: the builder always gets a deploy token."""
        return None

    async def create_read_access(
        self, token: str, integration: Integration, repository: Repository, *, title: str
    ) -> GrantedReadAccess:
        """A deploy token with ``read_repository`` only."""
        return await deploy_tokens.create_deploy_token(self._scope(token, integration, repository), title)

    async def read_access_exists(
        self, token: str, integration: Integration, repository: Repository, access: ReadAccess
    ) -> bool:
        """The deploy token still exists and is neither revoked nor expired."""
        scope = self._scope(token, integration, repository)
        return await deploy_tokens.deploy_token_usable(scope, access.host_id)

    async def delete_read_access(
        self, token: str, integration: Integration, repository: Repository, access: ReadAccess
    ) -> None:
        """Revoke the deploy token (404: already gone)."""
        await deploy_tokens.revoke_deploy_token(self._scope(token, integration, repository), access.host_id)

    async def clone_credentials(
        self, repository: Repository, access: ReadAccess, secrets: LinkSecrets
    ) -> CloneCredentials | None:
        """The project's HTTPS URL with the deploy token's user name and the token."""
        if secrets.deploy_token is None or access.username is None:
            return None
        return CloneCredentials(
            url=repository.clone_url,
            username=access.username,
            password=secrets.deploy_token,
            expires_at=access.expires_at,
            kind=ReadAccessKind.DEPLOY_TOKEN,
        )

    async def set_commit_status(
        self, token: str, integration: Integration, repository: Repository, status: CommitStatusRequest
    ) -> None:
        """``POST /projects/:id/statuses/:sha`` (FAILURE and ERROR are both ``failed``)."""
        await deploy_tokens.set_commit_status(self._scope(token, integration, repository), status)

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
        """``GET /projects/:id/hooks/:hook_id/events`` (GitLab keeps the last 7 days)."""
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
        """``POST /projects/:id/hooks/:hook_id/events/:hook_event_id/resend`` (GitLab 17.4+)."""
        await webhooks.redeliver(self._scope(token, integration, repository), hook_id, attempt)

    def verify_delivery(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """``X-Gitlab-Token`` equals the secret, compared in constant time."""
        return deliveries.verify_delivery(headers, body, secret)

    def parse_delivery(self, headers: Mapping[str, str], body: bytes) -> IncomingDelivery:
        """``Push Hook`` and ``Tag Push Hook``; any other event is acknowledged and dropped."""
        return deliveries.parse_delivery(headers, body)

    def _scope(self, token: str, integration: Integration, repository: Repository | str) -> ProjectScope:
        # The numeric id addresses the project; its path is what messages name.
        project_id = repository if isinstance(repository, str) else repository.id
        path = f"project {project_id}" if isinstance(repository, str) else repository.full_name
        if not project_id.isdigit():
            raise NotFoundError("No repository with this id.")
        http = self._http(token, oauth=integration.token_kind is TokenKind.GITLAB_OAUTH)
        return ProjectScope(http, self._api_url, project_id, integration, path=path)

    def _http(self, token: str, *, oauth: bool) -> HostHTTP:
        auth = {"Authorization": f"Bearer {token}"} if oauth else {"PRIVATE-TOKEN": token}
        return self._upstream.to(self.endpoint.host, headers={"Accept": "application/json", **auth})
