"""GitHub: the branches of a repository, all of them or those starting with a prefix, in one round.

- Names and heads: ``GET /repos/{o}/{r}/git/matching-refs/heads`` lists every ``refs/heads/…`` with its
  commit (``object.sha``). GitHub documents no pagination for it; ``per_page`` is sent anyway and a
  ``Link`` is followed if one comes (older descriptions of the endpoint had ``page``/``per_page``, and
  octokit's paginator lists it), so both answers are read in full.
- Protection: the refs say nothing about it, ``GET /repos/{o}/{r}/branches?protected=true`` lists the
  protected branches (usually a handful): asked at the same time, so one round gives every branch
  with a correct ``protected`` (provider-facts, "Learned since").
- A prefix: ``git/matching-refs/heads/{prefix}`` answers only the branches starting with it. The
  docs describe what happens when no ref is named exactly ``prefix`` ("the response can still
  include other matching head refs that start with" it) but not whether an exact match hides the
  others, so an answer naming ``prefix`` itself is not taken as complete.

A repository with so many branches that ``matching-refs`` answers more than the service reads at once
(``net.transports.MAX_ANSWER_BYTES``, 5 MiB: some 17,000 refs) is read from ``/branches`` instead, page by
page of 100, with their ``protected`` flags.

An empty repository answers 409 ("Git Repository is empty."): no branches. A 404 (or 403) means the
repository is gone or no longer covered by the connection.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

from app.domain.errors import NeedsReconnectError, NotFoundError, ProviderUnavailableError
from app.domain.models import Branch
from app.hosts.base import BranchListing
from app.hosts.github import messages
from app.hosts.parsing import parse_branches
from app.net.client import HostHTTP
from app.net.pagination import PageContent, Paginator, gather_first_error
from app.net.transports import AnswerTooLarge

HEADS = "refs/heads/"
# A prefix safe to put in the path: characters Git allows in ref names, no "..", no component that
# starts with "." (Git refuses both), so the path cannot climb out of matching-refs/heads.
_SAFE_PREFIX = re.compile(r"[A-Za-z0-9_+@=,-][A-Za-z0-9._+@=,-]*(/[A-Za-z0-9_+@=,-][A-Za-z0-9._+@=,-]*)*/?")


class EmptyRepository(Exception):
    """GitHub answered 409: the repository has no commits, hence no branches."""


def _check(response: httpx.Response) -> None:
    status = response.status_code
    if status in (200, 304):
        return
    if status == 401:
        raise NeedsReconnectError(messages.RECONNECT)
    if status == 409:
        raise EmptyRepository
    if status in (403, 404):
        # 404: gone, renamed away, or no longer covered by the token (GitHub answers 404, not 403).
        raise NotFoundError(messages.REPOSITORY_GONE)
    raise ProviderUnavailableError(f"GitHub answered HTTP {status} while listing branches; try again later.")


def _repository_path(repository_id: str) -> str:
    owner, _, name = repository_id.partition("/")
    if not owner or not name or "/" in name:
        raise NotFoundError("No repository with this id.")
    return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"


def parse_refs(body: Any) -> PageContent:
    """Branches from a ``matching-refs`` answer (``protected`` unknown: False here)."""
    if not isinstance(body, list):
        raise ProviderUnavailableError("GitHub answered with an unexpected branch list; try again later.")
    branches = []
    for item in body:
        ref = item.get("ref") if isinstance(item, dict) else None
        target = item.get("object") if isinstance(item, dict) else None
        sha = target.get("sha") if isinstance(target, dict) else None
        if isinstance(ref, str) and ref.startswith(HEADS) and len(ref) > len(HEADS) and isinstance(sha, str):
            branches.append(Branch(name=ref[len(HEADS) :], commit_sha=sha, protected=False))
    return PageContent(branches=tuple(branches))


def parse_branch_page(body: Any) -> PageContent:
    """One page of ``/branches``: names, heads and protection."""
    if not isinstance(body, list):
        raise ProviderUnavailableError("GitHub answered with an unexpected branch list; try again later.")
    return PageContent(branches=tuple(parse_branches(body, "sha")))


def parse_protected(body: Any) -> PageContent:
    """Branches from ``/branches?protected=true``: every one protected, whatever the entry says."""
    if not isinstance(body, list):
        raise ProviderUnavailableError("GitHub answered with an unexpected branch list; try again later.")
    return PageContent(
        branches=tuple(Branch(b.name, b.commit_sha, True) for b in parse_branches(body, "sha"))
    )


async def list_branches(
    http: HostHTTP, api: str, repository_id: str, previous: BranchListing | None
) -> BranchListing:
    """Every branch of ``owner/name`` with its head and protection, revalidating ``previous`` by ETag."""
    base = _repository_path(repository_id)
    paginator = Paginator(http, api, check=_check)
    before = previous.pages if previous else ()
    try:
        refs, protected = await gather_first_error(
            [
                paginator.walk(f"{base}/git/matching-refs/heads", {}, parse_refs, before),
                paginator.walk(f"{base}/branches", {"protected": "true"}, parse_protected, before),
            ]
        )
    except EmptyRepository:
        return BranchListing(pages=())
    except ProviderUnavailableError as exc:
        if not isinstance(exc.__cause__, AnswerTooLarge):
            raise
        # Too many branches for one answer: every branch page by page, each with its protection.
        paged = await paginator.walk(f"{base}/branches", {}, parse_branch_page, before)
        return BranchListing(pages=tuple(paged.pages), complete=paged.complete)
    return BranchListing(pages=(*refs.pages, *protected.pages), complete=refs.complete and protected.complete)


async def branches_starting_with(
    http: HostHTTP, api: str, repository_id: str, prefix: str
) -> list[Branch] | None:
    """The branches whose names start with ``prefix`` (case-sensitive), or None when GitHub's answer
    cannot be known to hold all of them (see the module docstring)."""
    if not _SAFE_PREFIX.fullmatch(prefix) or ".." in prefix:
        return None  # no branch name can start with it in a way the path can carry: ask the full list
    base = _repository_path(repository_id)
    paginator = Paginator(http, api, check=_check)
    try:
        refs, protected = await gather_first_error(
            [
                paginator.walk(f"{base}/git/matching-refs/heads/{quote(prefix, safe='/')}", {}, parse_refs),
                paginator.walk(f"{base}/branches", {"protected": "true"}, parse_protected),
            ]
        )
    except EmptyRepository:
        return []
    if not refs.complete:
        return None
    listing = BranchListing(pages=(*refs.pages, *protected.pages))
    # Protected branches the refs did not name do not start with the prefix (or were made since).
    named = {b.name for page in refs.pages for b in page.branches}
    found = [b for b in listing.branches if b.name in named and b.name.startswith(prefix)]
    if prefix in named:
        return None
    return found
