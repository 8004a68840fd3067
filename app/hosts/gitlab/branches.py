"""GitLab: the branches of a project, all of them or those GitLab finds for a search.

``GET /projects/:id/repository/branches?search=TEXT`` searches on GitLab's side, case-insensitively,
and reads ``^text`` as "starts with" and ``text$`` as "ends with" (provider-facts, "Learned since").
The service searches for names containing the text literally and case-sensitively, so those two
characters are never sent where GitLab would read them as operators: a leading ``^`` and a trailing
``$`` are dropped from what is sent (GitLab then answers a superset: every name containing the
rest), and the service keeps only the names that contain the text as typed.

The first page of a search can come from the names *starting* with the text (the picker shows them
first): ``search=^TEXT`` is then sent on purpose, GitLab's one operator that cannot widen the answer
wrongly (a name never contains ``^``: ``git check-ref-format``), and page 1 holds the first 100 such
names by name, since GitLab answers branches "sorted by name alphabetically" (REST docs, "List
repository branches").
"""

from __future__ import annotations

from typing import Any

import httpx

from app.domain.errors import NeedsReconnectError, NotFoundError, ProviderUnavailableError
from app.domain.models import Branch
from app.hosts.base import BranchListing
from app.hosts.gitlab import messages
from app.hosts.parsing import parse_branches
from app.net.client import HostHTTP, json_body
from app.net.pagination import PageContent, Paginator


def _check(response: httpx.Response) -> None:
    status = response.status_code
    if status in (200, 304):
        return
    if status == 401:
        raise NeedsReconnectError(messages.RECONNECT)
    if status in (403, 404):
        raise NotFoundError(messages.PROJECT_GONE)
    raise ProviderUnavailableError(f"GitLab answered HTTP {status} while listing branches; try again later.")


def search_text(search: str) -> str | None:
    """What to send as ``search=`` so that GitLab reads no operator in it; None: send no search."""
    text = search.removeprefix("^").removesuffix("$")
    return text or None


def parse_branch_page(body: Any) -> PageContent:
    """One page of a project's branches."""
    if not isinstance(body, list):
        raise ProviderUnavailableError("GitLab answered with an unexpected branch list; try again later.")
    return PageContent(branches=tuple(parse_branches(body, "id")))


async def list_branches(
    http: HostHTTP, api: str, repository_id: str, search: str | None, previous: BranchListing | None
) -> BranchListing:
    """The project's branches (those GitLab finds for ``search``), revalidating ``previous`` by ETag."""
    if not repository_id.isdigit():
        raise NotFoundError("No repository with this id.")
    paginator = Paginator(http, api, check=_check)
    params: dict[str, str | int] = {}
    sent = search_text(search) if search is not None else None
    if sent is not None:
        params["search"] = sent
    stream = f"/projects/{repository_id}/repository/branches"
    result = await paginator.walk(stream, params, parse_branch_page, previous.pages if previous else ())
    return BranchListing(pages=tuple(result.pages), complete=result.complete)


PREFIX_PAGE = 100  # GitLab's largest page


async def branches_starting_with(http: HostHTTP, api: str, repository_id: str, prefix: str) -> list[Branch]:
    """The first branches by name whose names start with ``prefix`` (case-sensitive), in one request:
    all of them when fewer than a page start with it (case-insensitively, as GitLab compares), else
    the first ones by name (see the module docstring)."""
    if not repository_id.isdigit():
        raise NotFoundError("No repository with this id.")
    paginator = Paginator(http, api, check=_check)
    stream = f"/projects/{repository_id}/repository/branches"
    response = await paginator.get(stream, {"search": f"^{prefix}", "per_page": PREFIX_PAGE, "page": 1}, None)
    content = parse_branch_page(json_body(response, http.host))
    # GitLab compares upper-cased: "Release/1" answers "^release/"; the service's search is exact.
    return [b for b in content.branches if b.name.startswith(prefix)]
