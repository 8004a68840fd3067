"""Issue 11, item 6: links that hosts answer are not passed on as they came.

A GitLab project's ``web_url`` of ``javascript:alert(document.domain)`` came back as ``webUrl``, and
``cloneUrl``, ``avatarUrl``, ``account.url`` and ``manageAccessUrl`` were not checked at all: a
frontend that renders them as links runs the host's script, or sends the user to a look-alike site.
The URL rule (``app.domain.urls``): every returned link is http(s); repository and account links
point at the integration's host (else they are rebuilt from the host and the path the service
knows); avatars may be on other hosts. Both hosts' parsers apply it, and the GraphQL types apply it
again to what was stored before.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from bson import ObjectId

from app.domain.models import (
    AuthMethod,
    GitAccount,
    GitProvider,
    HostEndpoint,
    Integration,
    IntegrationStatus,
    RepositoryAccess,
    TokenKind,
)
from app.domain.urls import checked_link, link_on_host
from app.hosts.github.client import GitHubHost
from app.hosts.gitlab.client import GitLabHost
from app.net.client import RetryPolicy, Upstream
from app.settings.model import Settings
from tests.fakes import scenarios
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.server import run_in_thread
from tests.oauth_support import Service, open_service
from tests.recordings import load

HOSTILE = [
    "javascript:alert(document.domain)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/acme/app",
    "https://evil.example/acme/app",
    "https://gitlab.example.com.evil.example/acme/app",
    "https://gitlab.example.com@evil.example/acme/app",
    "https://gitlab.example.com\\@evil.example/acme/app",
    "https://gitlab.example.com:8443/acme/app",  # another port is another site
    "http://gitlab.example.com/acme/app",  # another scheme too
    "https://gitlab.example.com/acme/app\n",
    "https://gitlab.ex\u0430mple.com/acme/app",  # a Cyrillic a
    "https://gitlab.example.com/" + "a" * 2100,
    "",
    None,
    42,
]
WEB = "https://gitlab.example.com"


@pytest.mark.parametrize("value", HOSTILE)
def test_a_link_into_the_host_that_points_elsewhere_is_rebuilt_from_the_host(value: Any) -> None:
    assert link_on_host(value, WEB, "acme/app") == "https://gitlab.example.com/acme/app"


@pytest.mark.parametrize(
    ("value", "web"),
    [
        ("https://gitlab.example.com/acme/app", WEB),
        ("https://GitLab.Example.com:443/acme/app", WEB),
        ("https://git.example.com/gitlab/acme/app", "https://git.example.com/gitlab"),
        ("http://127.0.0.1:18102/acme/app", "http://127.0.0.1:18102"),
    ],
)
def test_a_link_on_the_host_is_kept(value: str, web: str) -> None:
    assert link_on_host(value, web, "somewhere/else") == value


def test_a_link_outside_the_path_the_host_lives_under_is_rebuilt() -> None:
    web = "https://git.example.com/gitlab"

    assert link_on_host("https://git.example.com/other/acme/app", web, "acme/app") == f"{web}/acme/app"
    assert link_on_host("https://git.example.com/gitlabx/acme", web, "acme") == f"{web}/acme"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("https://avatars.githubusercontent.com/u/583231?v=4", True),
        ("https://www.gravatar.com/avatar/abc?s=80&d=identicon", True),
        ("http://gitlab.example.com/uploads/-/system/user/avatar/1/a.png", True),
        ("javascript:alert(1)", False),
        ("data:image/svg+xml,<svg onload=alert(1)>", False),
        ("https://user:pass@avatars.example/a.png", False),
        ("//avatars.example/a.png", False),
    ],
)
def test_avatars_may_be_on_other_hosts_but_must_be_http(value: str, kept: bool) -> None:
    assert checked_link(value) == (value if kept else None)


# --- the hosts' parsers ----------------------------------------------------------------------------

GITLAB = HostEndpoint(GitProvider.GITLAB, "gitlab.example.com", WEB, f"{WEB}/api/v4")
GITHUB = HostEndpoint(GitProvider.GITHUB, "github.com", "https://github.com", "https://api.github.com")


def integration(endpoint: HostEndpoint, kind: TokenKind) -> Integration:
    return Integration(
        id="i1",
        owner="alice",
        endpoint=endpoint,
        auth_method=AuthMethod.ACCESS_TOKEN,
        token_kind=kind,
        account=GitAccount(id="7", login="alice"),
        repository_access=RepositoryAccess.ALL,
        granted_permissions=["api"],
        status=IntegrationStatus.ACTIVE,
        created_at=datetime.now(UTC),
    )


@pytest.fixture
def http() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as mock:
        yield mock


def gitlab_project(web_url: Any, clone_url: Any) -> dict[str, Any]:
    """A project in the recorded shape (projects-owned.codecov-2018.json) with the links given."""
    entry: dict[str, Any] = copy.deepcopy(
        load("gitlab", "projects-owned.codecov-2018.json")["response"]["body"][0]
    )
    entry.update(id=7, path_with_namespace="acme/app", web_url=web_url, http_url_to_repo=clone_url)
    return entry


async def test_gitlab_project_links_that_point_elsewhere_are_rebuilt(http: respx.MockRouter) -> None:
    http.get(f"{WEB}/api/v4/projects").respond(
        json=[gitlab_project("javascript:alert(document.domain)", "https://evil.example/acme/app.git")]
    )
    async with httpx.AsyncClient() as client:
        host = GitLabHost(Upstream(client, retry=RetryPolicy(attempts=1)), GITLAB)
        listing = await host.list_repositories("glpat-x", integration(GITLAB, TokenKind.GITLAB_PERSONAL))

    [repo] = listing.repositories
    assert (repo.web_url, repo.clone_url) == (f"{WEB}/acme/app", f"{WEB}/acme/app.git")


async def test_github_repository_links_that_point_elsewhere_are_rebuilt(http: respx.MockRouter) -> None:
    recorded = copy.deepcopy(load("github", "user-repos.page1.codecov-2020.json")["response"]["body"][0])
    recorded.update(
        full_name="octocat/app",
        html_url="javascript:alert(1)",
        clone_url="https://github.com.evil.example/x.git",
    )
    http.get("https://api.github.com/user/repos").respond(json=[recorded])
    async with httpx.AsyncClient() as client:
        host = GitHubHost(Upstream(client, retry=RetryPolicy(attempts=1)), GITHUB)
        listing = await host.list_repositories("ghp_x", integration(GITHUB, TokenKind.GITHUB_CLASSIC))

    [repo] = listing.repositories
    assert (repo.web_url, repo.clone_url) == (
        "https://github.com/octocat/app",
        "https://github.com/octocat/app.git",
    )


async def test_account_links_from_either_host_are_checked(http: respx.MockRouter) -> None:
    user = copy.deepcopy(load("github", "user.oauth-scopes.codecov-2020.json")["response"]["body"])
    user.update(html_url="javascript:alert(1)", avatar_url="javascript:alert(2)")
    http.get("https://api.github.com/user").respond(
        json=user, headers={"X-OAuth-Scopes": "repo, admin:repo_hook"}
    )
    async with httpx.AsyncClient() as client:
        verified = await GitHubHost(Upstream(client), GITHUB).verify_token("ghp_" + "a" * 36)

    assert verified.account.url == f"https://github.com/{user['login']}"
    assert verified.account.avatar_url is None


# --- through the API: what was stored before the rule -----------------------------------------------


@pytest.fixture
def gitlab() -> Iterator[tuple[FakeGitLab, str]]:
    fake = scenarios.default_gitlab(FakeGitLab(), repositories=1)
    with run_in_thread(fake.app) as url:
        yield fake, url


@pytest.fixture
async def service(settings: Settings, gitlab: tuple[FakeGitLab, str]) -> AsyncIterator[Service]:
    async with open_service(replace(settings, gitlab_url=gitlab[1])) as opened:
        yield opened


QUERY = """query($id: ID!) { integration(id: $id) { account { url avatarUrl } manageAccessUrl
  repositories(first: 5) { manageAccessUrl edges { node { fullName webUrl cloneUrl } } } } }"""


async def test_links_stored_before_the_rule_are_checked_on_the_way_out(
    service: Service, gitlab: tuple[FakeGitLab, str]
) -> None:
    web = gitlab[1]
    connected = await service.execute(
        "mutation($t: String!) { connectGitToken(input: {provider: GITLAB, token: $t}) { ... on Integration { id } } }",
        {"t": scenarios.GITLAB_PERSONAL_TOKEN},
    )
    integration_id = connected["connectGitToken"]["id"]
    first = await service.execute(QUERY, {"id": integration_id})  # the listing is stored
    [node] = [edge["node"] for edge in first["integration"]["repositories"]["edges"]]
    await service.db["integrations"].update_one(
        {},
        {"$set": {"account.url": "javascript:alert(1)", "account.avatarUrl": "javascript:alert(2)",
                  "manageAccessUrl": "javascript:alert(3)"}},
    )  # fmt: skip
    pages = service.db["repository_cache"]
    page = await pages.find_one({"repositories.0": {"$exists": True}})
    assert page is not None
    hostile = [
        r | {"webUrl": "javascript:alert(4)", "cloneUrl": "https://evil.example/x.git"}
        for r in page["repositories"]
    ]
    await pages.update_one({"_id": ObjectId(page["_id"])}, {"$set": {"repositories": hostile}})
    # A new generation, so that the stored pages are decoded again rather than taken from memory.
    await pages.update_many({"kind": "head"}, {"$set": {"generation": "changed-in-the-database"}})

    second = (await service.execute(QUERY, {"id": integration_id}))["integration"]

    assert second["account"]["url"] == f"{web}/{scenarios.GITLAB_USER}"
    assert second["account"]["avatarUrl"] is None
    assert second["manageAccessUrl"] is None
    [again] = [edge["node"] for edge in second["repositories"]["edges"]]
    assert again["webUrl"] == node["webUrl"] == f"{web}/{node['fullName']}"
    assert again["cloneUrl"] == f"{web}/{node['fullName']}.git"
    assert "javascript" not in str(second) and "evil" not in str(second)


@pytest.mark.parametrize(
    "web", [WEB, "https://GitLab.Example.com:443", "https://git.example.com/gitlab/", "http://127.0.0.1:18102"]
)
def test_the_quick_path_for_plain_links_judges_exactly_like_the_full_rule(web: str) -> None:
    from app.domain.urls import _http_parts, _inside

    values: list[Any] = [
        *HOSTILE,
        "https://gitlab.example.com/acme/app",
        "https://gitlab.example.com/acme/app.git",
        "https://gitlab.example.com/acme/a%20b",
        "https://gitlab.example.com/acme/app?x=1",
        "https://gitlab.example.com/acme/app#top",
        "https://gitlab.example.com/acme:app",
        "https://gitlab.example.com/../../etc",
        "https://git.example.com/gitlab/acme/app",
        "https://git.example.com/gitlabx/acme",
        "https://git.example.com/gitlab",
        "http://127.0.0.1:18102/acme/app",
        "http://127.0.0.1:181020/acme/app",
        "https://gitlab.example.com/" + "a" * 2030,
    ]
    for value in values:
        parts = _http_parts(value)
        full = str(value) if parts is not None and _inside(parts, web) else None
        assert checked_link(value, host=web) == full, value
