"""``GitHost``: the one protocol through which services do anything host-specific.

Each host is one package (``app.hosts.github``, ``app.hosts.gitlab``) whose ``client.py`` implements
this protocol; ``app.hosts.registry.HostRegistry`` turns an endpoint into its ``GitHost``. Services
never import a host package and never ask which host they hold: where hosts differ, the protocol
says so (``searches_repositories``) or the host decides for itself.

Deploying from a repository (``services/links.py`` and its neighbours) adds webhooks, read access for
the builder (deploy keys, deploy tokens, GitHub App installation tokens), commit statuses, the hosts'
delivery logs and the checking of incoming deliveries; the values they return are in ``hosts.deploy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Protocol

from app.domain.links import CloneCredentials, CommitStatusRequest, LinkSecrets, ReadAccess
from app.domain.models import (
    AccessNotice,
    Branch,
    HostEndpoint,
    Integration,
    Repository,
    RepositoryAccess,
    TokenKind,
    VerifiedToken,
    ordered,
)
from app.hosts.deploy import (
    DeliveryAttempt,
    GrantedReadAccess,
    HookHealth,
    IncomingDelivery,
    LinkTarget,
)
from app.hosts.oauth import AuthorizationServer
from app.net.pagination import PageRecord


@dataclass(frozen=True)
class Listing:
    """Every page of every stream of one repository listing, and what the host said about the access.

    The pages keep their ETags (``PageRecord``), so the next listing of the same integration can be
    revalidated page by page: the catalog stores the listing and hands it back as ``previous``.
    """

    pages: tuple[PageRecord, ...]
    # SELECTED when the host says some repositories were left out (a GitHub App installed on
    # "selected repositories"); None when the host does not say and the integration knows best.
    repository_access: RepositoryAccess | None = None
    complete: bool = True  # False when the walk stopped at the page limit
    # Why repositories may be missing (organizations behind SAML SSO, a walk cut short), in the
    # host's words: kept with the listing and answered with it.
    notices: tuple[AccessNotice, ...] = ()

    @cached_property
    def repositories(self) -> list[Repository]:
        """Every repository once (a repository may appear in two streams), most recently pushed first."""
        return ordered(repo for page in self.pages for repo in page.repositories)


@dataclass(frozen=True)
class HeadPage:
    """The first repositories of an integration in the host's own order, most recently pushed first:
    what a picker's first page can be answered from before the whole list is read."""

    repositories: tuple[Repository, ...]  # in the host's order
    more: bool  # the host lists more after these
    total: int | None  # how many repositories the whole list holds, where the host said
    notices: tuple[AccessNotice, ...] = ()


@dataclass(frozen=True)
class BranchListing:
    """Every branch of one repository (matching a search where the host searched), page by page with
    ETags, so that the next read of the same list can be revalidated like a repository listing."""

    pages: tuple[PageRecord, ...]
    complete: bool = True  # False when the walk stopped at the page limit

    @cached_property
    def branches(self) -> list[Branch]:
        """Each branch once, in the order first seen. A branch is protected when any page says so:
        GitHub's names and heads come from one stream and the protected ones from another."""
        found: dict[str, Branch] = {}
        protected: set[str] = set()
        for page in self.pages:
            for branch in page.branches:
                found.setdefault(branch.name, branch)
                if branch.protected:
                    protected.add(branch.name)
        return [
            b if b.protected or b.name not in protected else Branch(b.name, b.commit_sha, True)
            for b in found.values()
        ]


class GitHost(Protocol):
    """One Git host (github.com, a GitHub Enterprise server, a GitLab instance) as the services see it."""

    endpoint: HostEndpoint
    # The host filters repositories by name itself (GitLab ``search=``): a search is its own listing.
    # Otherwise the catalog filters the complete list.
    searches_repositories: bool
    # The host filters branches by name itself (GitLab ``search=``): a branch search is its own listing.
    searches_branches: bool
    # This service's OAuth application at this host, when "Connect with ..." is configured for it:
    # where logins are exchanged, renewed and revoked.
    login: AuthorizationServer | None

    async def verify_token(self, token: str) -> VerifiedToken:
        """Find out what a pasted access token is and whether it may be used; changes nothing there.

        Raises ``InvalidTokenError``, ``MissingPermissionsError``, ``InsufficientRoleError``,
        ``HostNotAllowedError`` or ``ProviderUnavailableError`` (``RateLimitedError``).
        """
        ...

    async def verify_login(
        self, token: str, kind: TokenKind, installation_id: str | None = None
    ) -> VerifiedToken:
        """Check a token from "Connect with ..." (``kind`` names the flow) as a pasted one is checked.

        ``installation_id``: the GitHub App installation the login came back with (anyone can edit
        it, so the host confirms it). Raises like ``verify_token``.
        """
        ...

    async def list_repositories(
        self,
        token: str,
        integration: Integration,
        *,
        search: str | None = None,
        previous: Listing | None = None,
    ) -> Listing:
        """Every repository ``integration`` reaches, revalidating ``previous`` pages by ETag.

        ``search`` is only used when ``searches_repositories``. Raises ``NeedsReconnectError``,
        ``RateLimitedError`` or ``ProviderUnavailableError``.
        """
        ...

    async def first_page(
        self, token: str, integration: Integration, *, size: int, count: bool
    ) -> HeadPage | None:
        """The ``size`` (1..100) most recently pushed repositories, in one round, in the host's order;
        ``count``: say how many there are in all (None where the host cannot tell without the walk).
        None where the host keeps no push order for this integration (a GitHub App installation's
        list, a GitLab project token's one project). Raises like ``list_repositories``.
        """
        ...

    async def list_branches(
        self,
        token: str,
        integration: Integration,
        repository_id: str,
        *,
        search: str | None = None,
        previous: BranchListing | None = None,
    ) -> BranchListing:
        """Every branch of one repository, revalidating ``previous`` pages by ETag.

        ``search`` (names containing it, case-sensitive, no operators) is only used when
        ``searches_branches``: the host's answer may hold more than the matches (the service filters).
        Raises ``NotFoundError`` (gone or no longer covered), ``NeedsReconnectError``,
        ``RateLimitedError`` and ``ProviderUnavailableError``.
        """
        ...

    async def branches_starting_with(
        self, token: str, integration: Integration, repository_id: str, prefix: str
    ) -> list[Branch] | None:
        """Branches whose names start with ``prefix``, in one round, where the host can say so without
        listing every branch: all of them (GitHub ``git/matching-refs``) or the first of them by name
        (GitLab's ``^`` search, one page); None where the host cannot say which come first. Raises like
        ``list_branches``.
        """
        ...

    # --- deploying from a repository ------------------------------------------------------------------
    # Each raises ``NeedsReconnectError`` (the token is refused), ``NotFoundError`` (the repository is
    # gone or no longer covered), ``MissingPermissionsError`` (what is missing, and where) and
    # ``ProviderUnavailableError``, unless its docstring says otherwise.

    async def link_target(self, token: str, integration: Integration, repository_id: str) -> LinkTarget:
        """The repository as the host describes it now, and whether the account may administer it."""
        ...

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
        """Make sure a webhook for pushes and tag pushes posts to ``url`` signed with ``secret``; its id.

        ``hook_id``: the hook made before, updated in place when it still exists. A hook already
        posting to ``url`` (left by an interrupted link) is adopted rather than duplicated.
        """
        ...

    async def webhook_health(
        self, token: str, integration: Integration, repository: Repository, hook_id: str
    ) -> HookHealth:
        """Whether the hook still exists and is delivering."""
        ...

    async def delete_webhook(
        self, token: str, integration: Integration, repository: Repository, hook_id: str
    ) -> None:
        """Remove the hook; one already gone is fine."""
        ...

    async def app_read_access(self, repository: Repository) -> ReadAccess | None:
        """Read access through this service's own app, when one is configured and installed on the
        repository (GitHub App); None otherwise. Uses no user token."""
        ...

    async def create_read_access(
        self, token: str, integration: Integration, repository: Repository, *, title: str
    ) -> GrantedReadAccess:
        """A read-only deploy key (GitHub) or ``read_repository`` deploy token (GitLab) named ``title``."""
        ...

    async def read_access_exists(
        self, token: str, integration: Integration, repository: Repository, access: ReadAccess
    ) -> bool:
        """Whether a deploy key or token made before is still there (and not revoked or expired)."""
        ...

    async def delete_read_access(
        self, token: str, integration: Integration, repository: Repository, access: ReadAccess
    ) -> None:
        """Remove a deploy key or revoke a deploy token; one already gone is fine."""
        ...

    async def clone_credentials(
        self, repository: Repository, access: ReadAccess, secrets: LinkSecrets
    ) -> CloneCredentials | None:
        """What the builder clones with. For an app installation a token is minted (limited to this
        repository, contents read); None when the app is no longer installed there."""
        ...

    async def set_commit_status(
        self, token: str, integration: Integration, repository: Repository, status: CommitStatusRequest
    ) -> None:
        """Report a build result on a commit (the host's own state names and length limits).

        Raises ``NotFoundError`` for a commit the repository does not have, too.
        """
        ...

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
        """The attempts the host logged for the hook since ``since`` (at most ``max_pages`` pages)."""
        ...

    async def redeliver(
        self,
        token: str,
        integration: Integration,
        repository: Repository,
        hook_id: str,
        attempt: DeliveryAttempt,
    ) -> None:
        """Ask the host to send a logged delivery again (same delivery id)."""
        ...

    def verify_delivery(self, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
        """Whether a delivery carries this link's signature (or token), compared in constant time."""
        ...

    def parse_delivery(self, headers: Mapping[str, str], body: bytes) -> IncomingDelivery:
        """Read a signed delivery; ``BadUserInputError`` for one that is not what the host sends."""
        ...
