"""``Integration`` and ``GitAccount`` as the contract names them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.domain import models
from app.domain.urls import checked_link, link_on_host
from app.graphql.context import Info
from app.graphql.permissions import IsAuthenticated
from app.graphql.types.described import described_enum
from app.graphql.types.node import Node, to_global_id
from app.graphql.types.repository import RepositoryConnection, resolve_repositories

GitProvider = described_enum(
    models.GitProvider,
    name="GitProvider",
    description="Which kind of Git host: GitHub (github.com, GitHub Enterprise) or GitLab (gitlab.com or "
    "self-hosted).",
    values={
        models.GitProvider.GITHUB: "GitHub: github.com, or the GitHub Enterprise the service is configured for.",
        models.GitProvider.GITLAB: "GitLab: gitlab.com, or a self-hosted GitLab (`host`).",
    },
)
AuthMethod = described_enum(
    models.AuthMethod,
    name="AuthMethod",
    description="How the integration was connected.",
    values={
        models.AuthMethod.OAUTH: "By login at the host (connectGitOAuth, completeGitOAuth); the service renews "
        "the access itself until `reconnectBy`.",
        models.AuthMethod.ACCESS_TOKEN: "By an access token the user pasted (connectGitToken); replace it with "
        "updateGitToken before it expires.",
    },
)
TokenKind = described_enum(
    models.TokenKind,
    name="TokenKind",
    description="The kind of token the integration holds, which decides what it can reach and how its "
    "permissions are read.",
    values={
        models.TokenKind.GITHUB_CLASSIC: "A GitHub classic personal access token (`ghp_…`): scopes `repo` and "
        "`admin:repo_hook` needed.",
        models.TokenKind.GITHUB_FINE_GRAINED: "A GitHub fine-grained personal access token (`github_pat_…`) "
        "for all or selected repositories: Administration, Commit statuses, Contents and Webhooks read and "
        "write needed.",
        models.TokenKind.GITHUB_OAUTH_APP: "A login through the GitHub OAuth App the service is configured "
        "with.",
        models.TokenKind.GITHUB_APP: "A login through the GitHub App the service is configured with; the "
        "repositories are those of its installations (all or selected).",
        models.TokenKind.GITLAB_PERSONAL: "A GitLab personal access token (`glpat-…`), or a service "
        "account's: scopes `api`, `read_repository`, `write_repository` and the Maintainer role or higher.",
        models.TokenKind.GITLAB_GROUP: "A GitLab group access token: the group's projects, acting as the "
        "group's bot user.",
        models.TokenKind.GITLAB_PROJECT: "A GitLab project access token: that one project, acting as the "
        "project's bot user.",
        models.TokenKind.GITLAB_OAUTH: "A login through the GitLab OAuth application the service is "
        "configured with.",
    },
)
RepositoryAccess = described_enum(
    models.RepositoryAccess,
    name="RepositoryAccess",
    description="Whether the integration reaches every repository of the account or only some.",
    values={
        models.RepositoryAccess.ALL: "Every repository the account can reach.",
        models.RepositoryAccess.SELECTED: "Only the repositories chosen at the host (a fine-grained token's "
        "or a GitHub App installation's selection, a group or project token): `manageAccessUrl` is where "
        "the user adds more.",
    },
)
IntegrationStatus = described_enum(
    models.IntegrationStatus,
    name="IntegrationStatus",
    description="Whether the integration can be used.",
    values={
        models.IntegrationStatus.ACTIVE: "The host accepted the token at the last check or use.",
        models.IntegrationStatus.NEEDS_RECONNECT: "The host no longer accepts the token (revoked, expired, "
        "a login past `reconnectBy`): connect the account again. Fields that need the host answer the "
        "error NEEDS_RECONNECT meanwhile.",
    },
)

RepositoriesSearch = Annotated[
    str | None,
    strawberry.argument(
        description="Only repositories whose names contain this text (GitLab: as GitLab's own search "
        "matches it); at most 100 characters. Null or empty: every repository. A search waits for the "
        "whole list, never a partial one."
    ),
]
RepositoriesFirst = Annotated[
    int | None,
    strawberry.argument(description="How many repositories on this page (1..100; BAD_USER_INPUT otherwise)."),
]
RepositoriesAfter = Annotated[
    str | None,
    strawberry.argument(
        description="The `endCursor` of the previous page for the next one; BAD_USER_INPUT when it is not a "
        "cursor of this list."
    ),
]
RepositoriesRefresh = Annotated[
    bool | None,
    strawberry.argument(
        description="Ask the host again instead of answering from the cached list (up to "
        "REPOSITORY_CACHE_SECONDS old): after the user changed the access at the host."
    ),
]


@strawberry.type(description="The account on the Git host that an integration acts as.")
class GitAccount:
    login: str = strawberry.field(description='The account\'s user name at the host, e.g. "octocat".')
    name: str | None = strawberry.field(description="The display name; null when the account has none.")
    avatar_url: str | None = strawberry.field(
        description="The account's picture (an http(s) URL); null when the host gave none."
    )
    url: str | None = strawberry.field(
        description="The account's page on the integration's host; null when it cannot be built."
    )
    bot: bool = strawberry.field(
        description="The account is a bot: a GitLab group or project token's bot user, or a GitLab "
        "service account (whose tokens count as personal tokens)."
    )


@strawberry.type(name="Integration", description="A connected GitHub or GitLab account of the calling user.")
class IntegrationType(Node):
    id: strawberry.ID = strawberry.field(
        description="The integration's global id, for integration(id), node(id) and the mutations."
    )
    provider: models.GitProvider = strawberry.field(description="GitHub or GitLab.")
    host: str = strawberry.field(description='The Git host, e.g. "github.com" or "gitlab.example.com".')
    auth_method: models.AuthMethod = strawberry.field(description="Connected by login or by access token.")
    token_kind: models.TokenKind = strawberry.field(description="The kind of token the integration holds.")
    account: GitAccount = strawberry.field(description="The account at the host the integration acts as.")
    repository_access: models.RepositoryAccess = strawberry.field(
        description="Every repository of the account, or only those selected at the host."
    )
    granted_permissions: list[str] = strawberry.field(
        description='Scopes or permissions the host confirmed, e.g. "repo", "api", "contents:write".'
    )
    unverified_permissions: list[str] = strawberry.field(
        description="Required permissions the host's answers could neither prove nor disprove."
    )
    status: models.IntegrationStatus = strawberry.field(
        description="ACTIVE, or NEEDS_RECONNECT when the host no longer accepts the token."
    )
    expires_at: datetime | None = strawberry.field(
        description="When the current access ends: for an access token its own expiry (replace it with "
        "updateGitToken before then); for a login the current access token's, renewed by the service on its "
        "own. Null when it does not expire."
    )
    created_at: datetime = strawberry.field(description="When the integration was first connected.")
    last_verified_at: datetime | None = strawberry.field(
        description="When the host last confirmed the token and its permissions (connecting, "
        "verifyGitIntegration); null when never since it was stored."
    )
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
        search: RepositoriesSearch = None,
        first: RepositoriesFirst = 30,
        after: RepositoriesAfter = None,
        refresh: RepositoriesRefresh = False,
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
