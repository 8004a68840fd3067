"""Mutations for integrations connected by access token, and for managing any integration."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.domain.errors import ConnectError, NotFoundError, ProviderUnavailableError
from app.domain.models import GitProvider
from app.graphql.context import Info
from app.graphql.permissions import IsAuthenticated
from app.graphql.types import errors as gql_errors
from app.graphql.types.integration import IntegrationType
from app.graphql.types.node import local_id
from app.services.connect_token import connect_token, update_token
from app.services.disconnect import disconnect
from app.services.verify_integration import verify_integration

ConnectGitTokenResult = Annotated[
    IntegrationType
    | gql_errors.InvalidTokenError
    | gql_errors.MissingPermissionsError
    | gql_errors.InsufficientRoleError
    | gql_errors.HostNotAllowedError
    | gql_errors.ProviderUnavailableError,
    strawberry.union("ConnectGitTokenResult"),
]
UpdateGitTokenResult = Annotated[
    IntegrationType
    | gql_errors.NotFoundError
    | gql_errors.InvalidTokenError
    | gql_errors.MissingPermissionsError
    | gql_errors.InsufficientRoleError
    | gql_errors.HostNotAllowedError
    | gql_errors.ProviderUnavailableError,
    strawberry.union("UpdateGitTokenResult"),
]
VerifyGitIntegrationResult = Annotated[
    IntegrationType | gql_errors.NotFoundError | gql_errors.ProviderUnavailableError,
    strawberry.union("VerifyGitIntegrationResult"),
]


@strawberry.type(description="What disconnecting did.")
class DisconnectedIntegration:
    id: strawberry.ID
    host_notified: bool = strawberry.field(
        description="Whether the Git host was told to revoke the access (logins only)."
    )
    message: str


DisconnectGitIntegrationResult = Annotated[
    DisconnectedIntegration | gql_errors.NotFoundError, strawberry.union("DisconnectGitIntegrationResult")
]


@strawberry.input(description="A token to check and store. `host` is for self-hosted GitLab only.")
class ConnectGitTokenInput:
    provider: GitProvider
    token: str
    host: str | None = None


def _local_id(global_id: str) -> str | None:
    return local_id(global_id, "Integration")


@strawberry.type
class TokenMutations:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Check a personal, group or project access token against its host and store it.",
    )
    async def connect_git_token(self, info: Info, input: ConnectGitTokenInput) -> ConnectGitTokenResult:
        caller = await info.context.caller()
        try:
            integration = await connect_token(
                info.context.services, caller.user_id, input.provider, input.token, input.host
            )
        except (ConnectError, ProviderUnavailableError) as exc:
            return gql_errors.error_type(exc)  # type: ignore[return-value]
        return IntegrationType.from_domain(integration)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Replace the token of an integration (same account) after the same checks.",
    )
    async def update_git_token(self, info: Info, id: strawberry.ID, token: str) -> UpdateGitTokenResult:
        caller = await info.context.caller()
        local_id = _local_id(id)
        try:
            updated = (
                await update_token(info.context.services, caller.user_id, local_id, token)
                if local_id
                else None
            )
        except (ConnectError, ProviderUnavailableError) as exc:
            return gql_errors.error_type(exc)  # type: ignore[return-value]
        if updated is None:
            return gql_errors.error_type(NotFoundError())  # type: ignore[return-value]
        return IntegrationType.from_domain(updated)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Check an integration against its host again and update its status.",
    )
    async def verify_git_integration(self, info: Info, id: strawberry.ID) -> VerifyGitIntegrationResult:
        caller = await info.context.caller()
        local_id = _local_id(id)
        try:
            verified = (
                await verify_integration(info.context.services, caller.user_id, local_id)
                if local_id
                else None
            )
        except ProviderUnavailableError as exc:
            return gql_errors.error_type(exc)  # type: ignore[return-value]
        if verified is None:
            return gql_errors.error_type(NotFoundError())  # type: ignore[return-value]
        return IntegrationType.from_domain(verified)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="Remove an integration and its tokens."
    )
    async def disconnect_git_integration(
        self, info: Info, id: strawberry.ID
    ) -> DisconnectGitIntegrationResult:
        caller = await info.context.caller()
        local_id = _local_id(id)
        removed = await disconnect(info.context.services, caller.user_id, local_id) if local_id else None
        if removed is None:
            return gql_errors.error_type(NotFoundError())  # type: ignore[return-value]
        return DisconnectedIntegration(id=id, host_notified=removed.host_notified, message=removed.message)
