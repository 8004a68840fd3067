"""Read operations: ``integrations``, ``integration(id)`` and ``node(id)``."""

from __future__ import annotations

import strawberry

from app.domain.errors import NotFoundError
from app.domain.models import Integration
from app.graphql.context import Info
from app.graphql.permissions import IsAuthenticated
from app.graphql.types.integration import IntegrationType
from app.graphql.types.node import Node, local_id
from app.graphql.types.repository import resolve_repository_node


async def load_integration(info: Info, global_id: str) -> Integration | None:
    integration_id = local_id(global_id, "Integration")
    if integration_id is None:
        return None
    loaders = await info.context.loaders_for_caller()
    return await loaders.integration.load(integration_id)


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsAuthenticated], description="The caller's integrations, oldest first."
    )
    async def integrations(self, info: Info) -> list[IntegrationType]:
        caller = await info.context.caller()
        found = await info.context.services.integrations.list_for_owner(caller.user_id)
        return [IntegrationType.from_domain(i) for i in found]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="One of the caller's integrations; NOT_FOUND when it does not exist or is someone else's.",
    )
    async def integration(self, info: Info, id: strawberry.ID) -> IntegrationType:
        integration = await load_integration(info, id)
        if integration is None:
            raise NotFoundError()
        return IntegrationType.from_domain(integration)

    @strawberry.field(
        permission_classes=[IsAuthenticated], description="Any object by its global id, or null."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        repository_id = local_id(id, "Repository")
        if repository_id is not None:
            return await resolve_repository_node(info, repository_id)
        integration = await load_integration(info, id)
        return IntegrationType.from_domain(integration) if integration is not None else None
