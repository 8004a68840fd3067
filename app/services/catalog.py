"""The repository catalog: an integration's repositories for the picker — cached, revalidated, shared.

- The complete list of an integration is kept in the listing store (``app.storage.listings``).
  Within ``REPOSITORY_CACHE_SECONDS`` it is served without asking the host; after that (or with
  ``refresh``) every stored page is revalidated with its ETag, so an unchanged list costs 304s.
- Concurrent requests for the same listing share one walk of the host (single flight); callers get
  the list as soon as the host has answered, and saving it is the flight's tail.
- Large lists are revalidated less often: a stored list stays fresh for ``REPOSITORY_CACHE_SECONDS``
  or 1.2 s per page it holds, whichever is longer (``REVALIDATION_PER_PAGE``). Revalidating asks every
  page again, and GitLab counts 304s against its limit: 2,000 requests per 10 minutes per user on
  gitlab.com for ``/projects``; a 60,000-project list (600 pages) is then revalidated at most every
  12 minutes, at most 500 requests per 10 minutes, a quarter of that budget.
- First page: without a search, ``first_page`` (``HeadRequest``) answers from the host's own list
  of the most recently pushed repositories in one round (``GitHost.first_page``) while the whole list
  is walked in the background; later pages and searches use the whole list. Only repositories the
  host's page decides are answered (ties on the push time at the page's end may continue on the
  host's next page); the total comes from the host, or the answer waits for the whole list.
- Search: the complete list is filtered (case-insensitive, name or full name) — a search always
  waits for the complete list. A host that searches by itself (``GitHost.searches_repositories``:
  GitLab, which also matches group paths) gets a listing per search text, cached the same way,
  unless the complete list is fresh: then that is filtered, without asking the host.
- A 401 (or a refusal that only a new token fixes) marks the integration ``NEEDS_RECONNECT``
  (``HostAccess``). When the host is down or rate limiting and an expired list is stored, that
  list is served (``fetched_at`` says how old it is) rather than nothing; ``refresh`` asks for the
  truth and fails.

Pages of the answer (Relay cursors, ``first``/``after``) are the GraphQL connection's business
(``app.graphql.types.connection``); this service answers the whole list.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.domain.errors import ProviderUnavailableError
from app.domain.models import AccessNotice, Integration, Repository, RepositoryAccess, ordered
from app.hosts.base import GitHost, HeadPage, Listing
from app.hosts.registry import HostRegistry
from app.metrics import Metrics
from app.services.clock import Clock
from app.services.credentials import HostAccess, require_active
from app.services.single_flight import SingleFlight
from app.storage.integrations import IntegrationRepository
from app.storage.listings import ListingStore, PendingSave, StoredListing
from app.tracing import NO_TRACING, SpanHandle, Tracing

logger = logging.getLogger(__name__)

FULL_LISTING = "all"
# A stored list stays fresh at least this long per page it holds (see the module docstring).
REVALIDATION_PER_PAGE = timedelta(seconds=1.2)
MAX_HEAD = 100  # the most a host's page holds
# The host's first page is asked this much longer than the answer needs: room for ties at its end.
HEAD_SLACK = 10


@dataclass(frozen=True)
class HeadRequest:
    """A first page (no cursor, no search) of ``first`` repositories; ``total``: the query wants the exact
    count, so a host's page may answer only if the host says how many there are."""

    first: int
    total: bool


@dataclass(frozen=True)
class ListingSource:
    key: str
    generation: str


@dataclass(frozen=True)
class RepositoryList:
    """The repositories of one integration (matching a search), most recently pushed first."""

    repositories: list[Repository]
    repository_access: RepositoryAccess
    manage_access_url: str | None
    fetched_at: datetime  # when the host last confirmed this list
    complete: bool = True
    notices: tuple[AccessNotice, ...] = ()  # why repositories may be missing (kept with the listing)
    # A first page from the host's own order: ``repositories`` are only the first, ``more`` follow,
    # and ``total_count`` is what the host said (None when not asked for).
    more: bool = False
    total_count: int | None = None
    # The stored listing this was cut from (None: the host's own first page, or a refresh): what a kept
    # answer depends on (app.graphql.answer_cache).
    source: ListingSource | None = None

    @property
    def total(self) -> int | None:
        """How many repositories the whole list holds, when known."""
        return len(self.repositories) if not self.more and self.total_count is None else self.total_count


@dataclass(frozen=True)
class _Walked:
    """What one walk of the host gave: the listing to answer with, and how to save it (None: keep)."""

    stored: StoredListing
    pending: PendingSave | None


class RepositoryCatalog:
    """The picker's repositories of any integration (see the module docstring)."""

    def __init__(
        self,
        hosts: HostRegistry,
        access: HostAccess,
        listings: ListingStore,
        integrations: IntegrationRepository,
        clock: Clock,
        metrics: Metrics,
        *,
        fresh_for: timedelta,
        tracing: Tracing = NO_TRACING,
        one_round: int,
    ) -> None:
        self._hosts = hosts
        self._access = access
        self._listings = listings
        self._integrations = integrations
        self._clock = clock
        self._metrics = metrics
        self._fresh_for = fresh_for
        self._tracing = tracing
        self._one_round = one_round  # pages a revalidation asks for in its first round
        self._flights: SingleFlight[tuple[str, str], _Walked] = SingleFlight()
        self._heads: SingleFlight[tuple[str, str], HeadPage | None] = SingleFlight()
        # Whole lists still walked after their first page was answered: nobody waits for them.
        self._background: set[asyncio.Future[Any]] = set()

    async def repositories(
        self,
        integration: Integration,
        *,
        search: str | None = None,
        refresh: bool = False,
        first_page: HeadRequest | None = None,
    ) -> RepositoryList:
        """The integration's repositories matching ``search`` (already trimmed), cached or from the host.

        ``first_page``: only a first page is needed (no search): it may come from the host's own order
        (``more`` True). Raises ``NeedsReconnectError``, ``RateLimitedError`` /
        ``ProviderUnavailableError`` (when nothing is stored to fall back on) or ``ServiceUnavailableError``.
        """
        require_active(integration)
        attributes = {"git.provider": integration.provider.value, "listing.search": search is not None}
        with self._tracing.span("repository listing", attributes) as span:
            return await self._repositories(integration, search, refresh, first_page, span)

    async def _repositories(
        self,
        integration: Integration,
        search: str | None,
        refresh: bool,
        first_page: HeadRequest | None,
        span: SpanHandle,
    ) -> RepositoryList:
        on_host = search is not None and self._hosts.host(integration.endpoint).searches_repositories
        stored: StoredListing | None = None
        key = FULL_LISTING
        if search is None and first_page is not None:
            head = await self._head(integration, first_page, refresh)
            if isinstance(head, RepositoryList):
                span.set_attribute("listing.cache", "first_page")
                return head
            stored = head
        elif on_host and not refresh:
            whole = await self._fresh_whole(integration)
            if whole is not None and whole.listing.complete:
                stored, on_host = whole, False  # filter the fresh complete list instead
                span.set_attribute("listing.cache", "hit")
        if stored is None:
            key = _search_key(search) if on_host and search else FULL_LISTING
            stored = await self._listing(integration, key, search if on_host else None, refresh, span)
        repositories = stored.listing.repositories
        if search is not None and not on_host:
            needle = search.casefold()
            repositories = [
                r for r in repositories if needle in r.name.casefold() or needle in r.full_name.casefold()
            ]
        return RepositoryList(
            repositories=repositories,
            repository_access=stored.listing.repository_access or integration.repository_access,
            manage_access_url=integration.manage_access_url,
            fetched_at=stored.fetched_at,
            complete=stored.listing.complete,
            notices=stored.listing.notices,
            source=None if refresh else ListingSource(key, stored.generation),
        )

    async def drain(self, cancel_after: float | None = None) -> None:
        """Wait until every running listing has landed, its save included (shutdown, tests).

        ``cancel_after``: at most this long, then the listings still running are cancelled.
        """
        await self._flights.drain(cancel_after)
        await self._heads.drain(cancel_after)

    async def shut_down(self, cancel_after: float) -> None:
        """Shutdown: walks nobody waits for any more (a first page was answered) are let go at once;
        the rest land or are cancelled after ``cancel_after`` seconds (``drain``)."""
        for walk in list(self._background):
            walk.cancel()
        await self.drain(cancel_after)

    def fresh_for(self, stored: StoredListing) -> timedelta:
        """How long ``stored`` is answered without asking the host: longer for longer lists."""
        return max(self._fresh_for, REVALIDATION_PER_PAGE * len(stored.listing.pages))

    def is_fresh(self, stored: StoredListing) -> bool:
        """Whether ``stored`` is answered without asking the host (see ``fresh_for``)."""
        return self._clock() - stored.fetched_at < self.fresh_for(stored)

    async def _fresh_whole(self, integration: Integration) -> StoredListing | None:
        stored = await self._listings.load(integration.id, FULL_LISTING)
        if stored is None or stored.scope != scope_of(integration) or not self.is_fresh(stored):
            return None
        return stored

    async def _head(
        self, integration: Integration, wanted: HeadRequest, refresh: bool
    ) -> RepositoryList | StoredListing | None:
        """A first page from the host's own order while the whole list is walked; the whole list when
        it is fresh, small enough to revalidate in one round, or came first; None: wait for it."""
        if not self._flights.running((integration.id, FULL_LISTING)):
            stored = await self._listings.load(integration.id, FULL_LISTING)
            usable = stored is not None and stored.scope == scope_of(integration)
            if (
                usable
                and stored is not None
                and ((self.is_fresh(stored) and not refresh) or len(stored.listing.pages) <= self._one_round)
            ):
                return None  # answered from the store, or revalidated in one round anyway
        whole = asyncio.ensure_future(self._listing(integration, FULL_LISTING, None, refresh))
        size = min(MAX_HEAD, wanted.first + HEAD_SLACK)

        async def read(host: GitHost, token: str) -> HeadPage | None:
            return await host.first_page(token, integration, size=size, count=wanted.total)

        async def ask() -> HeadPage | None:
            return await self._access.call(integration, read)

        # Concurrent first pages of one integration (a double click, two tabs) share one request.
        shared = self._heads.run((integration.id, f"{size}:{wanted.total}"), ask)
        quick = asyncio.ensure_future(shared)
        racing: list[asyncio.Future[Any]] = [quick, whole]
        try:
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The caller left before any answer: nobody wants either read (the walk goes on only if
            # another request waits for it too).
            quick.cancel()
            whole.cancel()
            raise
        if whole.done() and whole.exception() is None:
            quick.cancel()  # the whole list came first (a small one): answer from it
            quick.add_done_callback(_retrieve)
            return whole.result()
        try:
            page = await quick
        except asyncio.CancelledError:
            whole.cancel()
            raise
        except Exception:
            logger.info("the first page from the host failed; waiting for the whole list", exc_info=True)
            return await whole
        if page is None or (wanted.total and page.total is None):
            return await whole  # (a request that leaves now cancels it, unless another waits for it)
        # It goes on, shared by later pages and searches.
        self._background.add(whole)
        whole.add_done_callback(self._background.discard)
        whole.add_done_callback(_retrieve)
        settled, more = settle(page)
        self._metrics.repository_cache(integration.provider.value, "first_page")
        return RepositoryList(
            repositories=settled,
            repository_access=integration.repository_access,
            manage_access_url=integration.manage_access_url,
            fetched_at=self._clock(),
            notices=page.notices,
            more=more,
            total_count=page.total,
        )

    async def _listing(
        self,
        integration: Integration,
        key: str,
        search: str | None,
        refresh: bool,
        span: SpanHandle | None = None,  # None: a walk that may outlive the request's span
    ) -> StoredListing:
        span = span or _NO_SPAN
        require_active(integration)
        provider = integration.provider.value
        flight_key = (integration.id, key)
        stored: StoredListing | None = None
        # A running flight (its tail included) is joined before the store is read: read first, and a
        # flight that lands between the read and the join would leave this caller with neither its
        # result nor its saved list, and it would walk the host again.
        if not self._flights.running(flight_key):
            stored = await self._listings.load(integration.id, key)
            if stored is not None and stored.scope != scope_of(integration):
                stored = None  # the integration now reaches something else (another token, grant or resource)
            if stored is not None and not refresh and self.is_fresh(stored):
                self._metrics.repository_cache(provider, "hit")
                span.set_attribute("listing.cache", "hit")
                return stored
        walked = False

        async def walk() -> _Walked:
            nonlocal walked
            walked = True
            cache = "miss" if stored is None else "revalidate"
            self._metrics.repository_cache(provider, cache)
            span.set_attribute("listing.cache", cache)
            return await self._walk(integration, key, search, stored, refresh=refresh)

        async def save(result: _Walked) -> None:
            if result.pending is not None:
                await self._listings.save(result.pending)
                # A disconnect while the host was being asked has already dropped the integration's
                # listings (it deletes the integration first, then its listings): checked after the
                # write, so either it removed this list or this sees the integration gone and removes it.
                if await self._integrations.get(integration.owner, integration.id) is None:
                    await self._listings.delete_for_integration(integration.id)

        result = await self._flights.run(flight_key, walk, after=save)
        if not walked:
            self._metrics.repository_cache(provider, "joined")  # another request's walk
            span.set_attribute("listing.cache", "joined")
        return result.stored

    async def _walk(
        self,
        integration: Integration,
        key: str,
        search: str | None,
        stored: StoredListing | None,
        *,
        refresh: bool,
    ) -> _Walked:
        async def list_at(host: GitHost, token: str) -> Listing | None:
            try:
                return await host.list_repositories(
                    token, integration, search=search, previous=stored.listing if stored else None
                )
            except ProviderUnavailableError as exc:
                if stored is not None and not refresh:
                    logger.warning(
                        "serving an expired repository list: the host could not be asked",
                        extra={"integration_id": integration.id, "reason": exc.code},
                    )
                    return None
                raise

        listing = await self._access.call(integration, list_at)
        if listing is None:
            assert stored is not None
            return _Walked(stored, None)
        pending = self._listings.prepare(
            integration.id,
            key,
            scope_of(integration),
            listing,
            self._clock(),
            stored,
            search=search is not None,
        )
        return _Walked(pending.stored, pending)


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        pass


_NO_SPAN = _NoSpan()


def settle(page: HeadPage) -> tuple[list[Repository], bool]:
    """The host's first page in the picker's order, cut to the repositories it decides; and whether
    more follow. When the host has more, a repository pushed at the same moment as the page's oldest
    may sit on its next page (hosts do not document how they order ties), so only those pushed later
    are answered: a page's cursor then continues exactly in the whole list."""
    repositories = ordered(page.repositories)
    if not page.more:
        return repositories, False
    times = [r.pushed_at for r in page.repositories if r.pushed_at is not None]
    if not times:
        return [], True
    oldest = min(times)
    return [r for r in repositories if r.pushed_at is not None and r.pushed_at > oldest], True


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        # Nobody awaits it any more: say why it failed (and mark the failure as seen).
        logger.info("a background repository read failed", exc_info=future.exception())


def scope_of(integration: Integration) -> str:
    """What decides which repositories the integration reaches, as a fingerprint for the stored list.

    Not ``Integration.version``: a login token refreshed every few hours bumps the version without
    changing what it can see, and must not throw the list away. A token replaced by one with other
    grants, another kind or another bound group/project/installation does change it.
    """
    resource = integration.resource
    parts = [
        integration.token_kind.value,
        integration.account.id,
        integration.repository_access.value,
        ",".join(sorted(integration.granted_permissions)),
        f"{resource.kind}:{','.join(resource.ids)}" if resource else "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _search_key(search: str) -> str:
    # Hashed: the key is also part of page documents' keys, and search text is the user's own words.
    digest = hashlib.sha256(search.casefold().encode()).hexdigest()[:32]
    return f"search:{digest}"
