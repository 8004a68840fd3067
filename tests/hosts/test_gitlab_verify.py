"""GitLabHost.verify_token against recorded GitLab answers (tests/fixtures/gitlab, see its README).

Recordings are replayed as they were sent; where a scenario needs another status or body the override is
explicit in the test. Two answers have no recording or documented example in the fixtures and are built
here: ``/personal_access_tokens/self/associations`` (17.4+), in the shape of the example in GitLab's
``doc/api/personal_access_tokens.md``, and ``/oauth/token/info`` (Doorkeeper, as GitLab extends it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from app.domain.errors import (
    HostNotAllowedError,
    InsufficientRoleError,
    InvalidTokenError,
    MissingPermissionsError,
    ProviderUnavailableError,
    PublicError,
    RateLimitedError,
)
from app.domain.models import GitProvider, HostEndpoint, RepositoryAccess, TokenKind, TokenResource
from app.hosts.gitlab.client import GitLabHost
from app.net.client import RetryPolicy, Upstream
from tests.recordings import load, replay

WEB = "https://gitlab.com"
API = f"{WEB}/api/v4"
GITLAB_COM = HostEndpoint(provider=GitProvider.GITLAB, host="gitlab.com", web_url=WEB, api_url=API)
TOKEN = "glpat-Zq8v3LkP0aT7mWcY2nRb"
ALL_SCOPES = ["api", "read_repository", "write_repository"]
NO_RETRY_DELAY = RetryPolicy(attempts=3, base_delay=0, max_delay=0)

SELF = "personal-access-token-self.ADAPTED-from-gitlab-docs.json"
USER = "user.codecov-2018.json"  # id 109640, username "codecov"


# --------------------------------------------------------------------------------------------------
# Fixtures and answer builders


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def gitlab(http_client: httpx.AsyncClient) -> GitLabHost:
    return GitLabHost(Upstream(http_client, retry=NO_RETRY_DELAY), GITLAB_COM)


def token_self(**fields: Any) -> httpx.Response:
    """The documented token object with the product's scopes unless a test says otherwise."""
    body = {**load("gitlab", SELF)["response"]["body"], "scopes": ALL_SCOPES, **fields}
    return replay("gitlab", SELF, body=body)


def user(**fields: Any) -> httpx.Response:
    return replay("gitlab", USER, body={**load("gitlab", USER)["response"]["body"], **fields})


def gitlab_404(message: str = "404 Not Found") -> httpx.Response:
    """GitLab's JSON 404, headers as recorded from gitlab.com."""
    return replay("gitlab", "error-404-project-not-found.codecov-2024.json", body={"message": message})


def no_such_route() -> httpx.Response:
    """A route the instance does not have: GitLab's catch-all ``error!('404 Not Found', 404)``
    (gitlabhq lib/api/api.rb) renders ``{"error": ...}``, not ``{"message": ...}``."""
    return replay("gitlab", "error-404-project-not-found.codecov-2024.json", body={"error": "404 Not Found"})


def recorded_projects() -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = load("gitlab", "projects-owned.codecov-2018.json")["response"]["body"]
    return body


def group_entry(
    group_id: int, path: str, level: int | None, parent_id: int | None = None, web: str = WEB
) -> dict[str, Any]:
    """A group as the associations list it: no ``full_path``, the level as a plain int."""
    return {
        "id": group_id,
        "web_url": f"{web}/groups/{path}",
        "name": path.rsplit("/", 1)[-1].title(),
        "parent_id": parent_id,
        "organization_id": 1,
        "access_levels": level,
        "visibility": "private",
    }


def project_entry(
    project: dict[str, Any], project_level: int | None, group_level: int | None
) -> dict[str, Any]:
    """A recorded project in the associations' shape: ``access_levels`` is an object there."""
    return {
        "id": project["id"],
        "description": project.get("description"),
        "name": project["name"],
        "name_with_namespace": project["name_with_namespace"],
        "path": project["path"],
        "path_with_namespace": project["path_with_namespace"],
        "created_at": project["created_at"],
        "access_levels": {"project_access_level": project_level, "group_access_level": group_level},
        "visibility": project.get("visibility", "private"),
        "web_url": project["web_url"],
        "namespace": project["namespace"],
    }


def associations(
    groups: list[dict[str, Any]] | None = None, projects: list[dict[str, Any]] | None = None
) -> httpx.Response:
    return httpx.Response(200, json={"groups": groups or [], "projects": projects or []})


def mock_associations(
    router: respx.MockRouter, min_level: int, response: httpx.Response, api: str = API
) -> respx.Route:
    return router.get(
        f"{api}/personal_access_tokens/self/associations",
        params__eq={"min_access_level": str(min_level), "per_page": "100"},
    ).mock(return_value=response)


def mock_legacy_projects(router: respx.MockRouter, response: httpx.Response) -> respx.Route:
    return router.get(
        f"{API}/projects",
        params__eq={"membership": "true", "min_access_level": "40", "simple": "true", "per_page": "1"},
    ).mock(return_value=response)


def mock_legacy_groups(router: respx.MockRouter, response: httpx.Response) -> respx.Route:
    return router.get(f"{API}/groups", params__eq={"min_access_level": "40", "per_page": "1"}).mock(
        return_value=response
    )


def mock_legacy_all_projects(router: respx.MockRouter, response: httpx.Response) -> respx.Route:
    return router.get(f"{API}/projects", params__eq={"membership": "true", "per_page": "100"}).mock(
        return_value=response
    )


def requested_paths(router: respx.MockRouter) -> list[str]:
    return [call.request.url.path for call in router.calls]


# --------------------------------------------------------------------------------------------------
# Personal access tokens


async def test_personal_token_with_all_scopes_and_maintainer_role_is_accepted(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user())
    project = recorded_projects()[0]
    roles = mock_associations(router, 40, associations(projects=[project_entry(project, 40, None)]))

    verified = await gitlab.verify_token(TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_PERSONAL
    assert verified.account.id == "109640"
    assert verified.account.login == "codecov"
    assert verified.account.name == "Codecov"
    assert verified.account.url == "https://gitlab.com/codecov"
    assert verified.account.avatar_url is not None
    assert verified.account.bot is False
    assert verified.repository_access is RepositoryAccess.ALL
    assert verified.granted_permissions == tuple(ALL_SCOPES)
    assert verified.unverified_permissions == ()
    assert verified.expires_at is None
    assert verified.resource is None
    assert verified.manage_access_url == "https://gitlab.com/-/user_settings/personal_access_tokens"
    assert len(router.calls) == 3
    assert roles.call_count == 1
    for call in router.calls:
        assert call.request.headers["PRIVATE-TOKEN"] == TOKEN
        assert "Authorization" not in call.request.headers


async def test_maintainer_inherited_from_a_group_is_accepted(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user())
    # Membership through the group only: the project's own level is null.
    mock_associations(router, 40, associations(projects=[project_entry(recorded_projects()[1], None, 40)]))

    verified = await gitlab.verify_token(TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_PERSONAL


async def test_token_without_write_repository_is_refused(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(
        return_value=token_self(scopes=["api", "read_repository", "read_user"])
    )

    with pytest.raises(MissingPermissionsError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.missing == ["write_repository"]
    assert raised.value.granted == ["api", "read_repository", "read_user"]
    assert "write_repository" in raised.value.message
    assert len(router.calls) == 1  # refused before asking for the user or the role


async def test_documented_token_with_only_api_scope_misses_both_repository_scopes(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(
        return_value=replay("gitlab", SELF)
    )  # as documented

    with pytest.raises(MissingPermissionsError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.missing == ["read_repository", "write_repository"]
    assert raised.value.granted == ["api"]


async def test_developer_role_is_refused_naming_the_role(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user())
    mock_associations(router, 40, associations())
    every_role = mock_associations(
        router,
        10,
        associations(
            groups=[group_entry(17, "acme", 20)],
            projects=[
                project_entry(recorded_projects()[0], 30, 20),
                project_entry(recorded_projects()[1], None, 10),
            ],
        ),
    )

    with pytest.raises(InsufficientRoleError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.required == "Maintainer"
    assert raised.value.actual == "Developer"
    assert "Developer" in raised.value.message
    assert "Maintainer" in raised.value.message
    assert every_role.call_count == 1
    assert len(router.calls) == 4


async def test_user_without_any_membership_is_refused_without_a_role(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user())
    mock_associations(router, 40, associations())
    mock_associations(router, 10, associations())

    with pytest.raises(InsufficientRoleError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.actual is None
    assert "not a member" in raised.value.message


async def test_expiry_is_recorded(router: respx.MockRouter, gitlab: GitLabHost) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self(expires_at="2026-12-31"))
    router.get(f"{API}/user").mock(return_value=user())
    mock_associations(router, 40, associations(groups=[group_entry(17, "acme", 50)]))

    verified = await gitlab.verify_token(TOKEN)

    # GitLab tokens stop working at the start of their expiry date, UTC.
    assert verified.expires_at == datetime(2026, 12, 31, tzinfo=UTC)


async def test_surrounding_whitespace_is_stripped_and_any_prefix_is_accepted(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user())
    mock_associations(router, 40, associations(groups=[group_entry(17, "acme", 40)]))

    await gitlab.verify_token("  acmecorp-9f8e7d6c5b4a3210\n")

    assert {call.request.headers["PRIVATE-TOKEN"] for call in router.calls} == {"acmecorp-9f8e7d6c5b4a3210"}


@pytest.mark.parametrize(
    "token",
    ["", "   \n", "x" * 256, "glpat-abc def", "glpat-abc\tdef", "glpat-äbc", "glpat-\x00abc"],
    ids=["empty", "blank", "too-long", "inner-space", "tab", "non-ascii", "control-char"],
)
async def test_malformed_tokens_are_refused_before_any_request(
    router: respx.MockRouter, gitlab: GitLabHost, token: str
) -> None:
    with pytest.raises(InvalidTokenError):
        await gitlab.verify_token(token)

    assert len(router.calls) == 0


async def test_token_of_255_characters_is_sent(router: respx.MockRouter, gitlab: GitLabHost) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(
        return_value=replay("gitlab", "error-401.gitlab-docs.json")
    )

    with pytest.raises(InvalidTokenError):
        await gitlab.verify_token("g" * 255)

    assert len(router.calls) == 1


# --------------------------------------------------------------------------------------------------
# Group and project access tokens


async def test_group_token_bot_is_recognised_as_group_token(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self(expires_at="2026-06-30"))
    router.get(f"{API}/user").mock(return_value=user(id=901, username="group_4242_bot_3c1f9a0b", bot=True))
    # A group token also reaches the group's subgroups and projects.
    mock_associations(
        router,
        40,
        associations(
            groups=[
                group_entry(4243, "acme/platform/tools", 40, parent_id=4242),
                group_entry(4242, "acme/platform", 40, 17),
            ],
            projects=[project_entry(recorded_projects()[0], None, 40)],
        ),
    )

    verified = await gitlab.verify_token(TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_GROUP
    assert verified.account.bot is True
    assert verified.resource == TokenResource(kind="group", ids=("4242",), path="acme/platform")
    assert verified.repository_access is RepositoryAccess.SELECTED
    assert verified.manage_access_url == "https://gitlab.com/groups/acme/platform/-/settings/access_tokens"
    assert len(router.calls) == 3


async def test_project_token_is_recognised_and_scoped(router: respx.MockRouter, gitlab: GitLabHost) -> None:
    project = recorded_projects()[0]  # 580838 codecov/example-python
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self(expires_at="2026-06-30"))
    router.get(f"{API}/user").mock(
        return_value=user(id=902, username=f"project_{project['id']}_bot_5d2e8c71", bot=True)
    )
    mock_associations(router, 40, associations(projects=[project_entry(project, 40, None)]))

    verified = await gitlab.verify_token(TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_PROJECT
    assert verified.resource == TokenResource(kind="project", ids=("580838",), path="codecov/example-python")
    assert verified.repository_access is RepositoryAccess.SELECTED
    assert verified.manage_access_url == "https://gitlab.com/codecov/example-python/-/settings/access_tokens"
    assert verified.expires_at == datetime(2026, 6, 30, tzinfo=UTC)
    assert len(router.calls) == 3


async def test_a_bot_named_otherwise_is_a_service_account_with_a_personal_token(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    # Service accounts: "bot": true without the group_/project_ prefix of group and project token bots.
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user(id=903, username="deploy-bot", bot=True))
    mock_associations(router, 40, associations(projects=[project_entry(recorded_projects()[2], 40, None)]))

    verified = await gitlab.verify_token(TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_PERSONAL
    assert verified.repository_access is RepositoryAccess.ALL
    assert verified.resource is None


async def test_project_token_with_developer_role_is_refused(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    project = recorded_projects()[0]
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(
        return_value=user(username=f"project_{project['id']}_bot_5d2e8c71", bot=True)
    )
    mock_associations(router, 40, associations())
    mock_associations(router, 10, associations(projects=[project_entry(project, 30, None)]))

    with pytest.raises(InsufficientRoleError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.actual == "Developer"
    assert raised.value.message.startswith("This project access token has the Developer role")


# --------------------------------------------------------------------------------------------------
# Older instances


async def test_instance_older_than_17_4_falls_back_to_project_membership(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user())
    mock_associations(router, 40, gitlab_404())
    maintained = mock_legacy_projects(router, httpx.Response(200, json=[{"id": 580838}]))
    groups = mock_legacy_groups(router, httpx.Response(200, json=[]))

    verified = await gitlab.verify_token(TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_PERSONAL
    assert maintained.call_count == 1
    assert groups.call_count == 0  # one Maintainer project is enough
    assert len(router.calls) == 4


async def test_instance_older_than_17_4_names_the_role_from_project_permissions(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user())
    mock_associations(router, 40, gitlab_404())
    mock_legacy_projects(router, httpx.Response(200, json=[]))
    mock_legacy_groups(router, httpx.Response(200, json=[]))
    # The recorded membership page, with the roles lowered: a Reporter of one project, and a Developer of
    # another through its group (the project's own access is null when it is inherited).
    projects = recorded_projects()
    projects[0]["permissions"] = {
        "project_access": {"access_level": 20, "notification_level": 3},
        "group_access": None,
    }
    projects[1]["permissions"] = {
        "project_access": None,
        "group_access": {"access_level": 30, "notification_level": 3},
    }
    projects[2]["permissions"] = {"project_access": None, "group_access": None}
    all_projects = mock_legacy_all_projects(
        router, replay("gitlab", "projects-owned.codecov-2018.json", body=projects)
    )

    with pytest.raises(InsufficientRoleError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.actual == "Developer"
    assert all_projects.call_count == 1
    assert len(router.calls) == 6


async def test_group_token_on_instance_older_than_17_4_reads_its_group(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user(username="group_77_bot_0b7e", bot=True))
    mock_associations(router, 40, gitlab_404())
    mock_legacy_projects(
        router, httpx.Response(200, json=[{"id": 580838, "path_with_namespace": "acme/app"}])
    )
    group = router.get(f"{API}/groups/77").mock(
        return_value=httpx.Response(
            200, json={"id": 77, "full_path": "acme", "web_url": f"{WEB}/groups/acme"}
        )
    )

    verified = await gitlab.verify_token(TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_GROUP
    assert verified.resource == TokenResource(kind="group", ids=("77",), path="acme")
    assert verified.manage_access_url == "https://gitlab.com/groups/acme/-/settings/access_tokens"
    assert group.call_count == 1


@pytest.mark.parametrize("not_there", [no_such_route, gitlab_404], ids=["error", "message"])
async def test_instance_older_than_15_5_reports_scopes_as_unverified(
    router: respx.MockRouter, gitlab: GitLabHost, not_there: Any
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=not_there())
    router.get(f"{API}/user").mock(return_value=user())
    roles = mock_associations(router, 40, no_such_route())
    mock_legacy_projects(router, httpx.Response(200, json=[{"id": 580838}]))

    verified = await gitlab.verify_token(TOKEN)

    assert verified.granted_permissions == ()
    assert verified.unverified_permissions == tuple(ALL_SCOPES)
    assert roles.call_count == 0  # older than 15.5 is older than 17.4 too
    assert len(router.calls) == 3


async def test_token_that_may_not_use_the_api_on_instance_older_than_15_5_misses_api(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=no_such_route())
    router.get(f"{API}/user").mock(
        return_value=httpx.Response(
            403,
            json={
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided.",
                "scope": "api read_user",
            },
        )
    )

    with pytest.raises(MissingPermissionsError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.missing == ["api"]
    assert raised.value.unverified == ["read_repository", "write_repository"]


# --------------------------------------------------------------------------------------------------
# Refused tokens and hosts


async def test_inactive_token_is_invalid(router: respx.MockRouter, gitlab: GitLabHost) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self(active=False))

    with pytest.raises(InvalidTokenError):
        await gitlab.verify_token(TOKEN)

    assert len(router.calls) == 1


async def test_token_flagged_revoked_is_invalid(router: respx.MockRouter, gitlab: GitLabHost) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self(revoked=True))

    with pytest.raises(InvalidTokenError) as raised:
        await gitlab.verify_token(TOKEN)

    assert "revoked" in raised.value.message


async def test_revoked_token_401_is_invalid(router: respx.MockRouter, gitlab: GitLabHost) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(
        return_value=replay("gitlab", "error-401.gitlab-docs.json")
    )

    with pytest.raises(InvalidTokenError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.message == "GitLab did not accept this token: it is unknown, expired or revoked."
    assert len(router.calls) == 1  # a 401 is an answer, not a failure to retry


SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Welcome</body></html>"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, text="<html><body><h1>404 Not Found</h1>nginx</body></html>"),
        httpx.Response(200, text=SIGN_IN_PAGE, headers={"Content-Type": "text/html"}),
        httpx.Response(200, json={"status": "ok"}),
        httpx.Response(403, text="<html>Forbidden</html>"),
    ],
    ids=["html-404", "html-200", "json-without-scopes", "html-403"],
)
async def test_host_that_is_not_gitlab_is_named(
    router: respx.MockRouter, http_client: httpx.AsyncClient, answer: httpx.Response
) -> None:
    endpoint = HostEndpoint(
        provider=GitProvider.GITLAB,
        host="wiki.example.com",
        web_url="https://wiki.example.com",
        api_url="https://wiki.example.com/api/v4",
    )
    router.get("https://wiki.example.com/api/v4/personal_access_tokens/self").mock(return_value=answer)

    with pytest.raises(HostNotAllowedError) as raised:
        await GitLabHost(Upstream(http_client), endpoint).verify_token(TOKEN)

    assert raised.value.host == "wiki.example.com"
    assert "wiki.example.com does not answer like a GitLab instance" in raised.value.message
    assert len(router.calls) == 1


async def test_redirect_is_not_followed(router: respx.MockRouter, http_client: httpx.AsyncClient) -> None:
    endpoint = HostEndpoint(
        provider=GitProvider.GITLAB,
        host="git.example.com",
        web_url="http://git.example.com",
        api_url="http://git.example.com/api/v4",
    )
    router.get("http://git.example.com/api/v4/personal_access_tokens/self").mock(
        return_value=httpx.Response(
            301, headers={"Location": "https://git.example.com/api/v4/personal_access_tokens/self"}
        )
    )
    target = router.get("https://git.example.com/api/v4/personal_access_tokens/self").mock(
        return_value=token_self()
    )

    with pytest.raises(HostNotAllowedError) as raised:
        await GitLabHost(Upstream(http_client), endpoint).verify_token(TOKEN)

    assert raised.value.host == "git.example.com"
    assert "redirected" in raised.value.message
    assert "not followed" in raised.value.message
    assert target.call_count == 0  # the token never went to the redirect target
    assert len(router.calls) == 1


async def test_gitlab_under_path_prefix_uses_prefixed_api(
    router: respx.MockRouter, http_client: httpx.AsyncClient
) -> None:
    web = "https://git.example.com/gitlab"
    api = f"{web}/api/v4"
    endpoint = HostEndpoint(
        provider=GitProvider.GITLAB, host="git.example.com/gitlab", web_url=web, api_url=api
    )
    router.get(f"{api}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{api}/user").mock(return_value=user(username="group_12_bot_aa01", bot=True))
    mock_associations(router, 40, associations(groups=[group_entry(12, "infra/ops", 40, web=web)]), api=api)

    verified = await GitLabHost(Upstream(http_client), endpoint).verify_token(TOKEN)

    assert requested_paths(router) == [
        "/gitlab/api/v4/personal_access_tokens/self",
        "/gitlab/api/v4/user",
        "/gitlab/api/v4/personal_access_tokens/self/associations",
    ]
    # The group's path is read from its web URL below the prefix, not including it.
    assert verified.resource == TokenResource(kind="group", ids=("12",), path="infra/ops")
    assert (
        verified.manage_access_url
        == "https://git.example.com/gitlab/groups/infra/ops/-/settings/access_tokens"
    )


async def test_personal_token_under_path_prefix_manages_access_below_the_prefix(
    router: respx.MockRouter, http_client: httpx.AsyncClient
) -> None:
    web = "https://git.example.com/gitlab"
    api = f"{web}/api/v4"
    endpoint = HostEndpoint(
        provider=GitProvider.GITLAB, host="git.example.com/gitlab", web_url=web, api_url=api
    )
    router.get(f"{api}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{api}/user").mock(return_value=user())
    mock_associations(router, 40, associations(groups=[group_entry(12, "infra", 50, web=web)]), api=api)

    verified = await GitLabHost(Upstream(http_client), endpoint).verify_token(TOKEN)

    assert (
        verified.manage_access_url == "https://git.example.com/gitlab/-/user_settings/personal_access_tokens"
    )


# --------------------------------------------------------------------------------------------------
# Host trouble


async def test_rate_limit_429_carries_retry_after(router: respx.MockRouter, gitlab: GitLabHost) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(
        return_value=httpx.Response(
            429,
            headers={"Retry-After": "120", "RateLimit-Remaining": "0"},
            json={"message": "Retry later"},
        )
    )

    with pytest.raises(RateLimitedError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.retry_after_seconds == 120
    assert len(router.calls) == 1  # rate limits are not retried


async def test_server_errors_become_provider_unavailable_after_retries(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(
        return_value=httpx.Response(503, text="Service Unavailable")
    )

    with pytest.raises(ProviderUnavailableError) as raised:
        await gitlab.verify_token(TOKEN)

    assert not isinstance(raised.value, RateLimitedError)
    assert "gitlab.com" in raised.value.message
    assert len(router.calls) == 3


async def test_rate_limit_while_reading_the_role_propagates(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{API}/personal_access_tokens/self").mock(return_value=token_self())
    router.get(f"{API}/user").mock(return_value=user())
    mock_associations(router, 40, httpx.Response(429, headers={"Retry-After": "30"}))

    with pytest.raises(RateLimitedError) as raised:
        await gitlab.verify_token(TOKEN)

    assert raised.value.retry_after_seconds == 30


# --------------------------------------------------------------------------------------------------
# OAuth


def token_info(scopes: list[str], expires_in: int | None = 7200) -> httpx.Response:
    """Doorkeeper's token info as GitLab extends it (``scope`` plus ``scopes``, ``expires_in_seconds``)."""
    return httpx.Response(
        200,
        json={
            "resource_owner_id": 3124507,
            "scope": scopes,
            "scopes": scopes,
            "expires_in": expires_in,
            "expires_in_seconds": expires_in,
            "application": {"uid": "a1b2c3"},
            "created_at": 1599149427,
        },
    )


async def test_oauth_token_uses_bearer_and_token_info(router: respx.MockRouter, gitlab: GitLabHost) -> None:
    info = router.get(f"{WEB}/oauth/token/info").mock(return_value=token_info(ALL_SCOPES))
    router.get(f"{API}/user").mock(return_value=replay("gitlab", "user.oauth-token.codecov-2020.json"))
    self_route = router.get(f"{API}/personal_access_tokens/self")
    roles = mock_associations(router, 40, associations())
    # The associations endpoint refuses OAuth tokens, so the role comes from the membership probe.
    mock_legacy_projects(router, httpx.Response(200, json=[{"id": 580838}]))

    before = datetime.now(UTC)
    verified = await gitlab.verify_token(TOKEN, oauth=True)

    assert verified.token_kind is TokenKind.GITLAB_OAUTH
    assert verified.account.login == "ThiagoCodecov"
    assert verified.account.id == "3124507"
    assert verified.repository_access is RepositoryAccess.ALL
    assert verified.granted_permissions == tuple(ALL_SCOPES)
    assert verified.manage_access_url == "https://gitlab.com/-/user_settings/applications"
    assert verified.expires_at is not None
    assert (
        before + timedelta(seconds=7190) <= verified.expires_at <= datetime.now(UTC) + timedelta(seconds=7200)
    )
    assert info.call_count == 1
    assert self_route.call_count == 0
    assert roles.call_count == 0
    assert len(router.calls) == 3
    for call in router.calls:
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "PRIVATE-TOKEN" not in call.request.headers


async def test_oauth_token_without_write_repository_is_refused(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{WEB}/oauth/token/info").mock(return_value=token_info(["api", "read_repository"]))

    with pytest.raises(MissingPermissionsError) as raised:
        await gitlab.verify_token(TOKEN, oauth=True)

    assert raised.value.missing == ["write_repository"]
    assert len(router.calls) == 1


async def test_oauth_token_rejected_by_token_info_is_invalid(
    router: respx.MockRouter, gitlab: GitLabHost
) -> None:
    router.get(f"{WEB}/oauth/token/info").mock(
        return_value=httpx.Response(
            401,
            json={"error": "invalid_token", "error_description": "The access token expired"},
            headers={"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token"'},
        )
    )

    with pytest.raises(InvalidTokenError):
        await gitlab.verify_token(TOKEN, oauth=True)


# --------------------------------------------------------------------------------------------------
# The token stays secret


def _self_answer(response: httpx.Response) -> dict[str, httpx.Response]:
    return {f"{API}/personal_access_tokens/self": response}


FAILURES: dict[str, dict[str, httpx.Response]] = {
    "401": _self_answer(httpx.Response(401, json={"message": "401 Unauthorized"})),
    "missing-scopes": _self_answer(httpx.Response(200, json={"scopes": ["read_api"], "active": True})),
    "inactive": _self_answer(httpx.Response(200, json={"scopes": ALL_SCOPES, "active": False})),
    "not-gitlab": _self_answer(httpx.Response(200, text=SIGN_IN_PAGE)),
    "redirect": _self_answer(httpx.Response(302, headers={"Location": f"{WEB}/users/sign_in"})),
    "rate-limited": _self_answer(httpx.Response(429, headers={"Retry-After": "5"})),
    "unavailable": _self_answer(httpx.Response(502, text="Bad Gateway")),
    "role": {
        f"{API}/personal_access_tokens/self": httpx.Response(
            200, json={"scopes": ALL_SCOPES, "active": True}
        ),
        f"{API}/user": httpx.Response(200, json={"id": 1, "username": "dev", "bot": False}),
        f"{API}/personal_access_tokens/self/associations": httpx.Response(
            200, json={"groups": [], "projects": []}
        ),
    },
}


@pytest.mark.parametrize("scenario", sorted(FAILURES))
async def test_token_never_appears_in_error_messages(
    router: respx.MockRouter, gitlab: GitLabHost, caplog: pytest.LogCaptureFixture, scenario: str
) -> None:
    for url, response in FAILURES[scenario].items():
        router.get(url).mock(return_value=response)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(PublicError) as raised:
        await gitlab.verify_token(TOKEN)

    _assert_secret_absent(TOKEN, raised.value, caplog.text)


@pytest.mark.parametrize("token", ["glpat-Zq8v3LkP 0aT7mWcY2nRb", "glpat-Zq8v3LkP0aT7mWcY2nRb" * 10])
async def test_malformed_token_is_not_repeated_in_the_refusal(
    router: respx.MockRouter, gitlab: GitLabHost, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    caplog.set_level(logging.DEBUG)

    with pytest.raises(InvalidTokenError) as raised:
        await gitlab.verify_token(token)

    for part in token.split():
        _assert_secret_absent(part[:12], raised.value, caplog.text)
        _assert_secret_absent(part[-12:], raised.value, caplog.text)


def _assert_secret_absent(secret: str, error: PublicError, log_text: str) -> None:
    # vars() covers every attribute a GraphQL error type could expose (missing, granted, host, ...).
    for text in (str(error), repr(error), error.message, str(vars(error)), log_text):
        assert secret not in text
