"""``Paginator``: every page walk of the service, below one API base, within one adaptive window.

``walk`` reads a whole stream for a listing that is kept and revalidated (``net.walk``: by page
number in two rounds where the host names the last page, by key where GitLab's numbers run out;
``PageRecord`` keeps each page's ETag, so a revalidation costs 304s). ``follow`` reads a short list
page after page and may stop early (a token's repositories and installations while it is checked).
``get`` is one request in the listing's window (``net.window``): the window grows while the host
answers cleanly and shrinks when it signals a rate limit.

Links are never followed as URLs: the next request is built from our own URL and parameters with
the page number (or key) the link names, read with ``httpx.Response.links``. A link pointing
outside the API base, or to another path, is ignored altogether — it could only come from a
misbehaving host or proxy, and following it would carry the token there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import SplitResult, parse_qs, urlsplit

import httpx

from app.domain.errors import RateLimitedError
from app.net.client import HostHTTP, json_body
from app.net.pages import (
    CheckResponse,
    HiddenFrom,
    Keyset,
    PageContent,
    PageRecord,
    ParsePage,
    StreamResult,
    nothing_hidden,
    positive,
)
from app.net.walk import PER_PAGE, StreamWalk, gather_first_error
from app.net.window import PageWindow

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Paginator:
    """Walks the streams below one API base; all its walks share one window of pages in flight.

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
        hidden: HiddenFrom = nothing_hidden,
    ) -> None:
        self._http = http
        self.host = http.host
        self._api_base = api_base.rstrip("/")
        self._check = check
        self.hidden = hidden
        self.policy = http.pages
        self.window = PageWindow(self.policy.first_window, self.policy.max_window)
        self.max_pages = self.policy.max_pages
        self.requests = 0

    async def walk(
        self,
        stream: str,
        params: Mapping[str, str | int],
        parse: ParsePage,
        previous: Sequence[PageRecord] = (),
        *,
        keyset: Keyset | None = None,
    ) -> StreamResult:
        """Every page of ``stream`` (a path below the API base), fresh or revalidated against ``previous``;
        by key (``keyset``) where the host stops numbering pages."""
        return await StreamWalk(self, stream, params, parse, previous, keyset).run()

    async def get(
        self, path: str, params: Mapping[str, str | int], etag: str | None, *, allow: Collection[int] = ()
    ) -> httpx.Response:
        """One GET below the API base within the window; answers other than ``allow`` go through ``check``.

        A rate limit halves the window; one asking for a short pause (``PagePolicy.inline_wait_seconds``)
        is waited out and the page asked again, a longer one closes the window and is raised.
        """
        attempt = 0
        while True:
            async with self.window.slot() as ticket:
                self.requests += 1
                try:
                    response = await self._http.get(f"{self._api_base}{path}", params=params, etag=etag)
                except RateLimitedError as exc:
                    limited: RateLimitedError | None = exc
                    ticket.throttled = True  # halves the window as the slot is given back
                else:
                    ticket.clean = True
                    limited = None
            if limited is None:
                break
            wait = limited.retry_after_seconds
            if (
                wait is None
                or wait > self.policy.inline_wait_seconds
                or attempt >= self.policy.throttle_retries
            ):
                await self.window.close(limited)
                raise limited
            logger.info("%s asked for a pause of %s s: asking again", self.host, wait)
            await asyncio.sleep(wait)
            attempt += 1
        if response.status_code not in allow:
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
        value = self.link_param(response, rel, "page", same_path=False)
        return positive(value)

    def link_param(
        self, response: httpx.Response, rel: str, name: str, *, same_path: bool = True
    ) -> str | None:
        """A query parameter of a ``Link`` relation (GitLab's keyset ``id_after``), if the link stays
        on this API (and, with ``same_path``, on the path that was asked)."""
        url = response.links.get(rel, {}).get("url")
        if url is None:
            return None
        if not inside_base(url, self._api_base):
            logger.warning("ignoring a Link rel=%s that points outside the API base", rel)
            return None
        if same_path and httpx.URL(url).path.rstrip("/") != response.request.url.path.rstrip("/"):
            logger.warning("ignoring a Link rel=%s that points to another path", rel)
            return None
        values = parse_qs(urlsplit(url).query).get(name)
        return values[0] if values and len(values[0]) <= 200 else None


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


def inside_base(url: str, api_base: str) -> bool:
    """Whether ``url`` is on the origin of ``api_base`` and below its path."""
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


__all__ = [
    "PER_PAGE",
    "CheckResponse",
    "FollowedWalk",
    "HiddenFrom",
    "Keyset",
    "PageContent",
    "PageRecord",
    "Paginator",
    "ParsePage",
    "StreamResult",
    "gather_first_error",
]
