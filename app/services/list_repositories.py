"""List an integration's repositories for the picker: cached, revalidated, shared, searchable.

- The full list of an integration is kept in ``repository_cache``. Within
  ``REPOSITORY_CACHE_SECONDS`` it is served without asking the host; after that (or with
  ``refresh``) every stored page is revalidated with its ETag, so an unchanged list costs 304s.
- Concurrent requests for the same listing share one upstream walk (``Services.listing_flights``).
- Search: GitLab searches itself (a listing per search text, cached the same way); GitHub has no
  name search, so the cached full list is filtered (case-insensitive, name or full name).
- A 401 (or a refusal that only a new token fixes) marks the integration ``NEEDS_RECONNECT``.
  When the host is down or rate limiting and an expired list is stored, that list is served
  (``fetched_at`` says how old it is) rather than nothing; ``refresh`` asks for the truth and fails.
- Pages of the result are Relay slices with opaque cursors built from each repository's sort key
  and stable id, so a cursor stays valid when the list changes between two pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.domain.errors import BadUserInputError, NeedsReconnectError, ProviderUnavailableError
from app.domain.listing import sort_key
from app.domain.models import Branch, Integration, IntegrationStatus, Repository, RepositoryAccess
from app.metrics import record_repository_cache
from app.providers.github import GitHubClient
from app.providers.gitlab import GitLabClient
from app.services.credentials import usable_credentials
from app.services.wiring import Services
from app.storage.repository_cache import CachedListing, StagedListing

logger = logging.getLogger(__name__)

FULL_LISTING = "all"
MAX_FIRST = 100
MAX_SEARCH_LENGTH = 100
_CURSOR_PREFIX = "r1:"


@dataclass(frozen=True)
class RepositoryList:
    """The repositories of one integration (matching a search), most recently pushed first."""

    repositories: list[Repository]
    repository_access: RepositoryAccess
    manage_access_url: str | None
    fetched_at: datetime  # when the host last confirmed this list
    complete: bool = True


@dataclass(frozen=True)
class RepositoryPage:
    """One Relay page of a ``RepositoryList``."""

    edges: list[tuple[str, Repository]]  # (cursor, repository)
    has_next_page: bool
    has_previous_page: bool
    total_count: int

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0][0] if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1][0] if self.edges else None


def normalise_search(search: str | None) -> str | None:
    """The search text to use, or None for "everything"; BAD_USER_INPUT when it is absurdly long."""
    if search is None or not search.strip():
        return None
    search = search.strip()
    if len(search) > MAX_SEARCH_LENGTH:
        raise BadUserInputError(f"Search for at most {MAX_SEARCH_LENGTH} characters.")
    return search


async def list_repositories(
    services: Services, integration: Integration, *, search: str | None = None, refresh: bool = False
) -> RepositoryList:
    """The integration's repositories matching ``search``, from the cache or the host (see module docstring).

    Raises ``NeedsReconnectError``, ``RateLimitedError`` / ``ProviderUnavailableError`` (when nothing
    is stored to fall back on), ``BadUserInputError`` or ``ServiceUnavailableError``.
    """
    search = normalise_search(search)
    client = services.hosts.client(integration.endpoint)
    on_host = search is not None and client.server_side_search
    key = _search_key(search) if on_host and search else FULL_LISTING
    cached = await _listing(services, integration, client, key, search if on_host else None, refresh)
    repositories = cached.listing.repositories
    if search is not None and not on_host:
        needle = search.casefold()
        repositories = [
            r for r in repositories if needle in r.name.casefold() or needle in r.full_name.casefold()
        ]
    return RepositoryList(
        repositories=repositories,
        repository_access=cached.listing.repository_access or integration.repository_access,
        manage_access_url=integration.manage_access_url,
        fetched_at=cached.fetched_at,
        complete=cached.listing.complete,
    )


async def list_branches(
    services: Services, integration: Integration, repository_id: str, first: int = 100
) -> list[Branch]:
    """The first ``first`` (1..100) branches of one repository of the integration."""
    if not 1 <= first <= MAX_FIRST:
        raise BadUserInputError(f"`first` must be between 1 and {MAX_FIRST}.")
    _require_active(integration)
    credentials = await usable_credentials(services, integration)
    client = services.hosts.client(integration.endpoint)
    try:
        return await client.list_branches(credentials.access_token, integration, repository_id, first)
    except NeedsReconnectError:
        await _mark_needs_reconnect(services, integration)
        raise


def check_page_arguments(first: int, after: str | None) -> None:
    """BAD_USER_INPUT for a ``first`` outside 1..100 or an ``after`` that is not one of our cursors."""
    if not 1 <= first <= MAX_FIRST:
        raise BadUserInputError(f"`first` must be between 1 and {MAX_FIRST}.")
    if after is not None and _decode_cursor(after) is None:
        raise BadUserInputError("`after` is not a cursor of this list; start again from the first page.")


def page_of(found: RepositoryList, first: int = 30, after: str | None = None) -> RepositoryPage:
    """The ``first`` repositories after the cursor ``after`` (BAD_USER_INPUT for a cursor not ours)."""
    check_page_arguments(first, after)
    repositories = found.repositories
    start = 0 if after is None else _position_after(repositories, after)
    chosen = repositories[start : start + first]
    return RepositoryPage(
        edges=[(cursor_of(r), r) for r in chosen],
        has_next_page=start + first < len(repositories),
        has_previous_page=start > 0,
        total_count=len(repositories),
    )


def cursor_of(repo: Repository) -> str:
    """Opaque, and stable: the repository's sort key and id, not its position in a list."""
    pushed = "" if repo.pushed_at is None else str(int(repo.pushed_at.timestamp() * 1000))
    raw = f"{_CURSOR_PREFIX}{pushed}:{repo.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _position_after(repositories: list[Repository], cursor: str) -> int:
    decoded = _decode_cursor(cursor)
    if decoded is None:
        raise BadUserInputError("`after` is not a cursor of this list; start again from the first page.")
    pushed, repo_id = decoded
    for index, repo in enumerate(repositories):
        if repo.id == repo_id:
            return index + 1
    # The repository left the list (deleted, access removed) or moved: continue from where it was.
    key = (-pushed.timestamp() if pushed else float("inf"), repo_id)
    return next((i for i, r in enumerate(repositories) if sort_key(r) > key), len(repositories))


def _decode_cursor(cursor: str) -> tuple[datetime | None, str] | None:
    if not cursor or len(cursor) > 1024:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not raw.startswith(_CURSOR_PREFIX):
        return None
    pushed_text, sep, repo_id = raw[len(_CURSOR_PREFIX) :].partition(":")
    if not sep or not repo_id or (pushed_text and not pushed_text.isdigit()):
        return None
    pushed = datetime.fromtimestamp(int(pushed_text) / 1000, UTC) if pushed_text else None
    return pushed, repo_id


# --- the cached listing ----------------------------------------------------------------------------


async def _listing(
    services: Services,
    integration: Integration,
    client: GitHubClient | GitLabClient,
    key: str,
    search: str | None,
    refresh: bool,
) -> CachedListing:
    _require_active(integration)
    flight_key = (integration.id, key)
    stored: CachedListing | None = None
    # A running flight (its tail included) is joined before the cache is read: read first, and a
    # flight that lands between the read and the join would leave this caller with neither its
    # result nor its saved list, and it would walk the host again.
    if not services.listing_flights.running(flight_key):
        stored = await services.repository_cache.load(integration.id, key)
        if stored is not None and stored.scope != scope_of(integration):
            stored = None  # the integration now reaches something else (another token, grant or resource)
        fresh_for = timedelta(seconds=services.settings.repository_cache_seconds)
        if stored is not None and not refresh and services.clock() - stored.fetched_at < fresh_for:
            record_repository_cache(integration.provider.value, "hit")
            return stored
    walked = False

    async def walk() -> StagedListing:
        nonlocal walked
        walked = True
        record_repository_cache(integration.provider.value, "miss" if stored is None else "revalidate")
        return await _walk_host(services, integration, client, key, search, stored, refresh=refresh)

    async def save(staged: StagedListing) -> None:
        if staged.writes:
            await services.repository_cache.commit(staged)
            # A disconnect while the host was being asked has already dropped the integration's
            # cache (it deletes the integration first, then its cache): checked after the write, so
            # either it removed this list or this sees the integration gone and removes it itself.
            if await services.integrations.get(integration.owner, integration.id) is None:
                await services.repository_cache.delete_for_integration(integration.id)

    # Callers get the list as soon as the host has answered; saving it is the flight's tail.
    staged = await services.listing_flights.run(flight_key, walk, after=save)
    if not walked:
        record_repository_cache(integration.provider.value, "joined")  # another request's walk
    return staged.cached


async def _walk_host(
    services: Services,
    integration: Integration,
    client: GitHubClient | GitLabClient,
    key: str,
    search: str | None,
    stored: CachedListing | None,
    *,
    refresh: bool,
) -> StagedListing:
    credentials = await usable_credentials(services, integration)
    try:
        listing = await client.list_repositories(
            credentials.access_token,
            integration,
            search=search,
            previous=stored.listing if stored else None,
        )
    except NeedsReconnectError:
        await _mark_needs_reconnect(services, integration)
        raise
    except ProviderUnavailableError as exc:
        if stored is not None and not refresh:
            logger.warning(
                "serving an expired repository list: the host could not be asked",
                extra={"integration_id": integration.id, "reason": exc.code},
            )
            return StagedListing(stored, writes=[])
        raise
    return services.repository_cache.stage(
        integration.id,
        key,
        scope_of(integration),
        listing,
        services.clock(),
        stored,
        search=search is not None,
    )


def scope_of(integration: Integration) -> str:
    """What decides which repositories the integration reaches, as a fingerprint for the cache.

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


def _require_active(integration: Integration) -> None:
    if integration.status is IntegrationStatus.NEEDS_RECONNECT:
        raise NeedsReconnectError()


async def _mark_needs_reconnect(services: Services, integration: Integration) -> None:
    await services.integrations.set_status(
        integration.owner, integration.id, IntegrationStatus.NEEDS_RECONNECT
    )
    logger.info(
        "integration needs reconnecting: the host refused its token", extra={"integration_id": integration.id}
    )


def _search_key(search: str) -> str:
    # Hashed: the key is also part of page documents' keys, and search text is the user's own words.
    digest = hashlib.sha256(search.casefold().encode()).hexdigest()[:32]
    return f"search:{digest}"


__all__ = [
    "RepositoryList",
    "RepositoryPage",
    "check_page_arguments",
    "cursor_of",
    "list_branches",
    "list_repositories",
    "page_of",
]
