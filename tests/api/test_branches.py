"""``Repository.branches`` end to end: the Relay connection, the picker's order, searches on both hosts.

GraphQL goes through the ASGI app; the fake GitHub and GitLab answer upstream, and their request logs
say what the hosts were asked.
"""

from __future__ import annotations

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

GITHUB_TOKEN = "ghp_" + "b" * 36
GITLAB_TOKEN = "glpat-" + "b" * 20
MAINTAINER = 40
RELEASES = [f"release/{n:04d}" for n in range(1, 151)]
OTHERS = ["develop", "feature/login", "hotfix/release-9", "Release-Candidate", "zzz-old"]

BRANCHES = """query Branches($id: ID!, $search: String, $first: Int, $after: String) {
  node(id: $id) { ... on Repository { defaultBranch
    branches(search: $search, first: $first, after: $after) {
      edges { cursor node { name commitSha protected } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    } } } }"""
WITH_TOTAL = BRANCHES.replace("pageInfo {", "totalCount pageInfo {")
REPOSITORY_IDS = """query Ids($id: ID!, $search: String) { integration(id: $id) {
  repositories(first: 5, search: $search) { edges { node { id fullName } } } } }"""


@dataclass
class Site:
    app: Any
    client: GraphQLTestClient
    github: FakeGitHub
    gitlab: FakeGitLab
    github_integration: Integration
    gitlab_integration: Integration
    clock: MovableClock

    async def repository_id(self, integration: Integration, full_name: str) -> str:
        body = await self.client.execute(
            REPOSITORY_IDS, {"id": to_global_id("Integration", integration.id), "search": full_name}
        )
        assert "errors" not in body, body
        edges = body["data"]["integration"]["repositories"]["edges"]
        return str(next(e["node"]["id"] for e in edges if e["node"]["fullName"] == full_name))

    async def branches(self, repository_id: str, *, total: bool = False, **arguments: Any) -> dict[str, Any]:
        body = await self.client.execute(
            WITH_TOTAL if total else BRANCHES, {"id": repository_id, **arguments}
        )
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["node"]["branches"]
        return result


def github_world() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_user("octocat")
    fake.add_repository("octocat", "big", branches=["main"], protected=["main"])
    fake.add_branches("octocat/big", [*RELEASES, *OTHERS], protected=["release/0001", "develop"])
    fake.add_repository("octocat", "tiny")
    fake.add_classic_token(GITHUB_TOKEN, "octocat", ["repo", "admin:repo_hook"])
    return fake


def gitlab_world() -> FakeGitLab:
    fake = FakeGitLab()
    fake.add_user("alice")
    fake.add_group("acme")
    fake.add_member("alice", "acme", MAINTAINER)
    fake.add_project("acme", "big", branches=["main"], protected=["main"])
    fake.add_branches("acme/big", ["release-v1", "cost$v1$", "v1-notes", "rel$", *RELEASES[:20]])
    fake.add_personal_token(GITLAB_TOKEN, "alice", ["api", "read_repository", "write_repository"])
    return fake


@contextlib.asynccontextmanager
async def site_for(settings: Settings, **overrides: Any) -> AsyncIterator[Site]:
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
            yield Site(
                app,
                GraphQLTestClient(http, settings),
                github,
                gitlab,
                github_integration,
                gitlab_integration,
                clock,
            )


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    async with site_for(settings) as ready:
        yield ready


def names(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["name"] for edge in connection["edges"]]


def paths(fake: FakeGitHub | FakeGitLab) -> list[str]:
    return [r.path for r in fake.requests]


async def test_pages_walk_every_branch_once_the_default_first_from_one_read(site: Site) -> None:
    repository = await site.repository_id(site.github_integration, "octocat/big")
    site.github.clear_requests()
    seen: list[str] = []
    after = None
    while True:
        page = await site.branches(repository, first=40, after=after, total=True)
        assert page["totalCount"] == 1 + len(RELEASES) + len(OTHERS)
        seen += names(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["main", *sorted([*RELEASES, *OTHERS])]
    # The whole list once, in one round: every head from matching-refs, protection from ?protected=true.
    assert sorted(paths(site.github)) == [
        "/repos/octocat/big/branches",
        "/repos/octocat/big/git/matching-refs/heads",
    ]
    first = await site.branches(repository, first=3)
    assert names(first) == ["main", "Release-Candidate", "develop"]  # by code point: upper case first
    assert [e["node"]["protected"] for e in first["edges"]] == [True, False, True]


async def test_protection_is_correct_for_every_branch(site: Site) -> None:
    repository = await site.repository_id(site.github_integration, "octocat/big")
    page = await site.branches(repository, first=100, search="e")
    protected = {e["node"]["name"] for e in page["edges"] if e["node"]["protected"]}
    assert protected == {"release/0001", "develop"}


async def test_a_prefix_search_is_answered_from_matching_refs_in_one_round(site: Site) -> None:
    repository = await site.repository_id(site.github_integration, "octocat/big")
    site.github.clear_requests()
    # The whole list is read at the same time; here it fails, which shows the page needs only the
    # branches starting with the text (and it leaves the race between the two reads out of the test).
    site.github.fail_next(404, path_prefix="/repos/octocat/big/git/matching-refs/heads", exact=True)
    page = await site.branches(repository, search="release/", first=10)
    assert names(page) == RELEASES[:10]
    assert page["pageInfo"]["hasNextPage"] is True
    answered = paths(site.github)
    assert "/repos/octocat/big/git/matching-refs/heads/release" in answered  # (the log drops the last "/")
    assert "/repos/octocat/big/branches" in answered  # ?protected=true, in the same round
    # The next page comes from the whole list, read once and then kept for every later search.
    await settle(site.app)
    following = await site.branches(
        repository, search="release/", first=10, after=page["pageInfo"]["endCursor"]
    )
    assert names(following) == RELEASES[10:20]
    site.github.clear_requests()
    again = await site.branches(repository, search="release/0", first=10)
    assert names(again) == RELEASES[:10]
    assert site.github.requests == []


async def test_a_substring_search_finds_names_that_contain_it_names_starting_with_it_first(
    site: Site,
) -> None:
    repository = await site.repository_id(site.github_integration, "octocat/big")
    page = await site.branches(repository, search="release", first=5, total=True)
    assert names(page) == RELEASES[:5]
    assert page["totalCount"] == len(RELEASES) + 1  # hotfix/release-9 contains it; Release-… does not
    rest = await site.branches(repository, search="release", first=100, after=page["pageInfo"]["endCursor"])
    last = await site.branches(repository, search="release", first=100, after=rest["pageInfo"]["endCursor"])
    assert names(page) + names(rest) + names(last) == [*RELEASES, "hotfix/release-9"]  # prefixes first
    assert last["pageInfo"]["hasNextPage"] is False  # and Release-Candidate not at all: case-sensitive


async def test_a_search_the_default_branch_matches_puts_it_first(site: Site) -> None:
    repository = await site.repository_id(site.github_integration, "octocat/big")
    page = await site.branches(repository, search="ai", first=5)
    assert names(page) == ["main"]
    page = await site.branches(repository, search="", first=2)  # empty: every branch
    assert names(page) == ["main", "Release-Candidate"]


async def test_a_cursor_of_a_deleted_branch_continues_where_it_was(site: Site) -> None:
    repository = await site.repository_id(site.github_integration, "octocat/big")
    page = await site.branches(repository, search="release/", first=3, total=True)
    assert names(page) == RELEASES[:3]
    await settle(site.app)
    del site.github.repository("octocat/big").branches["release/0003"]
    await site.app.services.listings.delete_for_integration(site.github_integration.id)  # read afresh
    following = await site.branches(
        repository, search="release/", first=2, after=page["pageInfo"]["endCursor"]
    )
    assert names(following) == RELEASES[3:5]


async def test_within_the_freshness_window_branches_cost_nothing_and_afterwards_304s(
    settings: Settings,
) -> None:
    async with site_for(settings, repository_cache_seconds=0) as site:
        repository = await site.repository_id(site.github_integration, "octocat/big")
        await site.branches(repository, first=5)
        await settle(site.app)
        site.github.clear_requests()
        site.clock.advance(3)
        await site.branches(repository, first=5)
        assert {r.status for r in site.github.requests} == {304}
    async with site_for(settings) as site:
        repository = await site.repository_id(site.github_integration, "octocat/big")
        await site.branches(repository, first=5)
        site.github.clear_requests()
        again = await site.branches(repository, search="feature", first=5)
        assert names(again) == ["feature/login"]
        assert site.github.requests == []


async def test_gitlab_searches_on_its_side_without_its_operators(site: Site) -> None:
    repository = await site.repository_id(site.gitlab_integration, "acme/big")
    site.gitlab.clear_requests()
    ends = await site.branches(repository, search="v1$", first=10, total=True)
    # Sent raw, GitLab would answer the names *ending* with "v1" (release-v1): the text is literal.
    assert names(ends) == ["cost$v1$"] and ends["totalCount"] == 1
    starts = await site.branches(repository, search="^rel", first=10, total=True)
    assert names(starts) == [] and starts["totalCount"] == 0  # Git forbids "^" in names
    dollar = await site.branches(repository, search="rel$", first=10)
    assert names(dollar) == ["rel$"]
    searched = [r for r in site.gitlab.requests if r.path.endswith("/repository/branches")]
    sent = [parse_qs(r.query)["search"][0] for r in searched]
    assert sent[:2] == ["v1", "rel"]
    # Without totalCount, the names starting with the text may be asked beside ("^" on purpose, "$"
    # literal) unless the list of matches answered first.
    assert "rel" in sent[2:] and set(sent[2:]) <= {"^rel$", "rel"}


async def test_a_gitlab_prefix_search_is_answered_from_its_caret_search_in_one_round(site: Site) -> None:
    repository = await site.repository_id(site.gitlab_integration, "acme/big")
    site.gitlab.clear_requests()
    # The list of every match is read at the same time; here it fails (retries included), which shows
    # the page needs only GitLab's first page of names starting with the text ("^release/", by name).
    site.gitlab.fail_next(500, count=5, path_prefix="/api/v4/projects", query_contains="search=release")
    page = await site.branches(repository, search="release/", first=10)
    assert names(page) == RELEASES[:10] and page["pageInfo"]["hasNextPage"] is True
    await settle(site.app)  # the list of matches, read in the background, has failed by now
    asked = [r for r in site.gitlab.requests if r.path.endswith("/repository/branches")]
    prefix = [r for r in asked if parse_qs(r.query)["search"] == ["^release/"]]
    assert [(parse_qs(r.query)["per_page"], r.status) for r in prefix] == [(["100"], 200)]  # page 1 only
    assert {(parse_qs(r.query)["search"][0], r.status) for r in asked if r not in prefix} == {("release/", 500)}
    site.gitlab.clear_faults()
    # The next page comes from the list of this search's matches, read again and then kept.
    following = await site.branches(repository, search="release/", first=10, after=page["pageInfo"]["endCursor"])
    assert names(following) == RELEASES[10:20] and following["pageInfo"]["hasNextPage"] is False
    site.gitlab.clear_requests()
    again = await site.branches(repository, search="release/", first=10)
    assert names(again) == RELEASES[:10] and site.gitlab.requests == []


async def test_a_gitlab_prefix_answer_is_not_used_where_it_cannot_decide_the_page(site: Site) -> None:
    repository = await site.repository_id(site.gitlab_integration, "acme/big")
    # GitLab compares case-insensitively ("^RELEASE/" finds release/…): the exact search finds nothing
    # there, so the page waits for the list of matches, which holds none either.
    page = await site.branches(repository, search="RELEASE/", first=10)
    assert names(page) == [] and page["pageInfo"]["hasNextPage"] is False
    # Fewer names start with the text than the page shows: others may contain it, so the list decides.
    page = await site.branches(repository, search="v1", first=10)
    assert names(page) == ["v1-notes", "cost$v1$", "release-v1"]


async def test_gitlab_branches_of_the_whole_list_the_default_first(site: Site) -> None:
    repository = await site.repository_id(site.gitlab_integration, "acme/big")
    page = await site.branches(repository, first=3, total=True)
    assert names(page) == ["main", "cost$v1$", "rel$"]
    assert page["totalCount"] == 25
    assert page["edges"][0]["node"]["protected"] is True


@pytest.mark.parametrize(
    "arguments",
    [{"first": 0}, {"first": 101}, {"after": "bm90LW91cnM"}, {"after": "!!"}, {"search": "x" * 256}],
)
async def test_bad_arguments_are_bad_user_input_before_any_host_is_asked(
    site: Site, arguments: dict[str, Any]
) -> None:
    repository = await site.repository_id(site.github_integration, "octocat/big")
    site.github.clear_requests()
    body = await site.client.execute(BRANCHES, {"id": repository, **arguments})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert site.github.requests == []


async def test_an_empty_repository_has_an_empty_connection(site: Site) -> None:
    site.github.repository("octocat/tiny").branches.clear()
    repository = await site.repository_id(site.github_integration, "octocat/tiny")
    page = await site.branches(repository, first=5, total=True)
    assert page["edges"] == [] and page["totalCount"] == 0
    assert page["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }
