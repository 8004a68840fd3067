"""When a cached repository list still describes what an integration reaches."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from app.domain.models import (
    AuthMethod,
    GitAccount,
    GitProvider,
    HostEndpoint,
    Integration,
    IntegrationStatus,
    RepositoryAccess,
    TokenKind,
    TokenResource,
)
from app.services.catalog import scope_of

INTEGRATION = Integration(
    id="i1",
    owner="alice",
    endpoint=HostEndpoint(GitProvider.GITHUB, "github.com", "https://github.com", "https://api.github.com"),
    auth_method=AuthMethod.OAUTH,
    token_kind=TokenKind.GITHUB_APP,
    account=GitAccount(id="1", login="octocat"),
    repository_access=RepositoryAccess.SELECTED,
    granted_permissions=["contents:write"],
    status=IntegrationStatus.ACTIVE,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
    resource=TokenResource(kind="installations", ids=("42",)),
)


def test_a_refreshed_login_token_keeps_the_cached_list() -> None:
    refreshed = replace(
        INTEGRATION, version=INTEGRATION.version + 1, expires_at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert scope_of(refreshed) == scope_of(INTEGRATION)


def test_other_grants_or_another_installation_start_a_new_list() -> None:
    assert scope_of(replace(INTEGRATION, granted_permissions=["contents:read"])) != scope_of(INTEGRATION)
    other = replace(INTEGRATION, resource=TokenResource(kind="installations", ids=("43",)))
    assert scope_of(other) != scope_of(INTEGRATION)
    assert scope_of(replace(INTEGRATION, repository_access=RepositoryAccess.ALL)) != scope_of(INTEGRATION)
