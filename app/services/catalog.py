"""The repository catalog: an integration's repositories for the picker — cached, revalidated, shared.

- The complete list of an integration is kept in the listing store (``app.storage.listings``).
  Within ``REPOSITORY_CACHE_SECONDS`` it is served without asking the host; after that (or with
  ``refresh``) every stored page is revalidated with its ETag, so an unchanged list costs 304s.
- Concurrent requests for the same listing share one walk of the host (single flight); callers get
  the list as soon as the host has answered, and saving it is the flight's tail.
- Search: a host that searches by itself (``GitHost.searches_repositories``: GitLab) gets a listing
  per search text, cached the same way; otherwise the complete list is filtered (case-insensitive,
  name or full name).
- A 401 (or a refusal that only a new token fixes) marks the integration ``NEEDS_RECONNECT``
  (``HostAccess``). When the host is down or rate limiting and an expired list is stored, that
  list is served (``fetched_at`` says how old it is) rather than nothing; ``refresh`` asks for the
  truth and fails.

Pages of the answer (Relay cursors, ``first``/``after``) are the GraphQL connection's business
(``app.graphql.types.connection``); this service answers the whole list.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.errors import ProviderUnavailableError
from app.domain.models import AccessNotice, Integration, Repository, RepositoryAccess
from app.hosts.base import GitHost, Listing
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


@dataclass(frozen=True)
class RepositoryList:
    """The repositories of one integration (matching a search), most recently pushed first."""

    repositories: list[Repository]
    repository_access: RepositoryAccess
    manage_access_url: str | None
    fetched_at: datetime  # when the host last confirmed this list
    complete: bool = True
    notices: tuple[AccessNotice, ...] = ()  # why repositories may be missing (kept with the listing)


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
    ) -> None:
        self._hosts = hosts
        self._access = access
        self._listings = listings
        self._integrations = integrations
        self._clock = clock
        self._metrics = metrics
        self._fresh_for = fresh_for
        self._tracing = tracing
        self._flights: SingleFlight[tuple[str, str], _Walked] = SingleFlight()

    async def repositories(
        self, integration: Integration, *, search: str | None = None, refresh: bool = False
    ) -> RepositoryList:
        """The integration's repositories matching ``search`` (already trimmed), cached or from the host.

        Raises ``NeedsReconnectError``, ``RateLimitedError`` / ``ProviderUnavailableError`` (when nothing
        is stored to fall back on) or ``ServiceUnavailableError``.
        """
        on_host = search is not None and self._hosts.host(integration.endpoint).searches_repositories
        key = _search_key(search) if on_host and search else FULL_LISTING
        attributes = {"git.provider": integration.provider.value, "listing.search": search is not None}
        with self._tracing.span("repository listing", attributes) as span:
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
        )

    async def drain(self, cancel_after: float | None = None) -> None:
        """Wait until every running listing has landed, its save included (shutdown, tests).

        ``cancel_after``: at most this long, then the listings still running are cancelled.
        """
        await self._flights.drain(cancel_after)

    async def _listing(
        self, integration: Integration, key: str, search: str | None, refresh: bool, span: SpanHandle
    ) -> StoredListing:
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
            if stored is not None and not refresh and self._clock() - stored.fetched_at < self._fresh_for:
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
