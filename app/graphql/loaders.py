"""Per-request DataLoaders: one batched lookup per kind, however many fields ask for it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from app.domain.errors import NotFoundError
from app.domain.models import Branch, Integration
from app.services.list_repositories import RepositoryList, list_branches, list_repositories
from app.services.wiring import Services

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


RepositoryListKey = tuple[str, str | None, bool]  # (integration id, search, refresh)
BranchesKey = tuple[str, str, int]  # (integration id, repository id, first)


async def _each(keys: Sequence[K], one: Callable[[K], Awaitable[V]]) -> list[V | BaseException]:
    """Load every key concurrently; a failing key fails only its own fields (DataLoader takes exceptions)."""
    return await asyncio.gather(*(one(key) for key in keys), return_exceptions=True)


class RepositoryListLoader(DataLoader[RepositoryListKey, RepositoryList]):
    """Repository lists by (integration, search, refresh): one listing per integration per request,
    every integration's at once, whatever number of fields ask (``integrations { repositories }``)."""

    def __init__(self, services: Services, integrations: IntegrationLoader) -> None:
        async def one(key: RepositoryListKey) -> RepositoryList:
            integration_id, search, refresh = key
            integration = await integrations.load(integration_id)
            if integration is None:
                raise NotFoundError()
            return await list_repositories(services, integration, search=search, refresh=refresh)

        async def load(keys: Sequence[RepositoryListKey]) -> list[RepositoryList | BaseException]:
            return await _each(keys, one)

        super().__init__(load_fn=load)


class BranchesLoader(DataLoader[BranchesKey, list[Branch]]):
    """Branches by (integration, repository, first), all repositories' at once."""

    def __init__(self, services: Services, integrations: IntegrationLoader) -> None:
        async def one(key: BranchesKey) -> list[Branch]:
            integration_id, repository_id, first = key
            integration = await integrations.load(integration_id)
            if integration is None:
                raise NotFoundError()
            return await list_branches(services, integration, repository_id, first)

        async def load(keys: Sequence[BranchesKey]) -> list[list[Branch] | BaseException]:
            return await _each(keys, one)

        super().__init__(load_fn=load)


class Loaders:
    """Created lazily per request, once the caller is known."""

    def __init__(self, services: Services, owner: str) -> None:
        self.integration = IntegrationLoader(services, owner)
        self.repositories = RepositoryListLoader(services, self.integration)
        self.branches = BranchesLoader(services, self.integration)
