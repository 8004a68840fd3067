"""Walking a host's page-numbered listing in as few round trips as its pagination allows.

Both GitHub and GitLab page with ``page`` / ``per_page`` and announce the last page on page 1
(GitHub ``Link: rel="last"``; GitLab the same, or ``x-total-pages``). So a cold walk is two rounds:
page 1, then every other page at once (bounded by ``PagePolicy.concurrency``). When the host does not
name the last page (GitLab above 10,000 records omits totals and ``rel="last"``), the walk follows
``x-next-page`` / ``rel="next"`` one page at a time, since nothing else is known.

A walk that has a previous copy of the stream revalidates it: every known page is asked again at
once with ``If-None-Match``; a 304 reuses the stored page (and costs no GitHub rate limit). If page
1 changed, its ``Link`` re-plans the walk: pages beyond the old end are fetched, pages past the new
end are dropped.

Links are never followed as URLs: the next request is built from our own URL and parameters with
the page number the link names (read with ``httpx.Response.links``). A link pointing outside the API
base is ignored altogether — it could only come from a misbehaving host or proxy, and following it
would carry the token there.

Every page walk of the service goes through ``Paginator``: ``walk`` for listings that are kept and
revalidated (``PageRecord`` keeps each page's ETag), ``follow`` for short reads one page after the
other that may stop early (a token's repositories and installations while it is being checked).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from urllib.parse import SplitResult, parse_qs, urlsplit

import httpx

from app.domain.errors import NeedsReconnectError, ProviderUnavailableError, PublicError, RateLimitedError
from app.domain.models import Branch, Repository
from app.net.client import HostHTTP, json_body

logger = logging.getLogger(__name__)

PER_PAGE = 100

T = TypeVar("T")


@dataclass(frozen=True)
class PageRecord:
    """One page of one stream of a listing, as the host last sent it, with its ETag.

    A listing is made of *streams*: one paginated resource each (``/user/repos``; for a GitHub App one
    stream per installation plus the installations themselves). The ETag lets a later walk ask
    "changed since?" with ``If-None-Match`` and reuse the page on a 304, which GitHub does not count
    against the rate limit.
    """

    stream: str  # which paginated resource, e.g. "/user/repos" or "/user/installations/42/repositories"
    number: int  # 1-based page number
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


@dataclass(frozen=True)
class PageContent:
    """What one page lists, parsed from its body."""

    repositories: tuple[Repository, ...] = ()
    references: tuple[str, ...] = ()
    branches: tuple[Branch, ...] = ()


ParsePage = Callable[[Any], PageContent]
CheckResponse = Callable[[httpx.Response], None]
# What a page's headers say the host left out of it (GitHub: organizations behind SAML SSO); None
# when the headers do not say (a bare 304 then keeps what the stored page said).
HiddenFrom = Callable[[httpx.Response], tuple[str, ...] | None]


def _nothing_hidden(response: httpx.Response) -> tuple[str, ...] | None:
    return None


@dataclass(frozen=True)
class StreamResult:
    pages: list[PageRecord]
    complete: bool


class Paginator:
    """Walks the streams below one API base; all its walks share one bound on concurrent requests.

    ``check`` sees every answer first and raises for those the caller treats as failures (a refused
    token, a vanished resource), in the caller's words; ``hidden`` reads what a page's headers say
    was left out of it (``PageRecord.hidden_organizations``).
    """

    def __init__(
        self,
        http: HostHTTP,
        api_base: str,
        *,
        check: CheckResponse,
        hidden: HiddenFrom = _nothing_hidden,
    ) -> None:
        self._http = http
        self.host = http.host
        self._api_base = api_base.rstrip("/")
        self._check = check
        self.hidden = hidden
        policy = http.pages
        self._slots = asyncio.Semaphore(policy.concurrency)
        self.max_pages = policy.max_pages
        self.requests = 0

    async def walk(
        self,
        stream: str,
        params: Mapping[str, str | int],
        parse: ParsePage,
        previous: Sequence[PageRecord] = (),
    ) -> StreamResult:
        """Every page of ``stream`` (a path below the API base), fresh or revalidated against ``previous``."""
        walk = _Walk(self, stream, params, parse, {p.number: p for p in previous if p.stream == stream})
        return await walk.run()

    async def get(self, path: str, params: Mapping[str, str | int], etag: str | None) -> httpx.Response:
        """One bounded GET below the API base; refusals are raised by ``check``."""
        async with self._slots:
            self.requests += 1
            response = await self._http.get(f"{self._api_base}{path}", params=params, etag=etag)
        self._check(response)
        return response

    def follow(
        self, path: str, params: Mapping[str, str | int], parse: Callable[[Any], T], *, max_pages: int
    ) -> FollowedWalk[T]:
        """Read ``path`` page after page, following ``rel="next"``, at most ``max_pages`` pages.

        Iterate the result for each page's parsed content; the caller may stop early. Its
        ``complete`` is True once the host named no further page.
        """
        return FollowedWalk(self, path, params, parse, max_pages)

    def link_page(self, response: httpx.Response, rel: str) -> int | None:
        """The page number a ``Link`` relation names, if the link stays on this API."""
        url = response.links.get(rel, {}).get("url")
        if url is None:
            return None
        if not _inside(url, self._api_base):
            logger.warning("ignoring a Link rel=%s that points outside the API base", rel)
            return None
        values = parse_qs(urlsplit(url).query).get("page")
        return _positive(values[0]) if values else None


class _Walk:
    """One stream's walk: the pages fetched or reused, and the answers that say which pages exist."""

    def __init__(
        self,
        paginator: Paginator,
        stream: str,
        params: Mapping[str, str | int],
        parse: ParsePage,
        previous: dict[int, PageRecord],
    ) -> None:
        self.p = paginator
        self.stream = stream
        self.params = {**params, "per_page": PER_PAGE}
        self.parse = parse
        self.previous = previous
        self.pages: dict[int, PageRecord] = {}
        self.responses: dict[int, httpx.Response] = {}

    async def run(self) -> StreamResult:
        known = sorted(n for n in self.previous if n <= self.p.max_pages)
        # Cold: page 1 alone. Revalidation: every known page in one round.
        await gather_first_error([self.fetch(n) for n in (known if known[:1] == [1] else [1])])
        last = self.announced_last(self.responses[1])
        if last is None:
            return await self.follow_next()
        end = min(last, self.p.max_pages)
        await gather_first_error([self.fetch(n) for n in range(2, end + 1) if n not in self.pages])
        if last > end:
            logger.warning("listing %s stopped at %d pages of %d", self.stream, end, last)
        return self.result(end=end, complete=last <= end)

    async def follow_next(self) -> StreamResult:
        """No last page announced: follow ``next`` one page at a time (GitLab above 10,000 records)."""
        number = 1
        while (following := self.next_of(number)) is not None:
            if following > self.p.max_pages:
                logger.warning("listing %s stopped at %d pages", self.stream, number)
                return self.result(end=number, complete=False)
            if following not in self.responses:
                await self.fetch(following)
            number = following
        return self.result(end=number, complete=True)

    async def fetch(self, number: int) -> None:
        before = self.previous.get(number)
        params = {**self.params, "page": number}
        response = await self.p.get(self.stream, params, before.etag if before else None)
        hidden = self.p.hidden(response)
        if response.status_code == 304 and before is not None:
            self.pages[number] = replace(
                before,
                etag=response.headers.get("etag") or before.etag,
                fetched=False,
                hidden_organizations=before.hidden_organizations if hidden is None else hidden,
            )
        elif response.status_code == 200:
            content = self.parse(json_body(response, self.p.host))
            self.pages[number] = PageRecord(
                stream=self.stream,
                number=number,
                etag=response.headers.get("etag"),
                repositories=content.repositories,
                references=content.references,
                branches=content.branches,
                hidden_organizations=hidden or (),
            )
        else:
            raise ProviderUnavailableError(
                f"{self.p.host} answered HTTP {response.status_code} while listing repositories; "
                "try again later."
            )
        self.responses[number] = response

    def announced_last(self, response: httpx.Response) -> int | None:
        """The last page, as ``Link: rel="last"`` or GitLab's ``x-total-pages`` name it."""
        return self.p.link_page(response, "last") or _positive(response.headers.get("x-total-pages"))

    def next_of(self, number: int) -> int | None:
        response = self.responses[number]
        following = _positive(response.headers.get("x-next-page")) or self.p.link_page(response, "next")
        if following is None and response.status_code == 304 and not _has_paging_headers(response):
            # A bare 304 says nothing about what follows: the stored walk continued if it has more.
            following = number + 1 if number + 1 in self.responses else None
        if following is not None and following <= number:
            return None  # a host pointing backwards would make this loop forever
        return following

    def result(self, *, end: int, complete: bool) -> StreamResult:
        return StreamResult([self.pages[n] for n in sorted(self.pages) if n <= end], complete)


class FollowedWalk(Generic[T]):
    """One ``Paginator.follow``: an async iterator of parsed pages (see there)."""

    def __init__(
        self,
        paginator: Paginator,
        path: str,
        params: Mapping[str, str | int],
        parse: Callable[[Any], T],
        max_pages: int,
    ) -> None:
        self._p = paginator
        self._path = path
        self._params = params
        self._parse = parse
        self._max_pages = max_pages
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[T]:
        params: Mapping[str, str | int] = self._params  # page 1 as the caller asked for it
        for _ in range(self._max_pages):
            response = await self._p.get(self._path, params, None)
            content = self._parse(json_body(response, self._p.host))
            following = self._p.link_page(response, "next")
            if following is None and "next" not in response.links:
                self.complete = True  # the host named no further page
            yield content
            if following is None:
                return
            params = {**self._params, "page": following}


async def gather_first_error(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Run ``calls`` concurrently; if any failed, raise the failure that tells the user the most.

    Every call finishes first (nothing is left running). A rate limit wins, because it says how long
    to wait; then a refused token; then any public error; then the rest.
    """
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        for kind in (RateLimitedError, NeedsReconnectError, PublicError, Exception):
            found = next((e for e in errors if isinstance(e, kind)), None)
            if found is not None:
                raise found
        raise errors[0]
    return [r for r in results if not isinstance(r, BaseException)]


def _inside(url: str, api_base: str) -> bool:
    target, base = urlsplit(url), urlsplit(api_base)
    try:
        same_origin = (target.scheme, target.hostname, _port(target)) == (
            base.scheme,
            base.hostname,
            _port(base),
        )
    except ValueError:  # a port that is not a number
        return False
    if not same_origin:
        return False
    base_path = base.path.rstrip("/")
    return target.path == base_path or target.path.startswith(f"{base_path}/")


def _port(parts: SplitResult) -> int | None:
    return parts.port or {"https": 443, "http": 80}.get(parts.scheme)


def _has_paging_headers(response: httpx.Response) -> bool:
    return any(name in response.headers for name in ("link", "x-next-page", "x-total-pages"))


def _positive(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() and int(value) > 0 else None
