"""What the picker tells a user about repositories it cannot show or cannot deploy from: SAML SSO and
cut-short lists (``RepositoryConnection.notices``), admin rights (``Repository.viewerCanAdminister``),
and GitLab searches that find projects by their group's path."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx

from app.composition import Seams
from app.domain.models import Integration, TokenKind
from app.graphql.types.node import to_global_id
from app.net.client import PagePolicy
from app.settings.model import Settings
from app.settings.values import OAuthClient, Secret
from tests.conftest import GraphQLTestClient, running_app
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.picker_support import (
    GITHUB,
    MovableClock,
    connect,
    github_endpoint,
    gitlab_endpoint,
    picker_settings,
    services_for,
    settle,
    upstream,
)

GITHUB_TOKEN = "ghp_" + "n" * 36
OAUTH_TOKEN = "gho_" + "n" * 36
GITLAB_TOKEN = "glpat-" + "n" * 20
LIST = """query List($id: ID!, $search: String, $refresh: Boolean) { integration(id: $id) {
  repositories(first: 100, search: $search, refresh: $refresh) {
    totalCount
    notices { reason message url organizations }
    edges { node { fullName viewerCanAdminister } }
  } } }"""


@dataclass
class Picker:
    app: Any
    client: GraphQLTestClient
    github: FakeGitHub
    gitlab: FakeGitLab
    integrations: dict[str, Integration]
    clock: MovableClock

    async def list(self, name: str, **variables: Any) -> dict[str, Any]:
        body = await self.client.execute(
            LIST, {"id": to_global_id("Integration", self.integrations[name].id), **variables}
        )
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["integration"]["repositories"]
        return result


def github_world() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_user("octocat")
    fake.add_user("hubot")
    fake.add_org("acme", {"octocat": "member"})
    fake.add_org("initech", {"octocat": "admin"})
    fake.add_repositories("octocat", 3, name_prefix="own")
    fake.add_repositories("acme", 2, name_prefix="acme")
    fake.add_repositories("initech", 2, name_prefix="secret")
    fake.add_repository("hubot", "shared")
    fake.add_collaborator("hubot/shared", "octocat", "write")
    fake.enforce_sso("initech")
    fake.add_classic_token(GITHUB_TOKEN, "octocat", ["repo", "admin:repo_hook"])
    fake.add_oauth_token(OAUTH_TOKEN, "octocat", ["repo", "admin:repo_hook", "read:user"])
    return fake


def gitlab_world() -> FakeGitLab:
    fake = FakeGitLab()
    fake.add_user("alice")
    fake.add_group("acme")
    fake.add_group("payments", parent="acme")
    fake.add_member("alice", "acme", 40)
    fake.add_projects("acme", 3, name_prefix="web")
    fake.add_projects("acme/payments", 2, name_prefix="api")
    fake.add_personal_token(GITLAB_TOKEN, "alice", ["api", "read_repository", "write_repository"])
    return fake


@contextlib.asynccontextmanager
async def picker_for(
    settings: Settings, seams: Seams | None = None, **overrides: Any
) -> AsyncIterator[Picker]:
    github, gitlab = github_world(), gitlab_world()
    settings = picker_settings(
        settings, github_oauth=OAuthClient("Iv1.pickerclient", Secret("s" * 20)), **overrides
    )
    async with upstream(github, gitlab) as up, services_for(settings, up) as services:
        integrations = {
            "classic": await connect(
                services, token=GITHUB_TOKEN, kind=TokenKind.GITHUB_CLASSIC, endpoint=github_endpoint()
            ),
            "oauth": await connect(
                services,
                token=OAUTH_TOKEN,
                kind=TokenKind.GITHUB_OAUTH_APP,
                endpoint=github_endpoint(),
                account_id="3",  # another account: the same one would replace the classic token
            ),
            "gitlab": await connect(
                services,
                token=GITLAB_TOKEN,
                kind=TokenKind.GITLAB_PERSONAL,
                endpoint=gitlab_endpoint(),
                login="alice",
                account_id="2",
            ),
        }
        clock = MovableClock()
        seams = replace(seams or Seams(), http=up, clock=clock)
        async with (
            running_app(settings, seams=seams) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            yield Picker(app, GraphQLTestClient(http, settings), github, gitlab, integrations, clock)


def full_names(found: dict[str, Any]) -> set[str]:
    return {e["node"]["fullName"] for e in found["edges"]}


async def test_repositories_hidden_by_saml_sso_are_named_with_where_to_authorize(settings: Settings) -> None:
    async with picker_for(settings, repository_cache_seconds=0) as picker:
        found = await picker.list("classic")
        assert full_names(found) == {
            "octocat/own-0001",
            "octocat/own-0002",
            "octocat/own-0003",
            "acme/acme-0001",
            "acme/acme-0002",
            "hubot/shared",
        }
        initech = picker.github.account("initech")
        assert found["notices"] == [
            {
                "reason": "SSO_AUTHORIZATION_REQUIRED",
                "message": found["notices"][0]["message"],
                "url": f"{GITHUB}/settings/tokens",
                "organizations": [str(initech.id)],
            }
        ]
        assert "SAML single sign-on" in found["notices"][0]["message"]
        # Kept with the listing: revalidated with 304s (which do not repeat the header), still said.
        await settle(picker.app)
        picker.github.clear_requests()
        picker.clock.advance(4)
        again = await picker.list("classic")
        assert {r.status for r in picker.github.requests} == {304}
        assert again["notices"] == found["notices"]
        # Once the token is authorized the organization's repositories appear and the notice goes.
        picker.github.authorize_sso(GITHUB_TOKEN, "initech")
        await settle(picker.app)
        picker.clock.advance(4)
        authorized = await picker.list("classic")
        assert {"initech/secret-0001", "initech/secret-0002"} <= full_names(authorized)
        assert authorized["notices"] == []


async def test_an_oauth_app_login_is_sent_to_the_apps_own_page(settings: Settings) -> None:
    async with picker_for(settings) as picker:
        found = await picker.list("oauth")
    assert [n["url"] for n in found["notices"]] == [
        f"{GITHUB}/settings/connections/applications/Iv1.pickerclient"
    ]


async def test_a_walk_cut_short_says_so(settings: Settings) -> None:
    async with picker_for(settings, Seams(pages=PagePolicy(max_pages=1))) as picker:
        picker.github.add_repositories("octocat", 150, name_prefix="bulk")
        found = await picker.list("classic", search="/")  # a search waits for the whole walk
    assert found["totalCount"] == 100
    reasons = [n["reason"] for n in found["notices"]]
    assert reasons == ["SSO_AUTHORIZATION_REQUIRED", "LIST_INCOMPLETE"]
    assert "first 100 repositories" in found["notices"][1]["message"]


async def test_admin_rights_are_told_per_repository(settings: Settings) -> None:
    async with picker_for(settings) as picker:
        github = await picker.list("classic")
        gitlab = await picker.list("gitlab")
    rights = {e["node"]["fullName"]: e["node"]["viewerCanAdminister"] for e in github["edges"]}
    assert rights["octocat/own-0001"] is True  # owner
    assert rights["acme/acme-0001"] is False  # organization member with write
    assert rights["hubot/shared"] is False  # collaborator with write
    # GitLab lists Maintainer-or-higher projects only: each one can be linked.
    assert {e["node"]["viewerCanAdminister"] for e in gitlab["edges"]} == {True}


async def test_a_gitlab_search_finds_projects_by_their_groups_path(settings: Settings) -> None:
    async with picker_for(settings) as picker:
        found = await picker.list("gitlab", search="payments")
        searched = [r for r in picker.gitlab.requests if r.path == "/api/v4/projects"]
    assert full_names(found) == {"acme/payments/api-0001", "acme/payments/api-0002"}
    assert "search_namespaces=true" in searched[-1].query
