"""``Repository``, ``Branch`` and the Relay ``RepositoryConnection`` of ``Integration.repositories``.

A repository's global id encodes its integration and the host's id for it (GitHub ``owner/name``,
GitLab the numeric project id), so ``node(id)`` and ``Repository.branches`` find it again — but only
through the caller's own integrations: another user's id resolves like a missing one.
"""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from app.domain import models
from app.domain.urls import checked_link, link_on_host
from app.graphql.answer_cache import ListingUsed
from app.graphql.context import Info
from app.graphql.loaders import ListingKey
from app.graphql.permissions import IsAuthenticated
from app.graphql.selection import selects
from app.graphql.types.branch import (
    AfterArgument,
    BranchConnection,
    FirstArgument,
    SearchArgument,
    resolve_branches,
)
from app.graphql.types.connection import PageRequest, RepositoryPage, normalise_search
from app.graphql.types.node import Node, to_global_id
from app.graphql.types.page_info import PageInfo
from app.services.catalog import HeadRequest, RepositoryList


@strawberry.enum(name="AccessNoticeReason", description="Why repositories may be missing from a list.")
class AccessNoticeReason(enum.Enum):
    SSO_AUTHORIZATION_REQUIRED = strawberry.enum_value(
        "SSO_AUTHORIZATION_REQUIRED",
        description="GitHub left out the repositories of organizations that use SAML single sign-on, "
        "because this connection is not authorized for them: see `organizations` and `url`.",
    )
    LIST_INCOMPLETE = strawberry.enum_value(
        "LIST_INCOMPLETE",
        description="The host's list was longer than the service reads: only part of it is shown.",
    )


@strawberry.type(description="Why repositories may be missing from this list, and where to fix it.")
class AccessNotice:
    reason: AccessNoticeReason = strawberry.field(description="What happened.")
    message: str = strawberry.field(description="What to tell the user, in a sentence or two.")
    url: str | None = strawberry.field(
        description="Where the user fixes it at the host (e.g. authorizes SAML SSO); null when there is no such page."
    )
    organizations: list[str] = strawberry.field(
        description="The organizations concerned: their logins where the host named them, else the "
        "ids it gave. Empty when the notice is not about organizations."
    )

    @classmethod
    def from_domain(cls, notice: models.AccessNotice, web: str) -> AccessNotice:
        """``web``: the integration's host, where the notice's page must be (the URL rule)."""
        return cls(
            reason=AccessNoticeReason(notice.reason.value),
            message=notice.message,
            url=checked_link(notice.url, host=web),
            organizations=list(notice.organizations),
        )


@strawberry.type(
    name="Repository", description="A repository (GitLab: project) an integration can deploy from."
)
class RepositoryType(Node):
    id: strawberry.ID = strawberry.field(
        description="The repository's global id (it names the integration too): for node(id), "
        "linkRepository and Repository.branches."
    )
    name: str = strawberry.field(description='The repository\'s name without its owner, e.g. "api".')
    full_name: str = strawberry.field(description="Owner and name (GitLab: the path with namespace).")
    owner: str = strawberry.field(
        description="The user or organization (GitLab: the namespace path) the repository belongs to."
    )
    private: bool = strawberry.field(description="Not public (GitLab: private or internal).")
    archived: bool = strawberry.field(description="Archived at the host: read-only, no pushes.")
    fork: bool = strawberry.field(description="A fork of another repository.")
    default_branch: str | None = strawberry.field(
        description='The branch the host opens by default, e.g. "main"; null for an empty repository.'
    )
    web_url: str = strawberry.field(description="The repository's page on the integration's host (http(s)).")
    clone_url: str = strawberry.field(description="HTTPS clone URL.")
    pushed_at: datetime | None = strawberry.field(description="Last push (GitLab: last activity).")
    viewer_can_administer: bool = strawberry.field(
        description="The connected account may add webhooks and deploy keys here, which linking the "
        "repository for deploys needs: admin rights on GitHub, the Maintainer role or higher on GitLab."
    )
    integration: strawberry.Private[models.Integration]
    repository: strawberry.Private[models.Repository]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The repository's branches, a page at a time: the default branch first, then "
        "names starting with `search`, then the other matches, each group by name.",
    )
    async def branches(
        self,
        info: Info,
        search: SearchArgument = None,
        first: FirstArgument = 30,
        after: AfterArgument = None,
    ) -> BranchConnection:
        # Nullable as the contract has it: null means the default.
        return await resolve_branches(
            info, self.integration, self.repository, search, 30 if first is None else first, after
        )

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
            # The URL rule again, for listings stored before it (app.domain.urls).
            web_url=link_on_host(repo.web_url, integration.endpoint.web_url, repo.full_name),
            clone_url=link_on_host(repo.clone_url, integration.endpoint.web_url, f"{repo.full_name}.git"),
            pushed_at=repo.pushed_at,
            viewer_can_administer=repo.viewer_can_administer,
            integration=integration,
            repository=repo,
        )


@strawberry.type(description="One repository of a page, with its place in the list.")
class RepositoryEdge:
    cursor: str = strawberry.field(
        description="Where this repository is in the list: pass it as `after` for the repositories after it."
    )
    node: RepositoryType = strawberry.field(description="The repository.")


@strawberry.type(description="A page of an integration's repositories, most recently pushed first.")
class RepositoryConnection:
    edges: list[RepositoryEdge] = strawberry.field(description="This page's repositories, in order.")
    page_info: PageInfo = strawberry.field(description="Whether there is a next page, and its cursor.")
    total: strawberry.Private[int | None]
    repository_access: models.RepositoryAccess = strawberry.field(
        description="SELECTED when the host was given only some repositories: see manageAccessUrl."
    )
    manage_access_url: str | None = strawberry.field(description="Where the user gives access to more.")
    fetched_at: datetime = strawberry.field(description="When the Git host last confirmed this list.")

    @strawberry.field(description="How many repositories match, on all pages.")
    def total_count(self) -> int:
        if self.total is None:  # only unknown when the query did not select it (a first page)
            raise RuntimeError("totalCount was not computed for this page")
        return self.total

    notices: list[AccessNotice] = strawberry.field(
        description="Why repositories may be missing from this list (organizations behind SAML "
        "single sign-on, a list cut short), each with what to tell the user. Empty when nothing is known to be missing."
    )

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
            total=page.total_count,
            repository_access=found.repository_access,
            manage_access_url=checked_link(found.manage_access_url, host=integration.endpoint.web_url),
            fetched_at=found.fetched_at,
            notices=[AccessNotice.from_domain(n, integration.endpoint.web_url) for n in found.notices],
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
    first_page = None
    if search is None and page.after is None:
        first_page = HeadRequest(page.first, total=selects(info, "totalCount"))
    found = await loaders.repositories.load(
        ListingKey(integration.id, search, refresh, first_page, integration)
    )
    if info.context.answer is not None:
        source = found.source
        info.context.answer.used_listing(
            ListingUsed(integration.id, source.key, source.generation, found.fetched_at) if source else None
        )
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
    found = await loaders.repositories.load(ListingKey(integration.id, None, False, None, integration))
    repo = next((r for r in found.repositories if r.id == repository_id), None)
    return RepositoryType.from_domain(integration, repo) if repo is not None else None
