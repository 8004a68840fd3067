"""A repository listing as the host paged it: what the cache keeps and what revalidation needs.

A listing is made of *streams*: one paginated resource each (``/user/repos``; for a GitHub App one
stream per installation plus the installations themselves). Every page keeps the ETag the host sent
with it, so a later listing can ask "changed since?" with ``If-None-Match`` and reuse the page on a
304 — which GitHub does not count against the rate limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from app.domain.models import Repository, RepositoryAccess


@dataclass(frozen=True)
class PageRecord:
    """One page of one stream, as the host last sent it."""

    stream: str  # which paginated resource, e.g. "/user/repos" or "/user/installations/42/repositories"
    number: int  # 1-based page number
    etag: str | None
    repositories: tuple[Repository, ...] = ()
    # Anything else a page lists that the next listing needs (GitHub installation ids).
    references: tuple[str, ...] = ()
    # Whether this listing fetched the page (False: a 304 or an unchanged stored page was reused).
    fetched: bool = True


@dataclass(frozen=True)
class Listing:
    """Every page of every stream of one listing, plus what the host said about the access."""

    pages: tuple[PageRecord, ...]
    # SELECTED when the host says some repositories were left out (a GitHub App installed on
    # "selected repositories"); None when the host does not say and the integration knows best.
    repository_access: RepositoryAccess | None = None
    complete: bool = True  # False when the walk stopped at the page limit

    @cached_property
    def repositories(self) -> list[Repository]:
        """Every repository once (a repository may appear in two streams), most recently pushed first."""
        return ordered(repo for page in self.pages for repo in page.repositories)


def sort_key(repo: Repository) -> tuple[float, str]:
    """Most recently pushed first; never pushed (empty repositories) last; ties by id, so the order is total."""
    pushed = repo.pushed_at.timestamp() if repo.pushed_at is not None else float("-inf")
    return (-pushed, repo.id)


def ordered(repositories: Iterable[Repository]) -> list[Repository]:
    unique: dict[str, Repository] = {}
    for repo in repositories:
        unique.setdefault(repo.id, repo)
    return sorted(unique.values(), key=sort_key)
