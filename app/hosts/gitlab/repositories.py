"""GitLab: which projects an integration may deploy from, and their branches.

- Personal and OAuth tokens: ``/projects?membership=true&min_access_level=40`` — projects where the
  user is Maintainer or higher, whether directly or through a group (subgroups included).
- Group token: ``/groups/:id/projects?include_subgroups=true&with_shared=true&min_access_level=40``.
- Project token: ``/projects/:id``, the one project.

``simple=true`` would make every page much smaller, but it leaves out ``visibility``, ``archived``
and ``forked_from_project``, which the picker shows; the full representation is asked for instead.

Pages are asked for in ``id`` order rather than by ``last_activity_at``: the service sorts the
whole list itself, and a stable order means activity on one project changes one page (the others
revalidate as 304s) and cannot shift projects between pages while they are fetched concurrently.
A search is done by GitLab (``search=``), which matches names and paths across the whole list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.errors import NeedsReconnectError, NotFoundError, ProviderUnavailableError
from app.domain.models import Branch, Integration, Repository, TokenKind
from app.hosts.base import Listing
from app.hosts.gitlab import messages
from app.hosts.gitlab.constants import MAINTAINER, PER_PAGE
from app.hosts.parsing import branch_list, parse_timestamp
from app.net.client import HostHTTP, json_body
from app.net.pagination import CheckResponse, PageContent, PageRecord, Paginator


def _check(host: str) -> CheckResponse:
    def check(response: httpx.Response) -> None:
        status = response.status_code
        if status in (200, 304):
            return
        if status == 401:
            raise NeedsReconnectError(messages.RECONNECT)
        if status in (403, 404):
            # 403: the token lost a scope. 404: the token's group or project is gone or out of reach.
            raise NeedsReconnectError(messages.listing_refused(status))
        raise ProviderUnavailableError(
            f"{host} answered HTTP {status} while listing projects; try again later."
        )

    return check


def listing_stream(integration: Integration) -> tuple[str, dict[str, str | int]]:
    """The stream (path below the API) and filters that list what the integration's token covers."""
    resource = integration.resource
    if integration.token_kind is TokenKind.GITLAB_GROUP and resource and resource.ids:
        return f"/groups/{quote(resource.ids[0], safe='')}/projects", {
            "include_subgroups": "true",
            "with_shared": "true",
            "min_access_level": MAINTAINER,
            "order_by": "id",
            "sort": "asc",
        }
    if integration.token_kind is TokenKind.GITLAB_PROJECT and resource and resource.ids:
        return f"/projects/{quote(resource.ids[0], safe='')}", {}
    return "/projects", {
        "membership": "true",
        "min_access_level": MAINTAINER,
        "order_by": "id",
        "sort": "asc",
    }


async def list_repositories(
    http: HostHTTP, api: str, integration: Integration, search: str | None, previous: Listing | None
) -> Listing:
    """The projects the integration reaches (matching ``search`` when given), with each page's ETag."""
    paginator = Paginator(http, api, check=_check(http.host))
    before = previous.pages if previous else ()
    stream, params = listing_stream(integration)
    if integration.token_kind is TokenKind.GITLAB_PROJECT and not params:
        page = await _single_project(paginator, stream, before)
        if search and not _matches(page, search):
            page = PageRecord(
                stream=page.stream, number=1, etag=page.etag, repositories=(), fetched=page.fetched
            )
        return Listing(pages=(page,))
    if search:
        params["search"] = search
    result = await paginator.walk(stream, params, parse_project_list, before)
    return Listing(pages=tuple(result.pages), complete=result.complete)


async def _single_project(paginator: Paginator, stream: str, before: tuple[PageRecord, ...]) -> PageRecord:
    stored = next((p for p in before if p.stream == stream and p.number == 1), None)
    response = await paginator.get(stream, {}, stored.etag if stored else None)
    if response.status_code == 304 and stored is not None:
        return PageRecord(stream, 1, stored.etag, stored.repositories, fetched=False)
    repo = parse_project(json_body(response, paginator.host))
    return PageRecord(stream, 1, response.headers.get("etag"), (repo,) if repo else ())


def _matches(page: PageRecord, search: str) -> bool:
    needle = search.casefold()
    return any(needle in r.name.casefold() or needle in r.full_name.casefold() for r in page.repositories)


def parse_project_list(body: Any) -> PageContent:
    """One page of a project list."""
    if not isinstance(body, list):
        raise ProviderUnavailableError("GitLab answered with an unexpected project list; try again later.")
    return PageContent(repositories=tuple(r for r in map(parse_project, body) if r is not None))


def parse_project(raw: Any) -> Repository | None:
    """A ``Repository`` from GitLab's project JSON; None for an entry without the fields a picker needs."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        return None
    path, name = raw.get("path_with_namespace"), raw.get("name")
    web_url, clone_url = raw.get("web_url"), raw.get("http_url_to_repo")
    if not all(isinstance(v, str) and v for v in (path, name, web_url, clone_url)):
        return None
    namespace = raw.get("namespace")
    owner = namespace.get("full_path") if isinstance(namespace, Mapping) else None
    default_branch = raw.get("default_branch")
    return Repository(
        # The numeric id addresses the project in every API call and survives renames and transfers.
        id=str(raw["id"]),
        name=str(name),
        full_name=str(path),
        owner=owner if isinstance(owner, str) and owner else str(path).rpartition("/")[0],
        # "internal" projects are visible to every signed-in user of the instance, not the public.
        private=raw.get("visibility") != "public",
        web_url=str(web_url),
        clone_url=str(clone_url),
        default_branch=default_branch if isinstance(default_branch, str) and default_branch else None,
        # GitLab has no push time on projects; last activity (pushes included) is the closest.
        pushed_at=parse_timestamp(raw.get("last_activity_at")),
        archived=bool(raw.get("archived")),
        fork=isinstance(raw.get("forked_from_project"), dict),
    )


async def list_branches(http: HostHTTP, api: str, repository_id: str, first: int) -> list[Branch]:
    """The first ``first`` (at most 100) branches of the project, in GitLab's (alphabetical) order."""
    if not repository_id.isdigit():
        raise NotFoundError("No repository with this id.")
    response = await http.get(
        f"{api}/projects/{repository_id}/repository/branches",
        params={"per_page": max(1, min(first, PER_PAGE))},
    )
    return branch_list(
        response,
        http,
        host_name="GitLab",
        sha_field="id",
        gone=messages.PROJECT_GONE,
        reconnect=messages.RECONNECT,
        first=first,
    )
