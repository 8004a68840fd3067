"""The branches of one of an integration's repositories (the picker's second step): cached, revalidated,
searchable, in the picker's order.

- A repository's whole branch list is kept like a repository listing (``storage.branch_lists``):
  within ``REPOSITORY_CACHE_SECONDS`` it is answered without asking the host, afterwards every stored
  page is revalidated with its ETag; concurrent readers share one walk (single flight); when the
  host is down an expired list is answered rather than nothing.
- ``search``: names containing the text literally and case-sensitively, as Git compares branch names
  (no character is an operator). A fresh whole list is filtered here. Otherwise a host that searches
  by itself (``GitHost.searches_branches``: GitLab) gets a list per search text, cached the same
  way, and the service keeps the names that really contain the text; other hosts list everything.
- The picker's order: the default branch first, then names starting with the text, then the other
  matches, each group by name. So the first page of a search may be known from the branches that
  start with the text alone, which both hosts answer in one round (``GitHost.branches_starting_with``:
  GitHub all of them, GitLab the first 100 by name): when that answer holds more branches than the
  page shows, the page is answered from it while the list is read in the background for the next
  page and the next search (GitLab: the list of this search's matches).

Relay pages and cursors are the GraphQL connection's business (``app.graphql.types.branch``).
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.domain.errors import ProviderUnavailableError
from app.domain.models import Branch, Integration, Repository
from app.hosts.base import BranchListing, GitHost
from app.hosts.registry import HostRegistry
from app.services.catalog import REVALIDATION_PER_PAGE, scope_of
from app.services.clock import Clock
from app.services.credentials import HostAccess, require_active
from app.services.single_flight import SingleFlight
from app.storage.branch_lists import BranchListStore, PreparedBranches, StoredBranches
from app.storage.integrations import IntegrationRepository
from app.storage.listings import ListingStore

logger = logging.getLogger(__name__)

ORDER_MEMO_SIZE = 128


@dataclass(frozen=True)
class BranchList:
    """Branches of one repository matching a search, in the picker's order (see the module docstring).

    ``complete`` False: these are only the first of the matches, and more follow.
    """

    branches: list[Branch]
    complete: bool = True


def branch_sort_key(branch_name: str, search: str | None, default_branch: str | None) -> tuple[int, str]:
    """The picker's order: the default branch, then names starting with ``search``, then the rest."""
    if branch_name == default_branch:
        group = 0
    elif search is not None and branch_name.startswith(search):
        group = 1
    else:
        group = 2
    return (group, branch_name)


def picker_order(branches: Sequence[Branch], search: str | None, default_branch: str | None) -> list[Branch]:
    """The branches containing ``search`` (all for None), in the picker's order."""
    matches = [b for b in branches if search is None or search in b.name]
    return sorted(matches, key=lambda b: branch_sort_key(b.name, search, default_branch))


class Branches:
    """Reads branches at the integration's host with its current token, through the cache."""

    def __init__(
        self,
        hosts: HostRegistry,
        access: HostAccess,
        store: BranchListStore,
        listings: ListingStore,
        integrations: IntegrationRepository,
        clock: Clock,
        *,
        fresh_for: timedelta,
    ) -> None:
        self._hosts = hosts
        self._access = access
        self._store = store
        self._listings = listings
        self._integrations = integrations
        self._clock = clock
        self._fresh_for = fresh_for
        self._flights: SingleFlight[tuple[str, str], PreparedBranches | StoredBranches] = SingleFlight()
        self._orders: OrderedDict[tuple[str, str, str, str | None, str | None], list[Branch]] = OrderedDict()

    async def list(
        self,
        integration: Integration,
        repository: Repository,
        *,
        search: str | None = None,
        refresh: bool = False,
        first_page: int | None = None,
    ) -> BranchList:
        """The repository's branches containing ``search``, in the picker's order.

        ``first_page``: only the first that many are needed (and no total), so the answer may be
        the first of the matches (``complete`` False) when that is quicker. Raises ``NotFoundError``
        (gone or no longer covered), ``NeedsReconnectError`` (then the integration is marked so),
        ``RateLimitedError`` and ``ProviderUnavailableError``.
        """
        require_active(integration)
        default = repository.default_branch
        full_key = _key(repository.id, None)
        whole = None if refresh else await self._fresh(integration, full_key)
        if whole is not None:
            return BranchList(self._ordered(integration, full_key, whole, search, default))
        host = self._hosts.host(integration.endpoint)
        # A host that searches by itself (GitLab) lists the matches of this search; others everything.
        listed = search if search is not None and host.searches_branches else None
        key = _key(repository.id, listed)
        if listed is not None and not refresh:
            matches = await self._fresh(integration, key)
            if matches is not None:  # this search's matches are fresh: no race, no request
                return BranchList(self._ordered(integration, key, matches, search, default))
        reading = asyncio.ensure_future(self._listing(integration, repository.id, listed, refresh))
        try:
            if search is not None and first_page is not None:
                head = await self._head(integration, repository, search, first_page, reading)
                if head is not None:
                    return head
            found = await reading
        except asyncio.CancelledError:
            reading.cancel()  # the caller left: nobody else may want the whole list
            raise
        finally:
            if not reading.done():
                # Answered from the prefix: the whole list keeps loading for the next page (it is a
                # single flight of its own, so it finishes and is saved whoever waits for it).
                reading.add_done_callback(_retrieve)
        return BranchList(self._ordered(integration, key, found, search, default))

    def _ordered(
        self,
        integration: Integration,
        key: str,
        stored: StoredBranches,
        search: str | None,
        default: str | None,
    ) -> builtins.list[Branch]:
        """``picker_order`` of a stored list, remembered per generation: a warm page of thousands of
        branches is not filtered and sorted again on every request."""
        memo_key = (integration.id, key, stored.generation, search, default)
        found = self._orders.get(memo_key)
        if found is None:
            found = picker_order(stored.listing.branches, search, default)
            self._orders[memo_key] = found
            while len(self._orders) > ORDER_MEMO_SIZE:
                self._orders.popitem(last=False)
        else:
            self._orders.move_to_end(memo_key)
        return found

    async def drain(self, cancel_after: float | None = None) -> None:
        """Wait until every running read has landed, its save included (shutdown, tests).

        ``cancel_after``: at most this long, then the reads still running are cancelled.
        """
        await self._flights.drain(cancel_after)

    async def _head(
        self,
        integration: Integration,
        repository: Repository,
        search: str,
        first_page: int,
        reading: asyncio.Future[StoredBranches],
    ) -> BranchList | None:
        """The first page of ``search`` from the branches starting with it, or None when they do not
        decide it (the default branch contains the text elsewhere; no more matches than the page)."""
        default = repository.default_branch
        if default is not None and search in default and not default.startswith(search):
            return None  # the default branch comes first, and only the whole list has its head

        async def read(host: GitHost, token: str) -> list[Branch] | None:
            return await host.branches_starting_with(token, integration, repository.id, search)

        prefix = asyncio.ensure_future(self._access.call(integration, read))
        racing: list[asyncio.Future[Any]] = [prefix, reading]
        try:
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            prefix.cancel()
            raise
        if reading.done() and not reading.exception():
            prefix.cancel()  # the whole list came first: answer from it
            prefix.add_done_callback(_retrieve)
            return None
        try:
            found = await prefix
        except Exception:
            # The whole list decides instead, and fails in its own words if the host is at fault.
            logger.info("branches by prefix failed; waiting for the whole list", exc_info=True)
            return None
        if found is None:
            return None
        if default is not None and default.startswith(search) and all(b.name != default for b in found):
            return None  # the host named only the first matches by name, and the default comes first
        ordered = picker_order(found, search, default)
        if len(ordered) <= first_page:
            return None  # whether more match elsewhere in the name only the whole list says
        return BranchList(ordered, complete=False)

    async def _fresh(self, integration: Integration, key: str) -> StoredBranches | None:
        stored = await self._store.load(integration.id, key)
        if stored is None or stored.scope != scope_of(integration):
            return None
        return stored if self._is_fresh(stored) else None

    def _is_fresh(self, stored: StoredBranches) -> bool:
        # Longer lists for longer, as repository listings (services.catalog.REVALIDATION_PER_PAGE).
        window = max(self._fresh_for, REVALIDATION_PER_PAGE * len(stored.listing.pages))
        return self._clock() - stored.fetched_at < window

    async def _listing(
        self, integration: Integration, repository_id: str, search: str | None, refresh: bool
    ) -> StoredBranches:
        key = _key(repository_id, search)
        stored: StoredBranches | None = None
        # A running read (its save included) is joined before the store is read, as the catalog does.
        if not self._flights.running((integration.id, key)):
            stored = await self._store.load(integration.id, key)
            if stored is not None and stored.scope != scope_of(integration):
                stored = None
            if stored is not None and not refresh and self._is_fresh(stored):
                return stored

        async def walk() -> PreparedBranches | StoredBranches:
            return await self._walk(integration, repository_id, key, search, stored, refresh=refresh)

        async def save(result: PreparedBranches | StoredBranches) -> None:
            if isinstance(result, PreparedBranches):
                await self._store.save(result)
                # A disconnect meanwhile has dropped the integration's lists already (see the catalog).
                if await self._integrations.get(integration.owner, integration.id) is None:
                    await self._listings.delete_for_integration(integration.id)

        # Saving is the flight's tail: callers have the branches as soon as the host answered.
        result = await self._flights.run((integration.id, key), walk, after=save)
        return result.stored if isinstance(result, PreparedBranches) else result

    async def _walk(
        self,
        integration: Integration,
        repository_id: str,
        key: str,
        search: str | None,
        stored: StoredBranches | None,
        *,
        refresh: bool,
    ) -> PreparedBranches | StoredBranches:
        async def read(host: GitHost, token: str) -> BranchListing | None:
            try:
                return await host.list_branches(
                    token,
                    integration,
                    repository_id,
                    search=search,
                    previous=stored.listing if stored else None,
                )
            except ProviderUnavailableError as exc:
                if stored is not None and not refresh:
                    logger.warning(
                        "serving an expired branch list: the host could not be asked",
                        extra={"integration_id": integration.id, "reason": exc.code},
                    )
                    return None
                raise

        listing = await self._access.call(integration, read)
        if listing is None:
            assert stored is not None
            return stored
        return self._store.prepare(integration.id, key, scope_of(integration), listing, self._clock(), stored)


def _key(repository_id: str, search: str | None) -> str:
    # Hashed: repository ids and search text are the host's and the user's words, not ours.
    digest = hashlib.sha256(f"{repository_id}\x1f{search or ''}\x1f{search is None}".encode()).hexdigest()
    return f"branches:{digest[:32]}"


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        # Nobody awaits it any more: say why it failed (and mark the failure as seen).
        logger.info("a background branch read failed", exc_info=future.exception())


__all__ = ["BranchList", "Branches", "branch_sort_key", "picker_order"]
