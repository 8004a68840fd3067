"""Per-request DataLoaders: one batched lookup per kind, however many fields ask for it.

The integration record is read once per request (``IntegrationLoader``, primed by every field that
already holds one); listings and branches are keyed by the integration itself, so they never look
it up again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from strawberry.dataloader import DataLoader

from app.composition import Services
from app.domain.links import RepositoryLink
from app.domain.models import Integration, Repository
from app.services.branches import BranchList
from app.services.catalog import HeadRequest, RepositoryList

K = TypeVar("K")
V = TypeVar("V")

IntegrationKey = str
IntegrationResult = Integration | None


class IntegrationLoader(DataLoader[IntegrationKey, IntegrationResult]):
    """Integrations of one caller by id; another user's id loads as None, exactly like a missing one."""

    def __init__(self, services: Services, owner: str) -> None:
        async def load(keys: Sequence[IntegrationKey]) -> list[IntegrationResult]:
            found = await services.integrations.get_many(owner, keys)
            return [found.get(key) for key in keys]

        super().__init__(load_fn=load)


class LinkLoader(DataLoader[str, RepositoryLink | None]):
    """Repository links of one caller by id; another user's id loads as None, exactly like a missing one."""

    def __init__(self, services: Services, owner: str) -> None:
        async def load(keys: Sequence[str]) -> list[RepositoryLink | None]:
            found = await services.link_store.get_many(owner, keys)
            return [found.get(key) for key in keys]

        super().__init__(load_fn=load)


@dataclass(frozen=True)
class ListingKey:
    """One listing of one integration; equal keys share one load (the integration rides along)."""

    integration_id: str
    search: str | None
    refresh: bool
    first_page: HeadRequest | None  # only a first page is needed (see RepositoryCatalog.repositories)
    integration: Integration = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class BranchesKey:
    """The branches of one repository of one integration matching ``search``; ``first_page``: only
    that many are needed, no total (see ``Branches.list``)."""

    integration_id: str
    repository_id: str
    search: str | None
    first_page: int | None
    integration: Integration = field(compare=False, hash=False, repr=False)
    repository: Repository = field(compare=False, hash=False, repr=False)


async def _each(keys: Sequence[K], one: Callable[[K], Awaitable[V]]) -> list[V | BaseException]:
    """Load every key concurrently; a failing key fails only its own fields (DataLoader takes exceptions)."""
    return await asyncio.gather(*(one(key) for key in keys), return_exceptions=True)


class RepositoryListLoader(DataLoader[ListingKey, RepositoryList]):
    """Repository lists by (integration, search, refresh): one listing per integration per request,
    every integration's at once, whatever number of fields ask (``integrations { repositories }``)."""

    def __init__(self, services: Services) -> None:
        async def one(key: ListingKey) -> RepositoryList:
            return await services.catalog.repositories(
                key.integration, search=key.search, refresh=key.refresh, first_page=key.first_page
            )

        async def load(keys: Sequence[ListingKey]) -> list[RepositoryList | BaseException]:
            return await _each(keys, one)

        super().__init__(load_fn=load)


class BranchesLoader(DataLoader[BranchesKey, BranchList]):
    """Branches by (integration, repository, search), all repositories' at once."""

    def __init__(self, services: Services) -> None:
        async def one(key: BranchesKey) -> BranchList:
            return await services.branches.list(
                key.integration, key.repository, search=key.search, first_page=key.first_page
            )

        async def load(keys: Sequence[BranchesKey]) -> list[BranchList | BaseException]:
            return await _each(keys, one)

        super().__init__(load_fn=load)


class Loaders:
    """Created lazily per request, once the caller is known."""

    def __init__(self, services: Services, owner: str) -> None:
        self.integration = IntegrationLoader(services, owner)
        self.link = LinkLoader(services, owner)
        self.repositories = RepositoryListLoader(services)
        self.branches = BranchesLoader(services)
