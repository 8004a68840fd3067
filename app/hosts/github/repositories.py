"""GitHub: which repositories an integration may deploy from (branches: ``branches.py``).

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

A picker's first page comes from ``first_page``: ``/user/repos?sort=pushed&direction=desc`` holds the
most recently pushed repositories on its page 1 (provider-facts, "Learned since"), and ``per_page=1``
asked beside it names the number of repositories in its ``rel="last"``.

Under SAML SSO GitHub answers 200 with an organization's repositories left out and says so only in
a header, ``X-GitHub-SSO: partial-results; organizations=ID1,ID2`` (provider-facts, "Learned
since"): each page keeps the organizations it names, and the listing carries an
``SSO_AUTHORIZATION_REQUIRED`` notice with the place where the user authorizes the connection.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.errors import NeedsReconnectError, ProviderUnavailableError
from app.domain.models import (
    AccessNotice,
    AccessNoticeReason,
    Integration,
    Repository,
    RepositoryAccess,
    TokenKind,
)
from app.domain.urls import link_on_host
from app.hosts.base import HeadPage, Listing
from app.hosts.github import messages
from app.hosts.github.installations import PATH as INSTALLATIONS
from app.hosts.github.installations import parse_installations
from app.hosts.notices import list_incomplete
from app.hosts.parsing import parse_timestamp
from app.net.client import HostHTTP, json_body
from app.net.pagination import (
    CheckResponse,
    PageContent,
    PageRecord,
    Paginator,
    ParsePage,
    gather_first_error,
)

logger = logging.getLogger(__name__)

USER_REPOS = "/user/repos"
# GitHub's own ``affiliation`` default, spelled out so a change of default cannot narrow the list.
AFFILIATION = "owner,collaborator,organization_member"
SELECTED = "selected"
SSO_HEADER = "x-github-sso"
# Organization ids (or logins) as X-GitHub-SSO names them; anything else is not passed on.
_ORGANIZATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}")
MAX_HIDDEN_ORGANIZATIONS = 100


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


def sso_hidden_organizations(response: httpx.Response) -> tuple[str, ...] | None:
    """The organizations ``X-GitHub-SSO: partial-results; organizations=…`` says were left out.

    None when the header is absent (a bare 304 says nothing); ``()`` when it names none.
    """
    header = response.headers.get(SSO_HEADER)
    if header is None:
        return None
    kind, *attributes = (part.strip() for part in header.split(";"))
    if kind.lower() != "partial-results":
        return ()
    found: list[str] = []
    for attribute in attributes:
        name, _, value = attribute.partition("=")
        if name.strip().lower() == "organizations":
            found += [o.strip() for o in value.split(",") if _ORGANIZATION.fullmatch(o.strip())]
    return tuple(dict.fromkeys(found))[:MAX_HIDDEN_ORGANIZATIONS]


def listing_notices(
    pages: Sequence[PageRecord], *, complete: bool, sso_url: str | None
) -> tuple[AccessNotice, ...]:
    """What the user should know about a listing made of ``pages`` (see the module docstring)."""
    notices: list[AccessNotice] = []
    hidden = tuple(dict.fromkeys(o for page in pages for o in page.hidden_organizations))
    if hidden:
        notices.append(
            AccessNotice(
                reason=AccessNoticeReason.SSO_AUTHORIZATION_REQUIRED,
                message=messages.sso_partial_results(len(hidden), sso_url),
                url=sso_url,
                organizations=hidden[:MAX_HIDDEN_ORGANIZATIONS],
            )
        )
    if not complete:
        listed = len({r.id for page in pages for r in page.repositories})
        notices.append(list_incomplete("GitHub", listed, host_searches=False))
    return tuple(notices)


async def list_repositories(
    http: HostHTTP, api: str, integration: Integration, previous: Listing | None, *, sso_url: str | None
) -> Listing:
    """Every repository the integration reaches, page by page with ETags (see the module docstring).

    ``sso_url``: where this kind of connection is authorized for an organization's SAML SSO.
    """
    paginator = Paginator(http, api, check=check_listing_response(http.host), hidden=sso_hidden_organizations)
    before = previous.pages if previous else ()
    if integration.token_kind is TokenKind.GITHUB_APP:
        listing = await _installations_listing(paginator, integration, before)
    else:
        params: dict[str, str | int] = {"sort": "full_name"}
        if integration.token_kind is not TokenKind.GITHUB_FINE_GRAINED:
            params["affiliation"] = AFFILIATION
        parse = functools.partial(parse_repository_list, web=integration.endpoint.web_url)
        result = await paginator.walk(USER_REPOS, params, parse, before)
        listing = Listing(pages=tuple(result.pages), complete=result.complete)
    notices = listing_notices(listing.pages, complete=listing.complete, sso_url=sso_url)
    return replace(listing, notices=notices)


async def first_page(
    http: HostHTTP, api: str, integration: Integration, *, size: int, count: bool, sso_url: str | None
) -> HeadPage | None:
    """The ``size`` most recently pushed repositories (``sort=pushed``, newest first), in one round.

    With ``count``, ``per_page=1`` is asked beside it: its ``Link: rel="last"`` names the last page,
    which is the number of repositories. A GitHub App installation's list has no push order: None.
    """
    if integration.token_kind is TokenKind.GITHUB_APP:
        return None
    paginator = Paginator(http, api, check=check_listing_response(http.host), hidden=sso_hidden_organizations)
    params: dict[str, str | int] = {"sort": "pushed", "direction": "desc", "page": 1}
    if integration.token_kind is not TokenKind.GITHUB_FINE_GRAINED:
        params["affiliation"] = AFFILIATION
    asked = [paginator.get(USER_REPOS, {**params, "per_page": size}, None)]
    if count:
        asked.append(paginator.get(USER_REPOS, {**params, "per_page": 1}, None))
    head, *counted = await gather_first_error(asked)
    web = integration.endpoint.web_url
    repositories = parse_repository_list(json_body(head, http.host), web=web).repositories
    more = "next" in head.links
    total = None if more else len(repositories)
    if counted:
        last = paginator.link_page(counted[0], "last")
        if last is not None:
            total = last
        elif "next" not in counted[0].links:
            total = len(parse_repository_list(json_body(counted[0], http.host), web=web).repositories)
    page = PageRecord(USER_REPOS, 1, None, hidden_organizations=sso_hidden_organizations(head) or ())
    return HeadPage(
        repositories=repositories,
        more=more,
        total=total,
        notices=listing_notices([page], complete=True, sso_url=sso_url),
    )


async def _installations_listing(
    paginator: Paginator, integration: Integration, before: Sequence[PageRecord]
) -> Listing:
    known: list[str] = []
    if integration.resource is not None and integration.resource.kind == "installations":
        known = list(integration.resource.ids)
    # Installations seen by the previous listing are as good a guess as those from the connection.
    known += [ref for p in before if p.stream == INSTALLATIONS for ref in p.references if ref not in known]
    cut_short = False

    async def walk(stream: str, parse: ParsePage) -> list[PageRecord]:
        nonlocal cut_short
        result = await paginator.walk(stream, {}, parse, before)
        cut_short = cut_short or not result.complete
        return result.pages

    async def discover() -> list[PageRecord]:
        return await walk(INSTALLATIONS, _parse_installations)

    async def repositories_of(installation_id: str) -> list[PageRecord]:
        stream = f"{INSTALLATIONS}/{quote(installation_id, safe='')}/repositories"
        try:
            parse = functools.partial(_parse_installation_repositories, web=integration.endpoint.web_url)
            return await walk(stream, parse)
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
        complete=not cut_short,
    )


def _parse_installations(body: Any) -> PageContent:
    # ``references`` of the installations' pages hold their ids.
    return PageContent(references=tuple(i.id for i in parse_installations(body)))


def _parse_installation_repositories(body: Any, *, web: str) -> PageContent:
    repositories = body.get("repositories") if isinstance(body, dict) else None
    if not isinstance(repositories, list):
        raise ProviderUnavailableError("GitHub answered with an unexpected repository list; try again later.")
    selection = body.get("repository_selection")
    # ``references`` of an installation's pages hold its repository selection ("all" | "selected").
    return PageContent(
        repositories=_parse_all(repositories, web),
        references=(selection,) if isinstance(selection, str) else (),
    )


def parse_repository_list(body: Any, *, web: str) -> PageContent:
    """One page of ``/user/repos`` of the GitHub at ``web``."""
    if not isinstance(body, list):
        raise ProviderUnavailableError("GitHub answered with an unexpected repository list; try again later.")
    return PageContent(repositories=_parse_all(body, web))


def _parse_all(items: Sequence[Any], web: str) -> tuple[Repository, ...]:
    return tuple(repo for repo in (parse_repository(item, web) for item in items) if repo is not None)


@dataclass(frozen=True)
class RepositoryEntry:
    """One entry of a GitHub repository list: the repository, and what GitHub says about the viewer."""

    repository: Repository
    owner_id: int | None
    admin: bool  # the token's user administers it (``permissions.admin``)


def parse_repository(raw: Any, web: str) -> Repository | None:
    """A ``Repository`` from the JSON of the GitHub at ``web``; None for an entry without the fields a
    picker needs."""
    entry = parse_repository_entry(raw, web)
    return entry.repository if entry is not None else None


def parse_repository_entry(raw: Any, web: str) -> RepositoryEntry | None:
    """The one parser of GitHub's repository JSON (lists, single repositories, installation lists).

    ``web``: the integration's GitHub (``GITHUB_URL``); its links must point there (the URL rule,
    ``app.domain.urls``).
    """
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
    admin = isinstance(permissions, Mapping) and permissions.get("admin") is True
    default_branch = raw.get("default_branch")
    repository = Repository(
        # The full name is what every repository endpoint is addressed by (Repository.branches).
        id=str(full_name),
        name=str(name),
        full_name=str(full_name),
        owner=login if isinstance(login, str) and login else str(full_name).split("/")[0],
        private=bool(raw.get("private")),
        web_url=link_on_host(web_url, web, str(full_name)),
        clone_url=link_on_host(clone_url, web, f"{full_name}.git"),
        default_branch=default_branch if isinstance(default_branch, str) and default_branch else None,
        pushed_at=parse_timestamp(raw.get("pushed_at")),
        archived=bool(raw.get("archived")),
        fork=bool(raw.get("fork")),
        # Webhooks and deploy keys need admin rights on the repository (provider-facts, "Learned since").
        viewer_can_administer=admin,
    )
    return RepositoryEntry(
        repository=repository,
        owner_id=owner_id if isinstance(owner_id, int) and not isinstance(owner_id, bool) else None,
        admin=admin,
    )
