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
        """The branches whose names start with ``prefix``, in one round, where the host can say so
        without listing every branch (GitHub ``git/matching-refs``); None where it cannot or where
        its answer would not be known to be complete. Raises like ``list_branches``.
        """
        ...
