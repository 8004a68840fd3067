"""The repository picker end to end: GraphQL through the ASGI app, the fake GitHub and GitLab upstream.

Upstream requests are read from the fakes' request logs, so each scenario states what the hosts saw.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from app.composition import Seams
from app.domain.models import Integration, RepositoryAccess, TokenKind, TokenResource
from app.graphql.types.node import to_global_id
from app.settings.model import Settings
from app.storage.mongo import Database
from tests.conftest import GraphQLTestClient, running_app
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.picker_support import (
    MovableClock,
    connect,
    github_endpoint,
    gitlab_endpoint,
    picker_settings,
    services_for,
    settle,
    upstream,
)

GITHUB_TOKEN = "ghp_" + "p" * 36
GITLAB_TOKEN = "glpat-" + "p" * 20
GROUP_TOKEN = "glpat-" + "g" * 20
MAINTAINER = 40

LIST = """query List($id: ID!, $first: Int!, $after: String, $search: String, $refresh: Boolean!) {
  integration(id: $id) {
    repositories(first: $first, after: $after, search: $search, refresh: $refresh) {
      totalCount repositoryAccess manageAccessUrl fetchedAt
      edges { cursor node { id name fullName owner private archived defaultBranch webUrl cloneUrl pushedAt } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}"""


@dataclass
class Picker:
    app: Any
    client: GraphQLTestClient
    github: FakeGitHub
    gitlab: FakeGitLab
    github_integration: Integration
    gitlab_integration: Integration
    clock: MovableClock

    async def list(
        self,
        integration: Integration,
        *,
        first: int = 30,
        after: str | None = None,
        search: str | None = None,
        refresh: bool = False,
        user: str = "alice",
    ) -> dict[str, Any]:
        variables = {
            "id": to_global_id("Integration", integration.id),
            "first": first,
            "after": after,
            "search": search,
            "refresh": refresh,
        }
        return await self.client.execute(LIST, variables, user=user)


def upstream_requests(fake: FakeGitHub | FakeGitLab, path: str) -> list[Any]:
    return [r for r in fake.requests if r.path == path]


def page_of(request: Any) -> int:
    return int(parse_qs(request.query)["page"][0])


def walk_requests(fake: FakeGitHub | FakeGitLab, path: str) -> list[Any]:
    """Requests of the whole list's walk (in a stable order), not of a first page in push order."""
    return [r for r in upstream_requests(fake, path) if "sort=pushed" not in r.query and "last_activity" not in r.query]


def connection(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["integration"]["repositories"]
    return result


def error_code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


def github_world() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_user("octocat")
    fake.add_repositories("octocat", 250, archived_every=10)
    fake.add_classic_token(GITHUB_TOKEN, "octocat", ["repo", "admin:repo_hook"])
    return fake


def gitlab_world() -> FakeGitLab:
    fake = FakeGitLab()
    fake.add_user("alice")
    fake.add_group("acme")
    fake.add_group("platform", parent="acme")
    fake.add_member("alice", "acme", MAINTAINER)
    fake.add_projects("acme", 120)
    fake.add_projects("acme/platform", 30, name_prefix="service")
    fake.add_personal_token(GITLAB_TOKEN, "alice", ["api", "read_repository", "write_repository"])
    fake.add_group_token(GROUP_TOKEN, "acme", ["api", "read_repository", "write_repository"])
    return fake


@contextlib.asynccontextmanager
async def picker_for(settings: Settings, **overrides: Any) -> AsyncIterator[Picker]:
    clock = MovableClock()
    github, gitlab = github_world(), gitlab_world()
    settings = picker_settings(settings, **overrides)
    async with upstream(github, gitlab) as up, services_for(settings, up) as services:
        github_integration = await connect(
            services, token=GITHUB_TOKEN, kind=TokenKind.GITHUB_CLASSIC, endpoint=github_endpoint()
        )
        gitlab_integration = await connect(
            services,
            token=GITLAB_TOKEN,
            kind=TokenKind.GITLAB_PERSONAL,
            endpoint=gitlab_endpoint(),
            login="alice",
            account_id="2",
        )
        async with (
            running_app(settings, seams=Seams(http=up, clock=clock)) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            yield Picker(
                app,
                GraphQLTestClient(http, settings),
                github,
                gitlab,
                github_integration,
                gitlab_integration,
                clock,
            )


@pytest.fixture
async def picker(settings: Settings) -> AsyncIterator[Picker]:
    async with picker_for(settings) as ready:
        yield ready


async def test_a_cold_listing_walks_every_page_and_a_warm_one_asks_github_nothing(picker: Picker) -> None:
    first = connection(await picker.list(picker.github_integration, first=5))
    assert first["totalCount"] == 250
    assert [e["node"]["name"] for e in first["edges"]] == [f"repo-{n:04d}" for n in range(1, 6)]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["repositoryAccess"] == "ALL"
    await settle(picker.app)
    assert sorted(page_of(r) for r in walk_requests(picker.github, "/user/repos")) == [1, 2, 3]

    picker.github.clear_requests()
    again = connection(await picker.list(picker.github_integration, first=5))
    assert again["edges"] == first["edges"]
    assert picker.github.requests == []


async def test_after_the_freshness_window_each_page_is_revalidated_and_costs_a_304(
    settings: Settings,
) -> None:
    async with picker_for(settings, repository_cache_seconds=0) as picker:
        connection(await picker.list(picker.github_integration))
        await settle(picker.app)  # else the next query joins the listing still being saved
        picker.github.clear_requests()
        picker.clock.advance(4)  # past the 1.2 s per page that even a short list stays fresh
        again = connection(await picker.list(picker.github_integration))
        assert again["totalCount"] == 250
        statuses = [r.status for r in upstream_requests(picker.github, "/user/repos")]
        assert statuses == [304, 304, 304]


async def test_refresh_revalidates_a_warm_list_and_sees_a_new_repository(picker: Picker) -> None:
    connection(await picker.list(picker.github_integration, first=1))
    await settle(picker.app)
    picker.github.add_repository("octocat", "brand-new")
    picker.github.clear_requests()
    cached = connection(await picker.list(picker.github_integration, first=1))
    assert cached["totalCount"] == 250 and picker.github.requests == []

    refreshed = connection(await picker.list(picker.github_integration, first=1, refresh=True))
    assert refreshed["totalCount"] == 251
    assert len(upstream_requests(picker.github, "/user/repos")) == 3


async def test_concurrent_queries_for_one_integration_share_one_upstream_listing(picker: Picker) -> None:
    picker.github.delay = 0.05
    bodies = await asyncio.gather(*(picker.list(picker.github_integration, first=3) for _ in range(4)))
    assert {connection(b)["totalCount"] for b in bodies} == {250}
    await settle(picker.app)
    assert len(walk_requests(picker.github, "/user/repos")) == 3  # one walk of 3 pages, not four
    # and at most one first page in push order (with its count), not four
    assert len(upstream_requests(picker.github, "/user/repos")) <= 5


async def test_one_query_over_every_integration_lists_each_once_and_all_at_once(picker: Picker) -> None:
    picker.github.delay = picker.gitlab.delay = 0.1
    # "All at once": a request reaches one host while the other host is still answering.
    overlaps: list[str] = []

    def meets(other: FakeGitHub | FakeGitLab) -> Callable[[Any], None]:
        def arrival(request: Any) -> None:
            if any(r.status == 0 for r in other.requests):
                overlaps.append(request.path)

        return arrival

    picker.github.on_arrival = meets(picker.gitlab)
    picker.gitlab.on_arrival = meets(picker.github)
    query = """{ integrations { provider
        a: repositories(first: 2) { totalCount edges { node { name } } }
        b: repositories(first: 2) { totalCount } } }"""
    body = await picker.client.execute(query)
    assert "errors" not in body, body
    totals = {
        i["provider"]: (i["a"]["totalCount"], i["b"]["totalCount"]) for i in body["data"]["integrations"]
    }
    assert totals == {"GITHUB": (250, 250), "GITLAB": (150, 150)}
    await settle(picker.app)
    assert len(walk_requests(picker.github, "/user/repos")) == 3
    assert len(walk_requests(picker.gitlab, "/api/v4/projects")) == 2
    assert overlaps, "the two hosts were asked one after the other"


async def test_github_search_filters_the_cached_list_without_asking_github(picker: Picker) -> None:
    connection(await picker.list(picker.github_integration))
    await settle(picker.app)
    picker.github.clear_requests()
    found = connection(await picker.list(picker.github_integration, search="REPO-012"))
    assert [e["node"]["name"] for e in found["edges"]] == [f"repo-{n:04d}" for n in range(120, 130)]
    assert found["totalCount"] == 10
    assert picker.github.requests == []


async def test_gitlab_search_is_done_by_gitlab_and_cached_per_search_text(picker: Picker) -> None:
    found = connection(await picker.list(picker.gitlab_integration, search="service-001"))
    assert sorted(e["node"]["name"] for e in found["edges"]) == [f"service-{n:04d}" for n in range(10, 20)]
    searched = upstream_requests(picker.gitlab, "/api/v4/projects")
    assert len(searched) == 1 and "search=service-001" in searched[0].query
    picker.gitlab.clear_requests()
    connection(await picker.list(picker.gitlab_integration, search="service-001"))
    assert picker.gitlab.requests == []


async def test_cursors_walk_the_whole_list_once_in_pushed_order(picker: Picker) -> None:
    names: list[str] = []
    after = None
    while True:
        page = connection(await picker.list(picker.gitlab_integration, first=40, after=after))
        names += [e["node"]["fullName"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(names) == len(set(names)) == 150
    by_activity = sorted(picker.gitlab.projects.values(), key=lambda p: (-p.last_activity_at, p.id))
    assert names == [p.path_with_namespace for p in by_activity]
    assert len(walk_requests(picker.gitlab, "/api/v4/projects")) == 2  # cached after the first page


@pytest.mark.parametrize(
    ("first", "after"), [(0, None), (101, None), (10, "bm90LWEtY3Vyc29y"), (10, "garbage!")]
)
async def test_first_out_of_range_or_a_foreign_cursor_is_bad_user_input(
    picker: Picker, first: int, after: str | None
) -> None:
    body = await picker.list(picker.github_integration, first=first, after=after)
    assert error_code(body) == "BAD_USER_INPUT"
    assert picker.github.requests == []


async def test_a_revoked_token_sets_needs_reconnect_and_says_so(picker: Picker) -> None:
    picker.github.revoke_token(GITHUB_TOKEN)
    body = await picker.list(picker.github_integration)
    assert error_code(body) == "NEEDS_RECONNECT"
    assert body["data"] == {"integration": None}  # the failed field's error nulls its nullable parent
    status = await picker.client.execute(
        "query($id: ID!) { integration(id: $id) { status } }",
        {"id": to_global_id("Integration", picker.github_integration.id)},
    )
    assert status["data"]["integration"]["status"] == "NEEDS_RECONNECT"
    assert GITHUB_TOKEN not in str(body)


async def test_a_rate_limited_host_fails_the_field_with_how_long_to_wait(picker: Picker) -> None:
    picker.github.rate_limit_remaining = 0
    body = await picker.list(picker.github_integration)
    assert error_code(body) == "RATE_LIMITED"
    assert 0 < body["errors"][0]["extensions"]["retryAfterSeconds"] <= 3600
    assert body["errors"][0]["path"] == ["integration", "repositories"]


async def test_a_host_that_is_down_fails_the_field_as_provider_unavailable(picker: Picker) -> None:
    picker.gitlab.fail_next(503, count=10)
    body = await picker.list(picker.gitlab_integration)
    assert error_code(body) == "PROVIDER_UNAVAILABLE"


async def test_an_expired_list_is_served_while_the_host_is_down(settings: Settings) -> None:
    async with picker_for(settings, repository_cache_seconds=0) as picker:
        connection(await picker.list(picker.gitlab_integration, first=3))
        await settle(picker.app)
        fresh = connection(await picker.list(picker.gitlab_integration, first=3))  # as stored
        picker.clock.advance(4)
        picker.gitlab.fail_next(503, count=20)
        stale = connection(await picker.list(picker.gitlab_integration, first=3))
        assert stale["edges"] == fresh["edges"] and stale["fetchedAt"] == fresh["fetchedAt"]
        body = await picker.list(picker.gitlab_integration, first=3, refresh=True)
        assert error_code(body) == "PROVIDER_UNAVAILABLE"


async def test_a_repository_is_a_node_with_branches_but_only_for_its_owner(picker: Picker) -> None:
    page = connection(await picker.list(picker.github_integration, first=1))
    node_id = page["edges"][0]["node"]["id"]
    query = """query($id: ID!) { node(id: $id) { id ... on Repository { fullName defaultBranch
        branches(first: 10) { totalCount edges { node { name commitSha protected } } } } } }"""
    body = await picker.client.execute(query, {"id": node_id})
    assert "errors" not in body, body
    node = body["data"]["node"]
    assert node["fullName"] == "octocat/repo-0001"
    branches = [e["node"] for e in node["branches"]["edges"]]
    assert [b["name"] for b in branches] == ["main", "develop", "feature/f1"]  # the default first
    assert node["branches"]["totalCount"] == 3
    assert branches[0]["protected"] is True
    assert all(len(b["commitSha"]) == 40 for b in branches)

    other = await picker.client.execute(query, {"id": node_id}, user="mallory")
    assert other == {"data": {"node": None}}


async def test_gitlab_branches_of_a_listed_project(picker: Picker) -> None:
    query = """query($id: ID!) { integration(id: $id) { repositories(first: 1) {
        edges { node { name branches { edges { node { name protected } } } } } } } }"""
    body = await picker.client.execute(
        query, {"id": to_global_id("Integration", picker.gitlab_integration.id)}
    )
    assert "errors" not in body, body
    branches = body["data"]["integration"]["repositories"]["edges"][0]["node"]["branches"]["edges"]
    assert branches[0]["node"] == {"name": "main", "protected": True}


async def test_a_gitlab_group_token_lists_the_group_and_its_subgroups(
    picker: Picker, settings: Settings
) -> None:
    group = picker.gitlab.group("acme")
    async with services_for(picker_settings(settings), upstream(None, picker.gitlab)) as services:
        integration = await connect(
            services,
            token=GROUP_TOKEN,
            kind=TokenKind.GITLAB_GROUP,
            endpoint=gitlab_endpoint(),
            login="group_bot",
            account_id="99",
            access=RepositoryAccess.SELECTED,
            resource=TokenResource(kind="group", ids=(str(group.id),), path="acme"),
            manage_access_url="http://gitlab.test/groups/acme/-/settings/access_tokens",
        )
    found = connection(await picker.list(integration, first=100))
    assert found["totalCount"] == 150
    assert found["repositoryAccess"] == "SELECTED"
    assert found["manageAccessUrl"].endswith("/-/settings/access_tokens")
    assert upstream_requests(picker.gitlab, f"/api/v4/groups/{group.id}/projects")


async def test_a_github_app_lists_only_the_repositories_its_installation_selected(settings: Settings) -> None:
    github = FakeGitHub(app_slug="picker-app")
    github.add_user("octocat")
    github.add_repositories("octocat", 40)
    github.add_installation("octocat", "selected", ["octocat/repo-0003", "octocat/repo-0007"])
    github.add_oauth_token("ghu_" + "u" * 36, "octocat", app_user=True)
    settings = picker_settings(settings)
    async with upstream(github) as up, services_for(settings, up) as services:
        integration = await connect(
            services, token="ghu_" + "u" * 36, kind=TokenKind.GITHUB_APP, endpoint=github_endpoint()
        )
        async with (
            running_app(settings, up) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            client = GraphQLTestClient(http, settings)
            body = await client.execute(
                LIST,
                {"id": to_global_id("Integration", integration.id), "first": 10, "refresh": False},
            )
    found = connection(body)
    assert [e["node"]["fullName"] for e in found["edges"]] == ["octocat/repo-0003", "octocat/repo-0007"]
    assert found["repositoryAccess"] == "SELECTED"


async def test_disconnecting_forgets_the_cached_repository_list(picker: Picker) -> None:
    connection(await picker.list(picker.github_integration, first=5))
    settings = picker.client.settings
    database = Database(settings.mongodb_uri.reveal(), settings.mongodb_database)  # type: ignore[union-attr]
    try:
        entries = database.db["repository_cache"]
        assert await entries.count_documents({"integrationId": picker.github_integration.id}) > 0
        body = await picker.client.execute(
            "mutation($id: ID!) { disconnectGitIntegration(input: {id: $id}) { __typename } }",
            {"id": to_global_id("Integration", picker.github_integration.id)},
        )
        assert body["data"]["disconnectGitIntegration"]["__typename"] == "DisconnectedIntegration"
        assert await entries.count_documents({"integrationId": picker.github_integration.id}) == 0
    finally:
        await database.close()


async def test_a_disconnect_while_the_host_is_listing_leaves_no_cached_list_behind(picker: Picker) -> None:
    # The listing is saved after the callers have their answer (the flight's tail): a disconnect that
    # lands while the host is still answering must not be followed by the list being written back.
    picker.github.delay = 0.3
    listing = asyncio.create_task(picker.list(picker.github_integration, first=5))
    for _ in range(200):
        if picker.github.requests:
            break
        await asyncio.sleep(0.01)
    assert picker.github.requests, "the listing never reached the host"
    body = await picker.client.execute(
        "mutation($id: ID!) { disconnectGitIntegration(input: {id: $id}) { __typename } }",
        {"id": to_global_id("Integration", picker.github_integration.id)},
    )
    assert body["data"]["disconnectGitIntegration"]["__typename"] == "DisconnectedIntegration"
    await listing
    await settle(picker.app)
    settings = picker.client.settings
    database = Database(settings.mongodb_uri.reveal(), settings.mongodb_database)  # type: ignore[union-attr]
    try:
        entries = database.db["repository_cache"]
        assert await entries.count_documents({"integrationId": picker.github_integration.id}) == 0
    finally:
        await database.close()
