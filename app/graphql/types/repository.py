"""``Repository``, ``Branch`` and the Relay ``RepositoryConnection`` of ``Integration.repositories``.

A repository's global id encodes its integration and the host's id for it (GitHub ``owner/name``,
GitLab the numeric project id), so ``node(id)`` and ``Repository.branches`` find it again — but only
through the caller's own integrations: another user's id resolves like a missing one.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import models
from app.graphql.context import Info
from app.graphql.loaders import BranchesKey, ListingKey
from app.graphql.types.connection import PageRequest, RepositoryPage, check_first, normalise_search
from app.graphql.types.node import Node, to_global_id
from app.services.catalog import RepositoryList


@strawberry.type(name="Branch", description="A branch of a repository and the commit it points at.")
class BranchType:
    name: str
    commit_sha: str
    protected: bool


@strawberry.type(
    name="Repository", description="A repository (GitLab: project) an integration can deploy from."
)
class RepositoryType(Node):
    id: strawberry.ID
    name: str
    full_name: str = strawberry.field(description="Owner and name (GitLab: the path with namespace).")
    owner: str
    private: bool = strawberry.field(description="Not public (GitLab: private or internal).")
    archived: bool
    fork: bool
    default_branch: str | None
    web_url: str
    clone_url: str = strawberry.field(description="HTTPS clone URL.")
    pushed_at: datetime | None = strawberry.field(description="Last push (GitLab: last activity).")
    integration: strawberry.Private[models.Integration]
    repository: strawberry.Private[models.Repository]

    @strawberry.field(description="The repository's branches (first 1..100), in the host's order.")
    async def branches(self, info: Info, first: int | None = 100) -> list[BranchType]:
        # Nullable as the contract has it: null means the default.
        first = check_first(100 if first is None else first)
        loaders = await info.context.loaders_for_caller()
        integration = self.integration
        found = await loaders.branches.load(
            BranchesKey(integration.id, self.repository.id, first, integration)
        )
        return [BranchType(name=b.name, commit_sha=b.commit_sha, protected=b.protected) for b in found]

    @classmethod
    def from_domain(cls, integration: models.Integration, repo: models.Repository) -> RepositoryType:
        return cls(
            id=repository_global_id(integration.id, repo.id),
            name=repo.name,
            full_name=repo.full_name,
            owner=repo.owner,
            private=repo.private,
            archived=repo.archived,
            fork=repo.fork,
            default_branch=repo.default_branch,
            web_url=repo.web_url,
            clone_url=repo.clone_url,
            pushed_at=repo.pushed_at,
            integration=integration,
            repository=repo,
        )


@strawberry.type
class RepositoryEdge:
    cursor: str
    node: RepositoryType


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A page of an integration's repositories, most recently pushed first.")
class RepositoryConnection:
    edges: list[RepositoryEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="How many repositories match, on all pages.")
    repository_access: models.RepositoryAccess = strawberry.field(
        description="SELECTED when the host was given only some repositories: see manageAccessUrl."
    )
    manage_access_url: str | None = strawberry.field(description="Where the user gives access to more.")
    fetched_at: datetime = strawberry.field(description="When the Git host last confirmed this list.")

    @classmethod
    def build(
        cls, integration: models.Integration, found: RepositoryList, page: RepositoryPage
    ) -> RepositoryConnection:
        return cls(
            edges=[
                RepositoryEdge(cursor=cursor, node=RepositoryType.from_domain(integration, repo))
                for cursor, repo in page.edges
            ],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
            total_count=page.total_count,
            repository_access=found.repository_access,
            manage_access_url=found.manage_access_url,
            fetched_at=found.fetched_at,
        )


def repository_global_id(integration_id: str, repository_id: str) -> strawberry.ID:
    return to_global_id("Repository", f"{integration_id}:{repository_id}")


async def resolve_repositories(
    info: Info,
    integration: models.Integration,
    search: str | None,
    first: int,
    after: str | None,
    refresh: bool,
) -> RepositoryConnection:
    """``Integration.repositories``: one listing per (integration, search, refresh) per request."""
    search = normalise_search(search)
    page = PageRequest.parse(first, after)  # before any upstream work
    loaders = await info.context.loaders_for_caller()
    loaders.integration.prime(integration.id, integration)
    found = await loaders.repositories.load(ListingKey(integration.id, search, refresh, integration))
    return RepositoryConnection.build(integration, found, page.slice(found))


async def resolve_repository_node(info: Info, local_id: str) -> RepositoryType | None:
    """``node(id)`` for a repository id: found in the caller's integration's (cached) list, or None."""
    integration_id, sep, repository_id = local_id.partition(":")
    if not sep or not integration_id or not repository_id:
        return None
    loaders = await info.context.loaders_for_caller()
    integration = await loaders.integration.load(integration_id)
    if integration is None:
        return None
    found = await loaders.repositories.load(ListingKey(integration.id, None, False, integration))
    repo = next((r for r in found.repositories if r.id == repository_id), None)
    return RepositoryType.from_domain(integration, repo) if repo is not None else None
