"""Mutations for deploying from a repository: link, unlink, commit statuses and clone credentials.

Failures are raised as domain errors; ``types.errors.EXCEPTION_HANDLERS`` answers each with its union
member where the union has one, and as a GraphQL error with ``extensions.code`` otherwise.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from app.domain import links as domain
from app.domain.errors import NotFoundError
from app.graphql.context import Info
from app.graphql.permissions import IsAuthenticated, MayClone, MaySetCommitStatuses
from app.graphql.types import errors as gql_errors
from app.graphql.types.links import RepositoryLinkType
from app.graphql.types.node import from_global_id, local_id

NO_SUCH_LINK = "No repository link with this id."
NO_SUCH_REPOSITORY = "No repository with this id."


@strawberry.enum(name="CommitState", description="A build's outcome as shown on a commit.")
class CommitState(enum.Enum):
    PENDING = strawberry.enum_value("PENDING", description="Building (GitLab: pending).")
    SUCCESS = strawberry.enum_value("SUCCESS", description="Built and deployed (GitLab: success).")
    FAILURE = strawberry.enum_value("FAILURE", description="The build failed (GitLab: failed).")
    ERROR = strawberry.enum_value("ERROR", description="The platform could not build (GitLab: failed).")


@strawberry.input(description="The repository to link, from the picker, and the branch to deploy.")
class LinkRepositoryInput:
    repository_id: strawberry.ID = strawberry.field(
        description="A `Repository` id from `Integration.repositories`."
    )
    branch: str | None = strawberry.field(
        default=None, description="The branch whose pushes are kept; null: the repository's default branch."
    )


@strawberry.input(description="The link to remove.")
class UnlinkRepositoryInput:
    id: strawberry.ID = strawberry.field(description="A `RepositoryLink` id.")


@strawberry.type(description="What unlinking did.")
class UnlinkedRepository:
    id: strawberry.ID = strawberry.field(description="The link that was removed.")
    host_cleaned_up: bool = strawberry.field(
        description="Whether the webhook and the deploy key or token were removed at the host too."
    )
    message: str | None = strawberry.field(
        description="What stayed at the host and where to remove it; null when nothing did."
    )


@strawberry.input(description="A build result to show on a commit of a linked repository.")
class SetCommitStatusInput:
    link_id: strawberry.ID = strawberry.field(description="A `RepositoryLink` id.")
    sha: str = strawberry.field(description="The full commit id (40 hexadecimal characters, or 64).")
    state: CommitState = strawberry.field(description="The build's outcome to show.")
    context: str = strawberry.field(
        description='Which check this is, e.g. "deploy/production" (1..255 characters); a new status with '
        "the same context replaces the previous one."
    )
    description: str | None = strawberry.field(
        default=None, description="A short text; GitHub keeps 140 characters, GitLab 255 (longer is cut)."
    )
    target_url: str | None = strawberry.field(
        default=None, description="Where the build's details are: an http(s) URL (BAD_USER_INPUT otherwise)."
    )


@strawberry.type(description="The status as it now shows on the commit.")
class CommitStatus:
    sha: str = strawberry.field(description="The commit, in lower case.")
    state: CommitState = strawberry.field(
        description="The state that was set (GitLab shows FAILURE and ERROR alike)."
    )
    context: str = strawberry.field(description="The check the status belongs to.")


@strawberry.input(description="The link whose repository the builder clones.")
class CloneCredentialsInput:
    link_id: strawberry.ID = strawberry.field(description="A `RepositoryLink` id.")


@strawberry.type(
    name="CloneCredentials",
    description="What the builder clones with: HTTPS (`username` + `password`) or SSH (`url` git@…, "
    "`sshPrivateKey`, `sshKnownHosts`). Never the user's own token. Treat it as a secret: do not log it.",
)
class CloneCredentialsType:
    url: str = strawberry.field(description="The clone URL (https://… or git@…).")
    username: str | None = strawberry.field(description="HTTPS user name; null for SSH.")
    password: str | None = strawberry.field(description="HTTPS password (a token); null for SSH.")
    ssh_private_key: str | None = strawberry.field(description="An OpenSSH private key; null for HTTPS.")
    ssh_known_hosts: str | None = strawberry.field(
        description="The host's SSH keys as known_hosts lines; null for HTTPS (or when the host does not say)."
    )
    expires_at: datetime | None = strawberry.field(
        description="When the credential stops working (GitHub App tokens: 1 hour); null: until unlinked."
    )


LinkRepositoryResult = Annotated[
    RepositoryLinkType
    | gql_errors.MissingPermissionsError
    | gql_errors.NeedsReconnectError
    | gql_errors.ProviderUnavailableError
    | gql_errors.NotFoundError,
    strawberry.union("LinkRepositoryResult", description="The link, or why it could not be made."),
]
UnlinkRepositoryResult = Annotated[
    UnlinkedRepository | gql_errors.NotFoundError,
    strawberry.union(
        "UnlinkRepositoryResult", description="What unlinking did, or that there is no such link."
    ),
]
SetCommitStatusResult = Annotated[
    CommitStatus
    | gql_errors.NotFoundError
    | gql_errors.MissingPermissionsError
    | gql_errors.ProviderUnavailableError,
    strawberry.union("SetCommitStatusResult", description="The status as set, or why it could not be."),
]
CloneCredentialsResult = Annotated[
    CloneCredentialsType | gql_errors.NotFoundError,
    strawberry.union("CloneCredentialsResult", description="The credential, or that there is no such link."),
]


def link_local_id(global_id: str) -> str:
    found = local_id(global_id, "RepositoryLink")
    if found is None:
        raise NotFoundError(NO_SUCH_LINK)
    return found


def repository_ids(global_id: str) -> tuple[str, str]:
    """``(integration id, repository id)`` of a ``Repository`` global id."""
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != "Repository":
        raise NotFoundError(NO_SUCH_REPOSITORY)
    integration_id, sep, repository_id = decoded[1].partition(":")
    if not sep or not integration_id or not repository_id:
        raise NotFoundError(NO_SUCH_REPOSITORY)
    return integration_id, repository_id


@strawberry.type
class LinkMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Link a repository for deploying: a webhook and read access for the builder are set up at "
        "the host. Linking the same repository again returns the same link, checks it and repairs what "
        "was deleted at the host. Needs admin (GitHub) or Maintainer (GitLab) rights on the repository.",
    )
    async def link_repository(
        self,
        info: Info,
        input: Annotated[LinkRepositoryInput, strawberry.argument(description="The repository and branch.")],
    ) -> LinkRepositoryResult:
        caller = await info.context.caller()
        integration_id, repository_id = repository_ids(input.repository_id)
        links = info.context.services.links
        link = await links.link(caller.user_id, integration_id, repository_id, input.branch)
        return RepositoryLinkType.from_domain(link, links.webhook_url(link))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Remove a link: its webhook and deploy key or token at the host first, then its events. "
        "When the host cannot be reached the link goes all the same and `message` says what stayed.",
    )
    async def unlink_repository(
        self,
        info: Info,
        input: Annotated[UnlinkRepositoryInput, strawberry.argument(description="The link to remove.")],
    ) -> UnlinkRepositoryResult:
        caller = await info.context.caller()
        removed = await info.context.services.links.unlink(caller.user_id, link_local_id(input.id))
        if removed is None:
            raise NotFoundError(NO_SUCH_LINK)
        return UnlinkedRepository(
            id=input.id, host_cleaned_up=removed.host_cleaned_up, message=removed.message
        )

    @strawberry.mutation(
        permission_classes=[MaySetCommitStatuses],
        description="Show a build result on a commit of a linked repository (scope git:deploy). A state "
        "GitLab already shows counts as done.",
    )
    async def set_commit_status(
        self,
        info: Info,
        input: Annotated[SetCommitStatusInput, strawberry.argument(description="The commit and its state.")],
    ) -> SetCommitStatusResult:
        caller = await info.context.caller()
        request = domain.CommitStatusRequest(
            sha=input.sha,
            state=domain.CommitState(input.state.value),
            context=input.context,
            description=input.description,
            target_url=input.target_url,
        )
        done = await info.context.services.commit_statuses.set(
            caller.user_id, link_local_id(input.link_id), request
        )
        return CommitStatus(sha=done.sha, state=CommitState(done.state.value), context=done.context)

    @strawberry.mutation(
        permission_classes=[MayClone],
        description="The narrowest credential that clones a linked repository (scope git:clone, for the "
        "platform's builder): a GitHub App token for that repository alone, a read-only deploy key or a "
        "read_repository deploy token. Every issuance is written to the audit log.",
    )
    async def clone_credentials(
        self,
        info: Info,
        input: Annotated[
            CloneCredentialsInput, strawberry.argument(description="The link whose repository to clone.")
        ],
    ) -> CloneCredentialsResult:
        caller = await info.context.caller()
        issued = await info.context.services.clone_credentials.issue(caller, link_local_id(input.link_id))
        return CloneCredentialsType(
            url=issued.url,
            username=issued.username,
            password=issued.password,
            ssh_private_key=issued.ssh_private_key,
            ssh_known_hosts=issued.ssh_known_hosts,
            expires_at=issued.expires_at,
        )
