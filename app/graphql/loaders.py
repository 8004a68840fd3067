"""Per-request DataLoaders: one batched lookup per kind, however many fields ask for it."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from app.domain.models import Integration
from app.services.wiring import Services

IntegrationKey = str
IntegrationResult = Integration | None


class IntegrationLoader(DataLoader[IntegrationKey, IntegrationResult]):
    """Integrations of one caller by id; another user's id loads as None, exactly like a missing one."""

    def __init__(self, services: Services, owner: str) -> None:
        async def load(keys: Sequence[IntegrationKey]) -> list[IntegrationResult]:
            found = await services.integrations.get_many(owner, keys)
            return [found.get(key) for key in keys]

        super().__init__(load_fn=load)


class Loaders:
    """Created lazily per request, once the caller is known."""

    def __init__(self, services: Services, owner: str) -> None:
        self.integration = IntegrationLoader(services, owner)
