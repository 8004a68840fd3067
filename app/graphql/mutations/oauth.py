"""Mutations for connecting by login: ``connectGitOAuth`` and ``completeGitOAuth``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.domain.models import GitProvider
from app.graphql.context import Info
from app.graphql.permissions import IsAuthenticated
from app.graphql.types import errors as gql_errors
from app.graphql.types.integration import IntegrationType


@strawberry.input(
    description="Start connecting by login. `returnTo`: where the service's /oauth/callback sends the "
    "browser with `state` and `code` (or `error`); it must be on one of the service's frontend origins."
)
class ConnectGitOAuthInput:
    provider: GitProvider = strawberry.field(description="The host to log in at: GITHUB or GITLAB.")
    return_to: str | None = strawberry.field(
        default=None,
        description="The frontend page that finishes the login with completeGitOAuth (an absolute URL on one "
        "of FRONTEND_ORIGINS; BAD_USER_INPUT otherwise). Null: the callback shows the call to run instead "
        "(GraphiQL, development).",
    )


@strawberry.type(description="Where to send the browser to log in at the Git host.")
class GitOAuthAuthorization:
    authorization_url: str = strawberry.field(
        description="The host's login page for this login (with the state and a PKCE challenge): send the "
        "browser there, in the same tab."
    )
    state: str = strawberry.field(description="Comes back with the host's redirect; single use.")
    expires_at: datetime = strawberry.field(
        description="When the state stops being accepted (10 minutes after the start): a login finished later "
        "answers InvalidOAuthStateError."
    )


ConnectGitOAuthResult = Annotated[
    GitOAuthAuthorization | gql_errors.OAuthNotConfiguredError,
    strawberry.union(
        "ConnectGitOAuthResult",
        description="Where to send the browser, or that the operator has not set up login with this host.",
    ),
]


@strawberry.input(
    description="What /oauth/callback handed on to `returnTo`: `state`, `code` and, after a GitHub App "
    "installation, `installationId`. Only the user who started the login can complete it."
)
class CompleteGitOAuthInput:
    state: str = strawberry.field(
        description="The `state` query parameter /oauth/callback sent to `returnTo`."
    )
    code: str | None = strawberry.field(
        default=None,
        description="The `code` query parameter /oauth/callback sent to `returnTo`: the host's authorization "
        "code, single use, useless without the service's PKCE verifier. Null answers OAuthExchangeError.",
    )
    installation_id: str | None = strawberry.field(
        default=None,
        description="The `installationId` query parameter, present after a GitHub App installation; null "
        "otherwise. The service checks that the signed-in account can see that installation.",
    )


CompleteGitOAuthResult = Annotated[
    IntegrationType
    | gql_errors.InvalidOAuthStateError
    | gql_errors.OAuthExchangeError
    | gql_errors.MissingPermissionsError
    | gql_errors.InsufficientRoleError
    | gql_errors.ProviderUnavailableError
    | gql_errors.LimitReachedError,
    strawberry.union(
        "CompleteGitOAuthResult", description="The connected integration, or why the login could not finish."
    ),
]


@strawberry.type
class OAuthMutations:
    @strawberry.mutation(
        name="connectGitOAuth",  # auto camel case would spell it connectGitOauth
        permission_classes=[IsAuthenticated],
        description="Start 'Connect with GitHub / GitLab': the URL to send the browser to, and its state. "
        "BAD_USER_INPUT when `returnTo` is not on a frontend origin.",
    )
    async def connect_git_oauth(
        self,
        info: Info,
        input: Annotated[
            ConnectGitOAuthInput, strawberry.argument(description="The host and where to come back.")
        ],
    ) -> ConnectGitOAuthResult:
        caller = await info.context.caller()
        authorization = await info.context.services.connect_login.start(
            caller.user_id, input.provider, input.return_to
        )
        return GitOAuthAuthorization(
            authorization_url=authorization.url,
            state=authorization.state,
            expires_at=authorization.expires_at,
        )

    @strawberry.mutation(
        name="completeGitOAuth",
        permission_classes=[IsAuthenticated],
        description="Finish a login the caller started, with what /oauth/callback handed on to "
        "`returnTo`; the callback itself never connects anything. InvalidOAuthStateError when the state "
        "is unknown, used, expired or another user's (that user's state stays usable).",
    )
    async def complete_git_oauth(
        self,
        info: Info,
        input: Annotated[
            CompleteGitOAuthInput,
            strawberry.argument(description="What the callback handed on to `returnTo`."),
        ],
    ) -> CompleteGitOAuthResult:
        caller = await info.context.caller()
        integration = await info.context.services.connect_login.complete(
            caller.user_id, input.state, input.code, input.installation_id
        )
        return IntegrationType.from_domain(integration)
