"""``RepositoryLink``, ``RepositoryEvent`` and the events' Relay connection, as the contract names them.

A link's global id is ``RepositoryLink:<link id>``; an event's ``RepositoryEvent:<link id>:<sequence>``.
Both are found only through the caller's own links (another user's id answers like a missing one).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from app.domain import links as model
from app.domain.errors import BadUserInputError, NotFoundError
from app.domain.models import IntegrationStatus
from app.graphql.context import Info
from app.graphql.types.integration import IntegrationType
from app.graphql.types.node import Node, to_global_id
from app.graphql.types.page_info import PageInfo
from app.graphql.types.repository import RepositoryType

MAX_EVENTS_FIRST = 100


@strawberry.enum(
    name="LinkStatus", description="Whether a linked repository still delivers and can be cloned."
)
class LinkStatus(enum.Enum):
    ACTIVE = strawberry.enum_value("ACTIVE", description="The webhook and the builder's access are in place.")
    BROKEN = strawberry.enum_value(
        "BROKEN",
        description="The webhook or the key is gone at the host, or the connection lost access: "
        "`statusMessage` says what, and linking again repairs it.",
    )


@strawberry.enum(name="RepositoryEventKind", description="What happened in a linked repository.")
class RepositoryEventKind(enum.Enum):
    PUSH = strawberry.enum_value("PUSH", description="Commits were pushed to the linked branch.")
    TAG_PUSH = strawberry.enum_value("TAG_PUSH", description="A tag was pushed (whatever the branch).")


@strawberry.type(
    name="RepositoryEvent",
    description="A push or tag push the Git host delivered for a linked repository, stored before the host "
    "was answered.",
)
class RepositoryEventType(Node):
    id: strawberry.ID = strawberry.field(description="The event's global id (`node(id)` finds it).")
    kind: RepositoryEventKind = strawberry.field(description="A push to the linked branch, or a tag push.")
    ref: str = strawberry.field(description='The full ref, e.g. "refs/heads/main" or "refs/tags/v1.2.0".')
    before: str | None = strawberry.field(
        description="The commit the ref pointed at before the push; null when the host did not say."
    )
    after: str = strawberry.field(
        description="The commit the ref points at now (forty zeros when the ref was deleted)."
    )
    head_commit_message: str | None = strawberry.field(
        description="The message of the commit pushed last (at most 2,000 characters); null for a deletion."
    )
    pusher: str | None = strawberry.field(description="Who pushed, as the host names them.")
    delivery_id: str = strawberry.field(
        description="The host's id of the delivery (GitHub X-GitHub-Delivery, GitLab Idempotency-Key or "
        "X-Gitlab-Event-UUID); the same when the host sends it again."
    )
    received_at: datetime = strawberry.field(description="When this service stored it.")
    sequence: int = strawberry.field(
        description="Its number among the link's events, given when it was stored: the events' cursor."
    )

    @classmethod
    def from_domain(cls, event: model.RepositoryEvent) -> RepositoryEventType:
        return cls(
            id=to_global_id("RepositoryEvent", f"{event.link_id}:{event.sequence}"),
            kind=RepositoryEventKind(event.kind.value),
            ref=event.ref,
            before=event.before,
            after=event.after,
            head_commit_message=event.head_commit_message,
            pusher=event.pusher,
            delivery_id=event.delivery_id,
            received_at=event.received_at,
            sequence=event.sequence,
        )


@strawberry.type(description="One event and its cursor.")
class RepositoryEventEdge:
    cursor: str = strawberry.field(description="The event's sequence number, as text: pass it as `after`.")
    node: RepositoryEventType = strawberry.field(description="The event.")


@strawberry.type(description="A page of a link's events, oldest first.")
class RepositoryEventConnection:
    edges: list[RepositoryEventEdge] = strawberry.field(description="At most `first` events, oldest first.")
    page_info: PageInfo = strawberry.field(
        description="`endCursor`: pass it as `after` to continue; null when this page is empty (keep your `after`)."
    )


def parse_events_page(first: int | None, after: str | None) -> tuple[int, int]:
    """``(first, after sequence)``; BAD_USER_INPUT for a `first` outside 1..100 or a cursor not ours."""
    first = 50 if first is None else first
    if not 1 <= first <= MAX_EVENTS_FIRST:
        raise BadUserInputError(f"`first` must be between 1 and {MAX_EVENTS_FIRST}.")
    if after is None or after == "":
        return first, 0
    if not after.isdigit() or len(after) > 18:
        raise BadUserInputError(
            "`after` is not a cursor of these events: pass an `endCursor` or a `sequence`."
        )
    return first, int(after)


@strawberry.type(
    name="RepositoryLink",
    description="A repository the platform deploys from: the host posts its pushes here (`webhookUrl`), "
    "the platform reads them as `events`, reports builds with `setCommitStatus` and clones with "
    "`cloneCredentials`.",
)
class RepositoryLinkType(Node):
    id: strawberry.ID = strawberry.field(
        description="The link's global id: what the deployer and the builder are given."
    )
    branch: str = strawberry.field(
        description="The branch whose pushes are kept (tag pushes are kept whatever the branch)."
    )
    webhook_url: str = strawberry.field(
        description="Where the host delivers: PUBLIC_URL/webhooks/{github|gitlab}/{link id}. It must be "
        "reachable from the host (GitLab refuses local and private addresses by default)."
    )
    last_event_at: datetime | None = strawberry.field(
        description="When the last event was stored; null before the first."
    )
    created_at: datetime = strawberry.field(description="When the repository was first linked.")
    domain: strawberry.Private[model.RepositoryLink]

    @strawberry.field(
        description="The connection the link was made with (its token sets hooks, keys and statuses)."
    )
    async def integration(self, info: Info) -> IntegrationType:
        loaders = await info.context.loaders_for_caller()
        found = await loaders.integration.load(self.domain.integration_id)
        if found is None:
            raise NotFoundError("The connection of this link is gone: link the repository again.")
        return IntegrationType.from_domain(found)

    @strawberry.field(description="The repository as the host described it when it was last linked.")
    async def repository(self, info: Info) -> RepositoryType:
        loaders = await info.context.loaders_for_caller()
        found = await loaders.integration.load(self.domain.integration_id)
        if found is None:
            raise NotFoundError("The connection of this link is gone: link the repository again.")
        return RepositoryType.from_domain(found, self.domain.repository)

    @strawberry.field(description="ACTIVE, or BROKEN with `statusMessage` saying what to do.")
    async def status(self, info: Info) -> LinkStatus:
        return (await self._status(info))[0]

    @strawberry.field(description="What broke, for the person at the screen; null while ACTIVE.")
    async def status_message(self, info: Info) -> str | None:
        return (await self._status(info))[1]

    async def _status(self, info: Info) -> tuple[LinkStatus, str | None]:
        link = self.domain
        loaders = await info.context.loaders_for_caller()
        integration = await loaders.integration.load(link.integration_id)
        if integration is None or integration.status is IntegrationStatus.NEEDS_RECONNECT:
            return LinkStatus.BROKEN, (
                f"The connection to {link.host} no longer works: connect it again, then link "
                f"{link.repository.full_name} again."
            )
        return LinkStatus(link.status.value), link.status_message

    @strawberry.field(
        description="The link's pushes and tag pushes, oldest first. `first`: 1..100. `after`: an "
        "`endCursor` (or an event's `sequence`) to resume from; events stored meanwhile are never skipped."
    )
    async def events(
        self,
        info: Info,
        first: Annotated[
            int | None, strawberry.argument(description="How many events on this page (1..100; default 50).")
        ] = 50,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="The `endCursor` of the previous page, or an event's `sequence`: the events after "
                "it. Null: from the first. BAD_USER_INPUT when it is not a cursor of this list."
            ),
        ] = None,
    ) -> RepositoryEventConnection:
        count, after_sequence = parse_events_page(first, after)
        found, more = await info.context.services.events.page(self.domain.id, after_sequence, count)
        edges = [
            RepositoryEventEdge(cursor=str(e.sequence), node=RepositoryEventType.from_domain(e))
            for e in found
        ]
        return RepositoryEventConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=more,
                has_previous_page=after_sequence > 0,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @classmethod
    def from_domain(cls, link: model.RepositoryLink, webhook_url: str) -> RepositoryLinkType:
        return cls(
            id=to_global_id("RepositoryLink", link.id),
            branch=link.branch,
            webhook_url=webhook_url,
            last_event_at=link.last_event_at,
            created_at=link.created_at,
            domain=link,
        )
