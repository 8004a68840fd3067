"""What a walk of a host's pages is made of: the pages as kept (``PageRecord``), what one page lists
(``PageContent``), and how a stream is paged by key when offsets run out (``Keyset``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from app.domain.models import Branch, Repository


@dataclass(frozen=True)
class PageRecord:
    """One page of one stream of a listing, as the host last sent it, with its ETag.

    A listing is made of *streams*: one paginated resource each (``/user/repos``; for a GitHub App one
    stream per installation plus the installations themselves). The ETag lets a later walk ask
    "changed since?" with ``If-None-Match`` and reuse the page on a 304, which GitHub does not count
    against the rate limit.
    """

    stream: str  # which paginated resource, e.g. "/user/repos" or "/user/installations/42/repositories"
    number: int  # 1-based position in the stream
    etag: str | None
    repositories: tuple[Repository, ...] = ()
    branches: tuple[Branch, ...] = ()
    # Anything else a page lists that the next listing needs (GitHub installation ids).
    references: tuple[str, ...] = ()
    # Whether this walk fetched the page (False: a 304 or an unchanged stored page was reused).
    fetched: bool = True
    # Organizations whose repositories the host left out of this page (GitHub ``X-GitHub-SSO:
    # partial-results``), as the host named them.
    hidden_organizations: tuple[str, ...] = ()
    # A page asked for by key (``Keyset``): the key it continues after (GitLab ``id_after``); None for
    # a page asked for by its number.
    cursor: str | None = None

    def content(self) -> PageContent:
        return PageContent(self.repositories, self.references, self.branches)


@dataclass(frozen=True)
class PageContent:
    """What one page lists, parsed from its body."""

    repositories: tuple[Repository, ...] = ()
    references: tuple[str, ...] = ()
    branches: tuple[Branch, ...] = ()


@dataclass(frozen=True)
class Keyset:
    """How a stream is paged by key when its offset pages run out (GitLab ``/projects``).

    ``params`` switch the stream to keyset pages (``pagination=keyset&order_by=id&sort=asc``); the
    host names the next page in ``Link: rel="next"`` by the parameter ``cursor`` (``id_after``);
    ``after`` says which key continues after a page (its last id), for the first keyset page that
    follows offset pages.
    """

    params: Mapping[str, str]
    cursor: str
    after: Callable[[PageContent], str | None]


@dataclass(frozen=True)
class StreamResult:
    pages: list[PageRecord]
    complete: bool  # False when the walk stopped before the host's last page


ParsePage = Callable[[Any], PageContent]
CheckResponse = Callable[[httpx.Response], None]
# What a page's headers say the host left out of it (GitHub: organizations behind SAML SSO); None
# when the headers do not say (a bare 304 then keeps what the stored page said).
HiddenFrom = Callable[[httpx.Response], tuple[str, ...] | None]


def nothing_hidden(response: httpx.Response) -> tuple[str, ...] | None:
    return None


def positive(value: str | None) -> int | None:
    """A positive integer from a header or parameter; None for anything else."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


__all__ = [
    "CheckResponse",
    "HiddenFrom",
    "Keyset",
    "PageContent",
    "PageRecord",
    "ParsePage",
    "StreamResult",
    "nothing_hidden",
    "positive",
]
