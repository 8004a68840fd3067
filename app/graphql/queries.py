"""Read operations: ``integrations``, ``integration(id)``, ``repositoryLinks`` and ``node(id)``."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.domain.errors import ForbiddenError
from app.domain.models import Integration
from app.graphql.context import Info
from app.graphql.permissions import IsAuthenticated, MayReadLinks
from app.graphql.types.integration import IntegrationType
from app.graphql.types.links import RepositoryEventType, RepositoryLinkType
from app.graphql.types.node import Node, local_id
from app.graphql.types.repository import resolve_repository_node


async def load_integration(info: Info, global_id: str) -> Integration | None:
    integration_id = local_id(global_id, "Integration")
    if integration_id is None:
        return None
    loaders = await info.context.loaders_for_caller()
    return await loaders.integration.load(integration_id)


@strawberry.type(
    description="What the caller can read. Every field needs `Authorization: Bearer <JWT>` (UNAUTHENTICATED "
    "without it); a failure is a GraphQL error whose `extensions.code` is an ErrorCode."
)
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
        description="One of the caller's integrations by its id; null when there is none with this id, or it is "
        "someone else's (never told apart), like `node(id)`.",
    )
    async def integration(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The integration's id (`Integration.id`).")
        ],
    ) -> IntegrationType | None:
        integration = await load_integration(info, id)
        if integration is None:
            return None  # never kept by the answer cache: it keeps answers made of an integration only
        if info.context.answer is not None:
            info.context.answer.used_integration(integration)
        return IntegrationType.from_domain(integration)

    @strawberry.field(
        permission_classes=[MayReadLinks],
        description="The repositories the caller (or the user a git:deploy token acts for) has linked, oldest "
        "first.",
    )
    async def repository_links(self, info: Info) -> list[RepositoryLinkType]:
        caller = await info.context.caller()
        services = info.context.services
        found = await services.link_store.list_for_owner(caller.user_id)
        return [RepositoryLinkType.from_domain(link, services.links.webhook_url(link)) for link in found]

    @strawberry.field(
        permission_classes=[MayReadLinks],
        description="Any object by its global id, or null. A git:deploy token may read links and events only "
        "(FORBIDDEN for other ids).",
    )
    async def node(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="A global id from an `id` field: an Integration, Repository, RepositoryLink or "
                "RepositoryEvent."
            ),
        ],
    ) -> Node | None:
        link_id = local_id(id, "RepositoryLink")
        if link_id is not None:
            return await load_link(info, link_id)
        event_id = local_id(id, "RepositoryEvent")
        if event_id is not None:
            return await load_event(info, event_id)
        if (await info.context.caller()).is_service:
            raise ForbiddenError("A service token may read repository links and their events only.")
        repository_id = local_id(id, "Repository")
        if repository_id is not None:
            return await resolve_repository_node(info, repository_id)
        integration = await load_integration(info, id)
        return IntegrationType.from_domain(integration) if integration is not None else None


async def load_link(info: Info, link_id: str) -> RepositoryLinkType | None:
    loaders = await info.context.loaders_for_caller()
    link = await loaders.link.load(link_id)
    if link is None:
        return None
    return RepositoryLinkType.from_domain(link, info.context.services.links.webhook_url(link))


async def load_event(info: Info, event_id: str) -> RepositoryEventType | None:
    """``<link id>:<sequence>``, through the caller's own link."""
    link_id, _, sequence = event_id.rpartition(":")
    if not link_id or not sequence.isdigit() or len(sequence) > 18:
        return None
    loaders = await info.context.loaders_for_caller()
    if await loaders.link.load(link_id) is None:
        return None
    event = await info.context.services.events.get(link_id, int(sequence))
    return RepositoryEventType.from_domain(event) if event is not None else None
