"""GitHub: which repositories an integration may deploy from, and their branches.

Which endpoint depends on how the integration was connected:

- GitHub App (login through an app installation): the user's installations of the app
  (``/user/installations``) and each one's repositories (``/user/installations/{id}/repositories``),
  all or selected as the installation says. Installations known from the connection are listed at
  once while ``/user/installations`` is asked for new ones (one ETag-revalidated request), so a
  cold listing still takes two rounds.
- OAuth App login and classic token: ``/user/repos`` with owner, collaborator and organisation-member
  affiliation.
- Fine-grained token: ``/user/repos`` without a filter: exactly what the token can reach.

Pages are asked for in ``full_name`` order, not ``pushed``: the service sorts the full list itself,
and a stable upstream order means a push changes one page (one 200 among 304s on revalidation)
instead of shifting every page, and cannot make a repository slip between pages while they are
fetched concurrently.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.errors import NeedsReconnectError, NotFoundError, ProviderUnavailableError
from app.domain.models import Branch, Integration, Repository, RepositoryAccess, TokenKind
from app.hosts.base import Listing
from app.hosts.github import messages
from app.hosts.github.constants import PER_PAGE
from app.hosts.github.installations import PATH as INSTALLATIONS
from app.hosts.github.installations import parse_installations
from app.hosts.parsing import branch_list, parse_timestamp
from app.net.client import HostHTTP
from app.net.pagination import CheckResponse, PageContent, PageRecord, Paginator, gather_first_error

logger = logging.getLogger(__name__)

USER_REPOS = "/user/repos"
# GitHub's own ``affiliation`` default, spelled out so a change of default cannot narrow the list.
AFFILIATION = "owner,collaborator,organization_member"
SELECTED = "selected"


class NotFoundAtHost(ProviderUnavailableError):
    """A 404 where one may happen (an installation removed since the last listing)."""


def check_listing_response(host: str) -> CheckResponse:
    """How a listing treats the answers that are not pages: refusals ask for a reconnect."""

    def check(response: httpx.Response) -> None:
        status = response.status_code
        if status in (200, 304):
            return
        if status == 401:
            raise NeedsReconnectError(messages.RECONNECT)
        if status == 404:
            raise NotFoundAtHost(f"{host} no longer lists this resource.")
        if status == 403:
            # Rate limits were raised already by HostHTTP; any other refusal is about the grant.
            raise NeedsReconnectError(messages.LISTING_REFUSED)
        raise ProviderUnavailableError(
            f"{host} answered HTTP {status} while listing repositories; try again later."
        )

    return check


async def list_repositories(
    http: HostHTTP, api: str, integration: Integration, previous: Listing | None
) -> Listing:
    """Every repository the integration reaches, page by page with ETags (see the module docstring)."""
    paginator = Paginator(http, api, check=check_listing_response(http.host))
    before = previous.pages if previous else ()
    if integration.token_kind is TokenKind.GITHUB_APP:
        return await _installations_listing(paginator, integration, before)
    params: dict[str, str | int] = {"sort": "full_name"}
    if integration.token_kind is not TokenKind.GITHUB_FINE_GRAINED:
        params["affiliation"] = AFFILIATION
    result = await paginator.walk(USER_REPOS, params, parse_repository_list, before)
    return Listing(pages=tuple(result.pages), complete=result.complete)


async def _installations_listing(
    paginator: Paginator, integration: Integration, before: Sequence[PageRecord]
) -> Listing:
    known: list[str] = []
    if integration.resource is not None and integration.resource.kind == "installations":
        known = list(integration.resource.ids)
    # Installations seen by the previous listing are as good a guess as those from the connection.
    known += [ref for p in before if p.stream == INSTALLATIONS for ref in p.references if ref not in known]

    async def discover() -> list[PageRecord]:
        return (await paginator.walk(INSTALLATIONS, {}, _parse_installations, before)).pages

    async def repositories_of(installation_id: str) -> list[PageRecord]:
        stream = f"{INSTALLATIONS}/{quote(installation_id, safe='')}/repositories"
        try:
            return (await paginator.walk(stream, {}, _parse_installation_repositories, before)).pages
        except NotFoundAtHost:
            logger.info("github: installation %s is gone; skipping it", installation_id)
            return []

    results = await gather_first_error([discover(), *(repositories_of(i) for i in known)])
    installation_pages, *known_pages = results
    discovered = [ref for page in installation_pages for ref in page.references]
    new = [i for i in discovered if i not in known]
    new_pages = await gather_first_error([repositories_of(i) for i in new])
    # Only installations the user can still access count, whatever the connection remembered.
    current = set(discovered)
    pages = list(installation_pages)
    for installation_id, stream_pages in zip([*known, *new], [*known_pages, *new_pages], strict=True):
        if installation_id in current:
            pages.extend(stream_pages)
    selected = any(
        ref == SELECTED for page in pages if page.stream != INSTALLATIONS for ref in page.references
    )
    return Listing(
        pages=tuple(pages),
        repository_access=RepositoryAccess.SELECTED if selected else RepositoryAccess.ALL,
    )


def _parse_installations(body: Any) -> PageContent:
    # ``references`` of the installations' pages hold their ids.
    return PageContent(references=tuple(i.id for i in parse_installations(body)))


def _parse_installation_repositories(body: Any) -> PageContent:
    repositories = body.get("repositories") if isinstance(body, dict) else None
    if not isinstance(repositories, list):
        raise ProviderUnavailableError("GitHub answered with an unexpected repository list; try again later.")
    selection = body.get("repository_selection")
    # ``references`` of an installation's pages hold its repository selection ("all" | "selected").
    return PageContent(
        repositories=_parse_all(repositories),
        references=(selection,) if isinstance(selection, str) else (),
    )


def parse_repository_list(body: Any) -> PageContent:
    """One page of ``/user/repos``."""
    if not isinstance(body, list):
        raise ProviderUnavailableError("GitHub answered with an unexpected repository list; try again later.")
    return PageContent(repositories=_parse_all(body))


def _parse_all(items: Sequence[Any]) -> tuple[Repository, ...]:
    return tuple(repo for repo in map(parse_repository, items) if repo is not None)


@dataclass(frozen=True)
class RepositoryEntry:
    """One entry of a GitHub repository list: the repository, and what GitHub says about the viewer."""

    repository: Repository
    owner_id: int | None
    admin: bool  # the token's user administers it (``permissions.admin``)


def parse_repository(raw: Any) -> Repository | None:
    """A ``Repository`` from GitHub's JSON; None for an entry without the fields a picker needs."""
    entry = parse_repository_entry(raw)
    return entry.repository if entry is not None else None


def parse_repository_entry(raw: Any) -> RepositoryEntry | None:
    """The one parser of GitHub's repository JSON (lists, single repositories, installation lists)."""
    if not isinstance(raw, dict):
        return None
    full_name, name = raw.get("full_name"), raw.get("name")
    web_url, clone_url = raw.get("html_url"), raw.get("clone_url")
    if not all(isinstance(v, str) and v for v in (full_name, name, web_url, clone_url)):
        return None
    owner = raw.get("owner")
    login = owner.get("login") if isinstance(owner, Mapping) else None
    owner_id = owner.get("id") if isinstance(owner, Mapping) else None
    permissions = raw.get("permissions")
    default_branch = raw.get("default_branch")
    repository = Repository(
        # The full name is what every repository endpoint is addressed by (Repository.branches).
        id=str(full_name),
        name=str(name),
        full_name=str(full_name),
        owner=login if isinstance(login, str) and login else str(full_name).split("/")[0],
        private=bool(raw.get("private")),
        web_url=str(web_url),
        clone_url=str(clone_url),
        default_branch=default_branch if isinstance(default_branch, str) and default_branch else None,
        pushed_at=parse_timestamp(raw.get("pushed_at")),
        archived=bool(raw.get("archived")),
        fork=bool(raw.get("fork")),
    )
    return RepositoryEntry(
        repository=repository,
        owner_id=owner_id if isinstance(owner_id, int) and not isinstance(owner_id, bool) else None,
        admin=isinstance(permissions, Mapping) and permissions.get("admin") is True,
    )


async def list_branches(http: HostHTTP, api: str, repository_id: str, first: int) -> list[Branch]:
    """The first ``first`` (at most 100) branches of ``owner/name``, in GitHub's (alphabetical) order."""
    owner, _, name = repository_id.partition("/")
    if not owner or not name:
        raise NotFoundError("No repository with this id.")
    url = f"{api}/repos/{quote(owner, safe='')}/{quote(name, safe='')}/branches"
    response = await http.get(url, params={"per_page": max(1, min(first, PER_PAGE))})
    if response.status_code == 409:
        return []  # an empty repository has no branches yet
    # 404: gone, renamed away, or no longer covered by the token (GitHub answers 404, not 403).
    return branch_list(
        response,
        http,
        host_name="GitHub",
        sha_field="sha",
        gone=messages.REPOSITORY_GONE,
        reconnect=messages.RECONNECT,
        first=first,
    )
