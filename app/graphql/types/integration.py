"""``Integration`` and ``GitAccount`` as the contract names them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain import models
from app.domain.urls import checked_link, link_on_host
from app.graphql.context import Info
from app.graphql.permissions import IsAuthenticated
from app.graphql.types.node import Node, to_global_id
from app.graphql.types.repository import RepositoryConnection, resolve_repositories

GitProvider = strawberry.enum(models.GitProvider, name="GitProvider")
AuthMethod = strawberry.enum(models.AuthMethod, name="AuthMethod")
TokenKind = strawberry.enum(models.TokenKind, name="TokenKind")
RepositoryAccess = strawberry.enum(models.RepositoryAccess, name="RepositoryAccess")
IntegrationStatus = strawberry.enum(models.IntegrationStatus, name="IntegrationStatus")


@strawberry.type(description="The account on the Git host that an integration acts as.")
class GitAccount:
    login: str
    name: str | None
    avatar_url: str | None
    url: str | None
    bot: bool = strawberry.field(
        description="The account is a bot: a GitLab group or project token's bot user, or a GitLab "
        "service account (whose tokens count as personal tokens)."
    )


@strawberry.type(name="Integration", description="A connected GitHub or GitLab account of the calling user.")
class IntegrationType(Node):
    id: strawberry.ID
    provider: models.GitProvider
    host: str = strawberry.field(description='The Git host, e.g. "github.com" or "gitlab.example.com".')
    auth_method: models.AuthMethod
    token_kind: models.TokenKind
    account: GitAccount
    repository_access: models.RepositoryAccess
    granted_permissions: list[str] = strawberry.field(
        description='Scopes or permissions the host confirmed, e.g. "repo", "api", "contents:write".'
    )
    unverified_permissions: list[str] = strawberry.field(
        description="Required permissions the host's answers could neither prove nor disprove."
    )
    status: models.IntegrationStatus
    expires_at: datetime | None
    created_at: datetime
    last_verified_at: datetime | None
    manage_access_url: str | None = strawberry.field(description="Where the user widens the access.")
    reconnect_by: datetime | None = strawberry.field(
        description="When the login ends (its refresh token expires): from this time on the host no "
        "longer renews the access and the integration's status is NEEDS_RECONNECT. For a GitHub App "
        "login about six months after the last sign-in or renewal (each renewal moves it on). Remind "
        "the user to connect again before then. Null when the host gives the login no end date "
        "(GitLab, GitHub OAuth Apps) and for access tokens, whose end is expiresAt."
    )
    domain: strawberry.Private[models.Integration]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Repositories to deploy from, most recently pushed first. `search` matches names "
        "(GitLab: as GitLab searches); `first` is 1..100; `refresh` asks the host instead of the cache.",
    )
    async def repositories(
        self,
        info: Info,
        search: str | None = None,
        first: int | None = 30,
        after: str | None = None,
        refresh: bool | None = False,
    ) -> RepositoryConnection:
        # Nullable as the contract has them: an explicit null means the default.
        return await resolve_repositories(
            info, self.domain, search, 30 if first is None else first, after, bool(refresh)
        )

    @classmethod
    def from_domain(cls, integration: models.Integration) -> IntegrationType:
        account = integration.account
        web = integration.endpoint.web_url  # links must point there (the URL rule, app.domain.urls)
        return cls(
            id=to_global_id("Integration", integration.id),
            provider=integration.provider,
            host=integration.host,
            auth_method=integration.auth_method,
            token_kind=integration.token_kind,
            account=GitAccount(
                login=account.login,
                name=account.name,
                avatar_url=checked_link(account.avatar_url),
                url=link_on_host(account.url, web, account.login),
                bot=account.bot,
            ),
            repository_access=integration.repository_access,
            granted_permissions=list(integration.granted_permissions),
            unverified_permissions=list(integration.unverified_permissions),
            status=integration.status,
            expires_at=integration.expires_at,
            created_at=integration.created_at,
            last_verified_at=integration.last_verified_at,
            manage_access_url=checked_link(integration.manage_access_url, host=web),
            reconnect_by=integration.reconnect_by,
            domain=integration,
        )
