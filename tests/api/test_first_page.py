"""A first page before the whole list: from the host's own newest-first order in one round, cursors that
carry on in the whole list, totals only where the host gives them; large lists revalidated less often;
GitLab searches answered from a fresh whole list."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from app.composition import Seams
from app.domain.models import Integration, TokenKind
from app.graphql.types.node import to_global_id
from app.net.client import PagePolicy
from app.settings.model import Settings
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

GITHUB_TOKEN = "ghp_" + "h" * 36
GITLAB_TOKEN = "glpat-" + "h" * 20
PAGE = """query Page($id: ID!, $first: Int!, $after: String, $search: String) { integration(id: $id) {
  repositories(first: $first, after: $after, search: $search) {
    edges { cursor node { fullName } } pageInfo { hasNextPage endCursor } } } }"""
WITH_TOTAL = PAGE.replace("edges {", "totalCount edges {")


@dataclass
class Picker:
    app: Any
    client: GraphQLTestClient
    github: FakeGitHub
    gitlab: FakeGitLab
    github_integration: Integration
    gitlab_integration: Integration
    clock: MovableClock

    async def page(self, integration: Integration, *, total: bool = False, **variables: Any) -> dict[str, Any]:
        arguments = {"id": to_global_id("Integration", integration.id), "first": 30, **variables}
        body = await self.client.execute(WITH_TOTAL if total else PAGE, arguments)
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["integration"]["repositories"]
        return result


def github_world(repositories: int) -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_user("octocat")
    fake.add_repositories("octocat", repositories, branches_per_repo=1)
    fake.add_classic_token(GITHUB_TOKEN, "octocat", ["repo", "admin:repo_hook"])
    return fake


def gitlab_world(projects: int) -> FakeGitLab:
    fake = FakeGitLab()
    fake.add_user("alice")
    fake.add_group("acme")
    fake.add_member("alice", "acme", 40)
    fake.add_projects("acme", projects, branches_per_project=1)
    fake.add_personal_token(GITLAB_TOKEN, "alice", ["api", "read_repository", "write_repository"])
    return fake


@contextlib.asynccontextmanager
async def picker_for(
    settings: Settings, repositories: int = 1000, pages: PagePolicy | None = None, **overrides: Any
) -> AsyncIterator[Picker]:
    github, gitlab, clock = github_world(repositories), gitlab_world(250), MovableClock()
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
            running_app(settings, seams=Seams(http=up, clock=clock, pages=pages or PagePolicy())) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            yield Picker(
                app, GraphQLTestClient(http, settings), github, gitlab, github_integration, gitlab_integration, clock
            )


@pytest.fixture
async def picker(settings: Settings) -> AsyncIterator[Picker]:
    async with picker_for(settings) as ready:
        yield ready


def names(page: dict[str, Any]) -> list[str]:
    return [e["node"]["fullName"] for e in page["edges"]]


def pushed_order(fake: FakeGitHub) -> list[str]:
    """The service's order: newest push first, ties by name."""
    return [r.full_name for r in sorted(fake.repositories.values(), key=lambda r: (-r.pushed_at, r.full_name))]


def asked(fake: FakeGitHub | FakeGitLab) -> list[dict[str, list[str]]]:
    return [parse_qs(r.query) for r in fake.requests]


def fail_the_whole_walk(fake: FakeGitHub) -> None:
    # The whole list's walk (full_name order) fails: what is answered can only come from the first page.
    fake.fail_next(404, count=50, path_prefix="/user/repos", query_contains="sort=full_name")


async def test_a_first_page_with_its_total_comes_from_the_push_order_in_one_round(picker: Picker) -> None:
    fail_the_whole_walk(picker.github)
    first = await picker.page(picker.github_integration, total=True)
    assert names(first) == pushed_order(picker.github)[:30]
    assert first["totalCount"] == 1000 and first["pageInfo"]["hasNextPage"] is True
    pushed = [q for q in asked(picker.github) if q.get("sort") == ["pushed"]]
    # One round: the page (with room for ties) and, beside it, per_page=1 whose rel="last" is the count.
    assert sorted(q["per_page"][0] for q in pushed) == ["1", "40"]
    assert all(q["direction"] == ["desc"] for q in pushed)
    await settle(picker.app)
    picker.github.clear_faults()
    # The next page comes from the whole list and carries on exactly after the cursor.
    following = await picker.page(picker.github_integration, after=first["pageInfo"]["endCursor"])
    assert names(following) == pushed_order(picker.github)[30:60]


async def test_without_a_total_the_count_is_not_asked(picker: Picker) -> None:
    fail_the_whole_walk(picker.github)
    page = await picker.page(picker.github_integration, first=5)
    assert names(page) == pushed_order(picker.github)[:5]
    assert [q["per_page"] for q in asked(picker.github) if q.get("sort") == ["pushed"]] == [["15"]]


async def test_ties_at_the_end_of_the_hosts_page_are_left_to_the_whole_list(picker: Picker) -> None:
    # repo-0100 and repo-0101 were pushed at the same second; the fake orders ties by id descending,
    # so the host's page of 100 ends with repo-0101 and repo-0100 opens its page 2. Answering
    # repo-0101 as the 100th would skip repo-0100 for good (the service puts it first: ties by name).
    fake = picker.github
    fake.repository("octocat/repo-0101").pushed_at = fake.repository("octocat/repo-0100").pushed_at
    fail_the_whole_walk(fake)
    first = await picker.page(picker.github_integration, first=100)
    assert names(first) == [f"octocat/repo-{n:04d}" for n in range(1, 100)]  # 99: the tie is not decided
    assert first["pageInfo"]["hasNextPage"] is True
    await settle(picker.app)
    fake.clear_faults()
    following = await picker.page(picker.github_integration, first=3, after=first["pageInfo"]["endCursor"])
    assert names(following) == ["octocat/repo-0100", "octocat/repo-0101", "octocat/repo-0102"]


async def test_gitlab_gives_its_total_up_to_ten_thousand_and_beyond_the_answer_waits(picker: Picker) -> None:
    # The whole walk (id order) fails: the answer comes from the first page and its x-total.
    picker.gitlab.fail_next(422, count=10, path_prefix="/api/v4/projects", query_contains="order_by=id")
    first = await picker.page(picker.gitlab_integration, total=True, first=10)
    assert first["totalCount"] == 250
    by_activity = [q for q in asked(picker.gitlab) if q.get("order_by") == ["last_activity_at"]]
    assert by_activity and by_activity[0]["sort"] == ["desc"]
    await settle(picker.app)
    picker.gitlab.clear_faults()
    await picker.app.services.listings.delete_for_integration(picker.gitlab_integration.id)
    picker.gitlab.count_limit = 100  # as above 10,000: no x-total on the host's page
    uncounted = await picker.page(picker.gitlab_integration, total=True, first=10)
    assert uncounted["totalCount"] == 250  # from the whole list, walked by key
    assert names(uncounted) == names(first)


async def test_a_github_app_installation_has_no_push_order_so_its_whole_list_answers(settings: Settings) -> None:
    github = FakeGitHub(app_slug="picker-app")
    github.add_user("octocat")
    github.add_repositories("octocat", 30)
    github.add_installation("octocat", "all")
    github.add_oauth_token("ghu_" + "i" * 36, "octocat", app_user=True)
    settings = picker_settings(settings)
    async with upstream(github) as up, services_for(settings, up) as services:
        integration = await connect(
            services, token="ghu_" + "i" * 36, kind=TokenKind.GITHUB_APP, endpoint=github_endpoint()
        )
        async with (
            running_app(settings, up) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            body = await GraphQLTestClient(http, settings).execute(
                WITH_TOTAL, {"id": to_global_id("Integration", integration.id), "first": 5}
            )
    assert body["data"]["integration"]["repositories"]["totalCount"] == 30
    assert not any("sort=pushed" in r.query for r in github.requests)


async def test_longer_lists_stay_fresh_longer(settings: Settings) -> None:
    # 1,000 repositories are 10 pages: fresh for 12 s (1.2 s a page) though REPOSITORY_CACHE_SECONDS is 0.
    async with picker_for(settings, repository_cache_seconds=0) as picker:
        await picker.page(picker.github_integration, total=True)
        await settle(picker.app)
        picker.github.clear_requests()
        picker.clock.advance(11)
        await picker.page(picker.github_integration, total=True)
        assert picker.github.requests == []
        picker.clock.advance(2)
        await picker.page(picker.github_integration, total=True)
        # Ten pages revalidate in one round: no first page from the host, ten 304s.
        assert [r.status for r in picker.github.requests] == [304] * 10


async def test_a_long_stale_list_answers_its_first_page_from_the_host_while_it_is_revalidated(
    settings: Settings,
) -> None:
    # 12 pages: more than a window of 10 revalidates in one round.
    pages = PagePolicy(first_window=10)
    async with picker_for(settings, repositories=1200, pages=pages, repository_cache_seconds=0) as picker:
        await picker.page(picker.github_integration)
        await settle(picker.app)
        picker.clock.advance(20)  # past 12 pages x 1.2 s
        picker.github.clear_requests()
        # The revalidation is held at the host until the first page is answered: 12 quick 304s would
        # otherwise sometimes land first (under load), and the page would rightly come from them.
        revalidation = picker.github.hold(path_prefix="/user/repos", query_contains="sort=full_name")
        try:
            # Bounded: a service that waited for the held revalidation would never answer.
            page = await asyncio.wait_for(picker.page(picker.github_integration), timeout=30)
        finally:
            revalidation.set()
        assert names(page) == pushed_order(picker.github)[:30]
        await settle(picker.app)
        pushed = [q for q in asked(picker.github) if q.get("sort") == ["pushed"]]
        walked = [r for r in picker.github.requests if "sort=full_name" in r.query]
        assert len(pushed) == 1 and [r.status for r in walked] == [304] * 12


async def test_a_gitlab_search_over_a_fresh_whole_list_asks_gitlab_nothing(picker: Picker) -> None:
    await picker.page(picker.gitlab_integration, total=True)
    await settle(picker.app)
    picker.gitlab.clear_requests()
    found = await picker.page(picker.gitlab_integration, search="ACME/project-002", total=True)
    assert found["totalCount"] == 10 and picker.gitlab.requests == []
    picker.clock.advance(120)
    await picker.page(picker.gitlab_integration, search="project-002", total=True)
    assert [q.get("search") for q in asked(picker.gitlab)] == [["project-002"]]


async def test_a_first_page_the_host_refuses_is_answered_from_the_whole_list(picker: Picker) -> None:
    picker.github.fail_next(422, count=5, path_prefix="/user/repos", query_contains="sort=full_name")
    page = await picker.page(picker.github_integration, total=True)
    assert names(page) == pushed_order(picker.github)[:30] and page["totalCount"] == 1000
