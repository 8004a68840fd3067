"""``GitHost``: the one protocol through which services do anything host-specific.

Each host is one package (``app.hosts.github``, ``app.hosts.gitlab``) whose ``client.py`` implements
this protocol; ``app.hosts.registry.HostRegistry`` turns an endpoint into its ``GitHost``. Services
never import a host package and never ask which host they hold: where hosts differ, the protocol
says so (``searches_repositories``) or the host decides for itself.

Planned additions, by the deploy-from-a-repository work: webhooks, deploy keys or tokens, commit
statuses, clone credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from app.domain.models import (
    Branch,
    HostEndpoint,
    Integration,
    Repository,
    RepositoryAccess,
    TokenKind,
    VerifiedToken,
    ordered,
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

    @cached_property
    def repositories(self) -> list[Repository]:
        """Every repository once (a repository may appear in two streams), most recently pushed first."""
        return ordered(repo for page in self.pages for repo in page.repositories)


class GitHost(Protocol):
    """One Git host (github.com, a GitHub Enterprise server, a GitLab instance) as the services see it."""

    endpoint: HostEndpoint
    # The host filters repositories by name itself (GitLab ``search=``): a search is its own listing.
    # Otherwise the catalog filters the complete list.
    searches_repositories: bool
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

    async def list_branches(
        self, token: str, integration: Integration, repository_id: str, first: int
    ) -> list[Branch]:
        """The first ``first`` (1..100) branches of one repository, in the host's order.

        Raises ``NotFoundError`` (gone or no longer covered), ``NeedsReconnectError`` and
        ``ProviderUnavailableError``.
        """
        ...
