"""One stream's walk: by page number in as few rounds as the host allows, by key where numbers run out.

By number (GitHub, GitLab up to 10,000 records): page 1, then every page up to the last one it names
(``Link: rel="last"`` or GitLab's ``x-total-pages``) at once, as many in flight as the listing's
window allows (``net.window``). When page 1 names no last page (GitLab omits totals above 10,000
records) the walk goes on by key if the stream has a ``Keyset``, else follows ``rel="next"`` one page
at a time. A page number the host refuses with 400 (gitlab.com: offsets past 50,000 records) ends the
numbered part: by key from there, or the walk stops and says it is incomplete.

By key (GitLab ``pagination=keyset&order_by=id&sort=asc``): one page after the other, each named by
the previous one's ``Link: rel="next"`` (its ``id_after``), since nothing else is known.

Revalidation asks every stored page again at once with ``If-None-Match`` (a 304 reuses it). Numbered
pages re-plan from page 1's ``Link``. Keyed pages are chained again: each must continue where the one
before it ends; from the first that does not (a project added or removed in between), the walk goes
on by key, still reusing any stored page whose key comes up again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Protocol, TypeVar

import httpx

from app.domain.errors import NeedsReconnectError, ProviderUnavailableError, PublicError, RateLimitedError
from app.net.client import json_body
from app.net.pages import HiddenFrom, Keyset, PageRecord, ParsePage, StreamResult, positive

logger = logging.getLogger(__name__)

PER_PAGE = 100
T = TypeVar("T")


class PageSource(Protocol):
    """What a walk asks of its ``Paginator``."""

    host: str
    max_pages: int
    hidden: HiddenFrom

    async def get(
        self, path: str, params: Mapping[str, str | int], etag: str | None, *, allow: Collection[int] = ()
    ) -> httpx.Response: ...

    def link_page(self, response: httpx.Response, rel: str) -> int | None: ...

    def link_param(self, response: httpx.Response, rel: str, name: str) -> str | None: ...


class OffsetStopped(Exception):
    """The host refused a page number (400): its numbered pages end before it."""

    def __init__(self, number: int) -> None:
        super().__init__(f"page {number} refused")
        self.number = number


class StreamWalk:
    """The pages of one stream fetched or reused, and the answers that say which pages exist."""

    def __init__(
        self,
        source: PageSource,
        stream: str,
        params: Mapping[str, str | int],
        parse: ParsePage,
        previous: Sequence[PageRecord],
        keyset: Keyset | None,
    ) -> None:
        self.p = source
        self.stream = stream
        self.params = {**params, "per_page": PER_PAGE}
        self.parse = parse
        self.keyset = keyset
        self.previous = {p.number: p for p in previous if p.stream == stream and p.cursor is None}
        self.previous_keyed = sorted(
            (p for p in previous if p.stream == stream and p.cursor is not None), key=lambda p: p.number
        )
        self.pages: dict[int, PageRecord] = {}
        self.responses: dict[int, httpx.Response] = {}

    async def run(self) -> StreamResult:
        known = sorted(n for n in self.previous if n <= self.p.max_pages)
        if self.keyset is not None and self.previous_keyed and known[:1] == [1]:
            return await self.revalidate_keyed(known)
        # Cold: page 1 alone. Revalidation: every known page in one round.
        stopped = await self.fetch_numbers(known if known[:1] == [1] else [1])
        if stopped is None:
            last = self.announced_last(self.responses[1])
            bare_304 = self.responses[1].status_code == 304 and not _has_paging_headers(self.responses[1])
            if last is None and bare_304:
                return await self.follow_next()  # a bare 304 says nothing new: the stored pages stand
            if last is None:
                if self.keyset is not None:
                    return await self.by_key(after=1, cursor=self.keyset.after(self.pages[1].content()))
                return await self.follow_next()
            end = min(last, self.p.max_pages)
            stopped = await self.fetch_numbers([n for n in range(2, end + 1) if n not in self.pages])
            if stopped is None:
                if last > end:
                    logger.warning("listing %s stopped at %d pages of %d", self.stream, end, last)
                return self.result(end=end, complete=last <= end)
        return await self.after_refusal(stopped)

    async def after_refusal(self, stopped: int) -> StreamResult:
        """Numbered pages end before ``stopped``: by key from there, or an incomplete list."""
        end = stopped - 1
        if self.keyset is not None:
            return await self.by_key(after=end, cursor=self.keyset.after(self.pages[end].content()))
        logger.warning("listing %s: the host refused page %d", self.stream, stopped)
        return self.result(end=end, complete=False)

    async def fetch_numbers(self, numbers: Sequence[int]) -> int | None:
        """Fetch these pages at once; the first page number the host refused, if any."""
        outcomes = await asyncio.gather(*(self.fetch(n) for n in numbers), return_exceptions=True)
        errors = [e for e in outcomes if isinstance(e, BaseException) and not isinstance(e, OffsetStopped)]
        if errors:
            raise_most_telling(errors)
        refused = [e.number for e in outcomes if isinstance(e, OffsetStopped)]
        return min(refused) if refused else None

    async def follow_next(self) -> StreamResult:
        """No last page announced and no keys: follow ``next`` one page at a time."""
        number = 1
        while (following := self.next_of(number)) is not None:
            if following > self.p.max_pages:
                logger.warning("listing %s stopped at %d pages", self.stream, number)
                return self.result(end=number, complete=False)
            if following not in self.responses:
                try:
                    await self.fetch(following)
                except OffsetStopped:
                    return self.result(end=number, complete=False)
            number = following
        return self.result(end=number, complete=self.ends_here(number))

    async def fetch(self, number: int) -> None:
        before = self.previous.get(number)
        params = {**self.params, "page": number}
        # Past page 1 a 400 is the host refusing that page number, not the request (gitlab.com:
        # "Offset pagination has a maximum allowed offset of 50000 …").
        response = await self.p.get(
            self.stream, params, before.etag if before else None, allow=(400,) if number > 1 else ()
        )
        if response.status_code == 400:
            raise OffsetStopped(number)
        self.pages[number] = self.record(response, number, before, cursor=None)
        self.responses[number] = response

    def record(
        self, response: httpx.Response, number: int, before: PageRecord | None, *, cursor: str | None
    ) -> PageRecord:
        hidden = self.p.hidden(response)
        if response.status_code == 304 and before is not None:
            return replace(
                before,
                number=number,
                etag=response.headers.get("etag") or before.etag,
                fetched=False,
                hidden_organizations=before.hidden_organizations if hidden is None else hidden,
            )
        if response.status_code != 200:
            raise ProviderUnavailableError(
                f"{self.p.host} answered HTTP {response.status_code} while listing; try again later."
            )
        content = self.parse(json_body(response, self.p.host))
        return PageRecord(
            stream=self.stream,
            number=number,
            etag=response.headers.get("etag"),
            repositories=content.repositories,
            references=content.references,
            branches=content.branches,
            hidden_organizations=hidden or (),
            cursor=cursor,
        )

    # --- by key --------------------------------------------------------------------------------

    async def by_key(self, *, after: int, cursor: str | None) -> StreamResult:
        """Pages after page ``after``, one at a time, from ``cursor`` on (stored pages reused by key)."""
        number = after
        while cursor is not None:
            if number >= self.p.max_pages:
                logger.warning("listing %s stopped at %d pages", self.stream, number)
                return self.result(end=number, complete=False)
            number += 1
            cursor = await self.fetch_key(number, cursor, self.stored_at(cursor))
        return self.result(end=number, complete=self.ends_here(number))

    async def fetch_key(self, number: int, cursor: str, before: PageRecord | None) -> str | None:
        """Fetch the page continuing after ``cursor`` as page ``number``; the key of the page after it."""
        assert self.keyset is not None
        params = {**self.params, **self.keyset.params, self.keyset.cursor: cursor}
        response = await self.p.get(self.stream, params, before.etag if before else None)
        self.pages[number] = self.record(response, number, before, cursor=cursor)
        self.responses[number] = response
        following = self.p.link_param(response, "next", self.keyset.cursor)
        if following is None and response.status_code == 304 and "link" not in response.headers:
            following = self.stored_after(before)  # a bare 304: what followed that page before
        return None if following == cursor else following  # a page naming itself would loop forever

    async def revalidate_keyed(self, numbered: list[int]) -> StreamResult:
        """Every stored page asked again at once; the keyed chain repaired where it broke."""
        assert self.keyset is not None
        keyed = [p for p in self.previous_keyed if p.number <= self.p.max_pages]
        followers: list[str | None] = [None] * len(keyed)

        async def again(index: int, page: PageRecord) -> None:
            assert page.cursor is not None
            followers[index] = await self.fetch_key(page.number, page.cursor, page)

        results = await asyncio.gather(
            self.fetch_numbers(numbered), *(again(i, p) for i, p in enumerate(keyed)), return_exceptions=True
        )
        errors = [e for e in results if isinstance(e, BaseException)]
        if errors:
            raise_most_telling(errors)
        stopped = results[0]
        if isinstance(stopped, int):
            self.forget_after(stopped - 1)
            return await self.after_refusal(stopped)
        last_numbered = max(numbered)
        expected = self.keyset.after(self.pages[last_numbered].content())
        end = last_numbered
        for page, following in zip(keyed, followers, strict=True):
            if page.cursor != expected or expected is None:
                break
            end, expected = page.number, following
        self.forget_after(end)
        return await self.by_key(after=end, cursor=expected)

    def stored_at(self, cursor: str) -> PageRecord | None:
        return next((p for p in self.previous_keyed if p.cursor == cursor), None)

    def stored_after(self, before: PageRecord | None) -> str | None:
        if before is None:
            return None
        later = [p for p in self.previous_keyed if p.number > before.number]
        return later[0].cursor if later else None

    def forget_after(self, end: int) -> None:
        for number in [n for n in self.pages if n > end]:
            del self.pages[number]
            self.responses.pop(number, None)

    # --- what the answers say --------------------------------------------------------------------

    def announced_last(self, response: httpx.Response) -> int | None:
        """The last page, as ``Link: rel="last"`` or GitLab's ``x-total-pages`` name it."""
        return self.p.link_page(response, "last") or positive(response.headers.get("x-total-pages"))

    def next_of(self, number: int) -> int | None:
        response = self.responses[number]
        following = positive(response.headers.get("x-next-page")) or self.p.link_page(response, "next")
        if following is None and response.status_code == 304 and not _has_paging_headers(response):
            # A bare 304 says nothing about what follows: the stored walk continued if it has more.
            following = number + 1 if number + 1 in self.responses else None
        if following is not None and following <= number:
            return None  # a host pointing backwards would make this loop forever
        return following

    def ends_here(self, number: int) -> bool:
        """Whether page ``number`` is the last: a next page named where the walk cannot follow it
        (outside the API base, a page naming itself) leaves the list partial, never silently so."""
        response = self.responses.get(number)
        return response is None or "next" not in response.links

    def result(self, *, end: int, complete: bool) -> StreamResult:
        return StreamResult([self.pages[n] for n in sorted(self.pages) if n <= end], complete)


def raise_most_telling(errors: Sequence[BaseException]) -> None:
    """Raise the failure that tells the user the most: a rate limit (it says how long to wait), then
    a refused token, then any public error, then the rest."""
    for kind in (RateLimitedError, NeedsReconnectError, PublicError, Exception):
        found = next((e for e in errors if isinstance(e, kind)), None)
        if found is not None:
            raise found
    raise errors[0]


async def gather_first_error(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Run ``calls`` concurrently; if any failed, raise the one that tells the user the most.

    Every call finishes first (nothing is left running).
    """
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise_most_telling(errors)
    return [r for r in results if not isinstance(r, BaseException)]


def _has_paging_headers(response: httpx.Response) -> bool:
    return any(name in response.headers for name in ("link", "x-next-page", "x-total-pages"))
