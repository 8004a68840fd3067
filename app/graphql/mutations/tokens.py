"""Mutations for integrations connected by access token, and for managing any integration."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.domain.errors import NotFoundError
from app.domain.models import GitProvider
from app.graphql.context import Info
from app.graphql.permissions import IsAuthenticated
from app.graphql.types import errors as gql_errors
from app.graphql.types.integration import IntegrationType
from app.graphql.types.node import local_id

ConnectGitTokenResult = Annotated[
    IntegrationType
    | gql_errors.InvalidTokenError
    | gql_errors.MissingPermissionsError
    | gql_errors.InsufficientRoleError
    | gql_errors.HostNotAllowedError
    | gql_errors.ProviderUnavailableError
    | gql_errors.LimitReachedError,
    strawberry.union(
        "ConnectGitTokenResult", description="The connected integration, or why the token was not stored."
    ),
]
UpdateGitTokenResult = Annotated[
    IntegrationType
    | gql_errors.NotFoundError
    | gql_errors.InvalidTokenError
    | gql_errors.MissingPermissionsError
    | gql_errors.InsufficientRoleError
    | gql_errors.HostNotAllowedError
    | gql_errors.ProviderUnavailableError,
    strawberry.union(
        "UpdateGitTokenResult",
        description="The integration with its new token, or why the old one was kept (NotFoundError: no "
        "such integration of the caller's).",
    ),
]
VerifyGitIntegrationResult = Annotated[
    IntegrationType | gql_errors.NotFoundError | gql_errors.ProviderUnavailableError,
    strawberry.union(
        "VerifyGitIntegrationResult",
        description="The integration as the host confirmed it now (its status may have become "
        "NEEDS_RECONNECT), or why it could not be checked.",
    ),
]


@strawberry.type(description="What disconnecting did.")
class DisconnectedIntegration:
    id: strawberry.ID = strawberry.field(description="The id of the integration that was removed.")
    host_notified: bool = strawberry.field(
        description="Whether the Git host was told to revoke the access (logins only)."
    )
    message: str = strawberry.field(
        description="What happened, for the person at the screen: e.g. that the host could not be told and "
        "where the user revokes the access there."
    )


DisconnectGitIntegrationResult = Annotated[
    DisconnectedIntegration | gql_errors.NotFoundError,
    strawberry.union(
        "DisconnectGitIntegrationResult",
        description="What disconnecting did, or NotFoundError when the caller has no such integration.",
    ),
]


@strawberry.input(description="A token to check and store. `host` is for self-hosted GitLab only.")
class ConnectGitTokenInput:
    provider: GitProvider = strawberry.field(description="The token's host: GITHUB or GITLAB.")
    token: str = strawberry.field(
        description="The access token as the host showed it (`ghp_…`, `github_pat_…`, `glpat-…`); surrounding "
        "spaces are ignored. Checked against the host before it is stored, encrypted, and never answered back."
    )
    host: str | None = strawberry.field(
        default=None,
        description='GitLab only: a self-hosted GitLab\'s address, e.g. "gitlab.yourcompany.com" or '
        '"https://gitlab.yourcompany.com" (https, public addresses only: HostNotAllowedError otherwise). Null: '
        "gitlab.com (or the configured GITLAB_URL); GitHub uses the configured GitHub.",
    )


@strawberry.input(description="The integration whose token to replace, and the new token.")
class UpdateGitTokenInput:
    id: strawberry.ID = strawberry.field(description="The integration's id (`Integration.id`).")
    token: str = strawberry.field(
        description="The new token, for the same account on the same host; checked like a new connection "
        "before it replaces the stored one. Never answered back."
    )


@strawberry.input(description="The integration to check again.")
class VerifyGitIntegrationInput:
    id: strawberry.ID = strawberry.field(description="The integration's id (`Integration.id`).")


@strawberry.input(description="The integration to remove.")
class DisconnectGitIntegrationInput:
    id: strawberry.ID = strawberry.field(description="The integration's id (`Integration.id`).")


def _local_id(global_id: str) -> str | None:
    return local_id(global_id, "Integration")


@strawberry.type
class TokenMutations:
    """Failures are raised as domain errors; ``types.errors.EXCEPTION_HANDLERS`` answers each with its
    union member."""

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Check a personal, group or project access token against its host and store it.",
    )
    async def connect_git_token(
        self,
        info: Info,
        input: Annotated[ConnectGitTokenInput, strawberry.argument(description="The token and its host.")],
    ) -> ConnectGitTokenResult:
        caller = await info.context.caller()
        integration = await info.context.services.connect_token.connect(
            caller.user_id, input.provider, input.token, input.host
        )
        return IntegrationType.from_domain(integration)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Replace the token of an integration (same account) after the same checks.",
    )
    async def update_git_token(
        self,
        info: Info,
        input: Annotated[
            UpdateGitTokenInput, strawberry.argument(description="The integration and its new token.")
        ],
    ) -> UpdateGitTokenResult:
        caller = await info.context.caller()
        integration_id = _local_id(input.id)
        if integration_id is None:
            raise NotFoundError()
        updated = await info.context.services.connect_token.replace(
            caller.user_id, integration_id, input.token
        )
        if updated is None:
            raise NotFoundError()
        return IntegrationType.from_domain(updated)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Check an integration against its host again and update its status.",
    )
    async def verify_git_integration(
        self,
        info: Info,
        input: Annotated[
            VerifyGitIntegrationInput, strawberry.argument(description="The integration to check.")
        ],
    ) -> VerifyGitIntegrationResult:
        caller = await info.context.caller()
        integration_id = _local_id(input.id)
        if integration_id is None:
            raise NotFoundError()
        verified = await info.context.services.verify.verify(caller.user_id, integration_id)
        if verified is None:
            raise NotFoundError()
        return IntegrationType.from_domain(verified)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="Remove an integration and its tokens."
    )
    async def disconnect_git_integration(
        self,
        info: Info,
        input: Annotated[
            DisconnectGitIntegrationInput, strawberry.argument(description="The integration to remove.")
        ],
    ) -> DisconnectGitIntegrationResult:
        caller = await info.context.caller()
        integration_id = _local_id(input.id)
        if integration_id is None:
            raise NotFoundError()
        removed = await info.context.services.disconnect.disconnect(caller.user_id, integration_id)
        if removed is None:
            raise NotFoundError()
        return DisconnectedIntegration(
            id=input.id, host_notified=removed.host_notified, message=removed.message
        )
