"""GitLab: which projects an integration may deploy from (branches: ``branches.py``).

- Personal and OAuth tokens: ``/projects?membership=true&min_access_level=40`` — projects where the
  user is Maintainer or higher, whether directly or through a group (subgroups included).
- Group token: ``/groups/:id/projects?include_subgroups=true&with_shared=true&min_access_level=40``.
- Project token: ``/projects/:id``, the one project.

``simple=true`` would make every page much smaller, but it leaves out ``visibility``, ``archived``
and ``forked_from_project``, which the picker shows; the full representation is asked for instead.

Pages are asked for in ``id`` order rather than by ``last_activity_at``: the service sorts the
whole list itself, and a stable order means activity on one project changes one page (the others
revalidate as 304s) and cannot shift projects between pages while they are fetched concurrently.
Above 10,000 projects GitLab sends no totals, and past 50,000 records (gitlab.com) it refuses offset
pages with 400: ``/projects`` then goes on by keyset pages (``KEYSET``); group projects have none and
stop there (LIST_INCOMPLETE). A picker's first page is ``order_by=last_activity_at&sort=desc``
(``first_page``), with ``x-total`` up to 10,000.
A search is done by GitLab (``search=``), which matches names and paths across the whole list;
``search_namespaces=true`` makes it match group paths too, so "payments" finds
``acme/payments/api`` as GitHub's local filter on ``owner/name`` would (provider-facts, "Learned
since").

``viewerCanAdminister``: every project listed with ``min_access_level=40`` is one where the user is
Maintainer or higher, which is what hooks and deploy tokens need; the one project of a project token
says so in ``permissions`` (the higher of project and group access; both may be null when access
is inherited, then the listing's filter is all there is to go by).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.errors import NeedsReconnectError, ProviderUnavailableError
from app.domain.models import AccessNotice, Integration, Repository, TokenKind
from app.domain.urls import link_on_host
from app.hosts.base import HeadPage, Listing
from app.hosts.gitlab import messages
from app.hosts.gitlab.constants import MAINTAINER
from app.hosts.notices import list_incomplete
from app.hosts.parsing import parse_timestamp
from app.net.client import HostHTTP, json_body
from app.net.pages import positive
from app.net.pagination import CheckResponse, Keyset, PageContent, PageRecord, Paginator


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


def _after_last_project(content: PageContent) -> str | None:
    # Pages come in id order: the next keyset page starts after the last id of this one.
    return content.repositories[-1].id if content.repositories else None


# Keyset pagination, only for /projects and only ordered by id (provider-facts, "Learned since"; GitLab
# REST docs, "Keyset-based pagination"): the next page is named by Link rel="next" with id_after.
KEYSET = Keyset(
    params={"pagination": "keyset", "order_by": "id", "sort": "asc"},
    cursor="id_after",
    after=_after_last_project,
)


async def first_page(http: HostHTTP, api: str, integration: Integration, *, size: int) -> HeadPage | None:
    """The ``size`` projects with the latest activity (``order_by=last_activity_at``), in one round;
    the total from ``x-total`` (GitLab leaves it out above 10,000 records). A project token's list is
    its one project: None."""
    stream, params = listing_stream(integration)
    if integration.token_kind is TokenKind.GITLAB_PROJECT and not params:
        return None
    paginator = Paginator(http, api, check=_check(http.host))
    params.update(order_by="last_activity_at", sort="desc", per_page=size, page=1)
    response = await paginator.get(stream, params, None)
    repositories = parse_project_list(
        json_body(response, paginator.host), web=integration.endpoint.web_url
    ).repositories
    more = positive(response.headers.get("x-next-page")) is not None or "next" in response.links
    total_text = response.headers.get("x-total", "").strip()
    total = int(total_text) if total_text.isdigit() else None if more else len(repositories)
    return HeadPage(repositories=repositories, more=more, total=total)


async def list_repositories(
    http: HostHTTP, api: str, integration: Integration, search: str | None, previous: Listing | None
) -> Listing:
    """The projects the integration reaches (matching ``search`` when given), with each page's ETag."""
    paginator = Paginator(http, api, check=_check(http.host))
    before = previous.pages if previous else ()
    stream, params = listing_stream(integration)
    if integration.token_kind is TokenKind.GITLAB_PROJECT and not params:
        page = await _single_project(paginator, stream, before, integration.endpoint.web_url)
        if search and not _matches(page, search):
            page = PageRecord(
                stream=page.stream, number=1, etag=page.etag, repositories=(), fetched=page.fetched
            )
        return Listing(pages=(page,))
    if search:
        params["search"] = search
        params["search_namespaces"] = "true"
    parse = functools.partial(parse_project_list, web=integration.endpoint.web_url)
    keyset = KEYSET if stream == "/projects" else None  # group projects have no keyset pages
    result = await paginator.walk(stream, params, parse, before, keyset=keyset)
    notices: tuple[AccessNotice, ...] = ()
    if not result.complete:
        listed = len({r.id for page in result.pages for r in page.repositories})
        notices = (list_incomplete("GitLab", listed, host_searches=True),)
    return Listing(pages=tuple(result.pages), complete=result.complete, notices=notices)


async def _single_project(
    paginator: Paginator, stream: str, before: tuple[PageRecord, ...], web: str
) -> PageRecord:
    stored = next((p for p in before if p.stream == stream and p.number == 1), None)
    response = await paginator.get(stream, {}, stored.etag if stored else None)
    if response.status_code == 304 and stored is not None:
        return PageRecord(stream, 1, stored.etag, stored.repositories, fetched=False)
    repo = parse_project(json_body(response, paginator.host), web, listed_as_maintainer=False)
    return PageRecord(stream, 1, response.headers.get("etag"), (repo,) if repo else ())


def _matches(page: PageRecord, search: str) -> bool:
    needle = search.casefold()
    return any(needle in r.name.casefold() or needle in r.full_name.casefold() for r in page.repositories)


def parse_project_list(body: Any, *, web: str) -> PageContent:
    """One page of a project list asked for with ``min_access_level=40`` (Maintainer or higher)."""
    if not isinstance(body, list):
        raise ProviderUnavailableError("GitLab answered with an unexpected project list; try again later.")
    projects = (parse_project(raw, web, listed_as_maintainer=True) for raw in body)
    return PageContent(repositories=tuple(r for r in projects if r is not None))


def access_level(raw: Mapping[str, Any]) -> int | None:
    """The higher of ``permissions.project_access`` and ``group_access`` levels; None when neither says."""
    permissions = raw.get("permissions")
    if not isinstance(permissions, Mapping):
        return None
    levels = []
    for kind in ("project_access", "group_access"):
        access = permissions.get(kind)
        level = access.get("access_level") if isinstance(access, Mapping) else None
        if isinstance(level, int) and not isinstance(level, bool):
            levels.append(level)
    return max(levels, default=None)


def parse_project(raw: Any, web: str, *, listed_as_maintainer: bool) -> Repository | None:
    """A ``Repository`` from GitLab's project JSON; None for an entry without the fields a picker needs.

    ``listed_as_maintainer``: the project came from a list filtered by ``min_access_level=40``.
    """
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
        # Links must point at the integration's instance (``web``): the URL rule, app.domain.urls.
        web_url=link_on_host(web_url, web, str(path)),
        clone_url=link_on_host(clone_url, web, f"{path}.git"),
        default_branch=default_branch if isinstance(default_branch, str) and default_branch else None,
        # GitLab has no push time on projects; last activity (pushes included) is the closest.
        pushed_at=parse_timestamp(raw.get("last_activity_at")),
        archived=bool(raw.get("archived")),
        fork=isinstance(raw.get("forked_from_project"), dict),
        viewer_can_administer=listed_as_maintainer or (access_level(raw) or 0) >= MAINTAINER,
    )
