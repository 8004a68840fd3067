"""GitLab lists past its offset limits, against the fake GitLab (in process): keyset pages where
GitLab stops counting (10,000 records) or stops numbering pages (50,000 on gitlab.com), revalidated
page by page, and the chain of keys repaired when projects come and go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from app.domain.errors import RateLimitedError
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
from app.hosts.base import Listing
from app.hosts.gitlab.client import GitLabHost
from app.net.client import RetryPolicy, Upstream
from tests.fakes.gitlab import FakeGitLab

WEB = "http://gitlab.test"
ENDPOINT = HostEndpoint(GitProvider.GITLAB, "gitlab.test", WEB, f"{WEB}/api/v4")
TOKEN = "glpat-" + "k" * 20


def integration() -> Integration:
    return Integration(
        id="big",
        owner="alice",
        endpoint=ENDPOINT,
        auth_method=AuthMethod.ACCESS_TOKEN,
        token_kind=TokenKind.GITLAB_PERSONAL,
        account=GitAccount(id="1", login="alice"),
        repository_access=RepositoryAccess.ALL,
        granted_permissions=["api"],
        status=IntegrationStatus.ACTIVE,
        created_at=datetime.now(UTC),
    )


def world(projects: int) -> FakeGitLab:
    fake = FakeGitLab()
    fake.fast_lists = fake.compact_projects = True
    fake.add_user("alice")
    fake.add_group("acme")
    fake.add_member("alice", "acme", 40)
    fake.add_projects("acme", projects, branches_per_project=1)
    fake.add_personal_token(TOKEN, "alice", ["api", "read_repository", "write_repository"])
    return fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def host_for(fake: FakeGitLab) -> tuple[GitLabHost, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url=WEB)
    return GitLabHost(Upstream(client, retry=RetryPolicy(attempts=1)), ENDPOINT), client


def queries(fake: FakeGitLab) -> list[dict[str, list[str]]]:
    return [parse_qs(r.query) for r in fake.requests if r.path == "/api/v4/projects"]


async def test_sixty_thousand_projects_are_listed_by_keyset_pages_past_the_offset_limit() -> None:
    fake = world(60_000)
    host, client = host_for(fake)
    async with client:
        listing = await host.list_repositories(TOKEN, integration())
    assert len(listing.repositories) == 60_000 and listing.complete and listing.notices == ()
    asked = queries(fake)
    # Page 1 by number (GitLab counts no further than 10,000: no total, no rel="last"), then 599 pages
    # by key, each after the last id of the one before; never an offset past 50,000 (that is a 400).
    assert len(asked) == 600
    assert {r.status for r in fake.requests} == {200}
    assert "pagination" not in asked[0] and asked[0]["page"] == ["1"]
    assert all(q["pagination"] == ["keyset"] and q["order_by"] == ["id"] for q in asked[1:])
    ids = sorted(int(r.id) for r in listing.repositories)
    assert [q["id_after"][0] for q in asked[1:4]] == [str(ids[99]), str(ids[199]), str(ids[299])]


async def test_offset_pages_the_host_refuses_are_continued_by_key() -> None:
    # A self-managed instance whose offset limit (here 250 records) is below its count limit: GitLab
    # announces 5 pages, refuses pages 3 to 5 with 400, and the walk goes on by key after page 2.
    fake = world(480)
    fake.max_offset = 250
    host, client = host_for(fake)
    async with client:
        listing = await host.list_repositories(TOKEN, integration())
    assert len(listing.repositories) == 480 and listing.complete
    refused = [r for r in fake.requests if r.status == 400]
    assert sorted(parse_qs(r.query)["page"][0] for r in refused) == ["3", "4", "5"]
    keyed = [q for q in queries(fake) if q.get("pagination") == ["keyset"]]
    assert len(keyed) == 3


async def test_a_group_list_past_the_offset_limit_says_it_is_incomplete() -> None:
    # Group projects have no keyset pages: the walk stops where GitLab stops numbering them.
    fake = world(480)
    fake.max_offset = 250
    fake.count_limit = 100
    group = fake.group("acme")
    fake.add_group_token(TOKEN + "g", group, ["api"], 40)
    host, client = host_for(fake)
    group_integration = integration()
    group_integration.token_kind = TokenKind.GITLAB_GROUP
    from app.domain.models import TokenResource

    group_integration.resource = TokenResource(kind="group", ids=(str(group.id),))
    async with client:
        listing = await host.list_repositories(TOKEN + "g", group_integration)
    assert len(listing.repositories) == 200 and not listing.complete
    assert [n.reason.value for n in listing.notices] == ["LIST_INCOMPLETE"]


async def test_a_keyset_list_is_revalidated_with_304s_and_its_chain_repaired() -> None:
    fake = world(250)
    fake.count_limit = 100  # as above 10,000 on gitlab.com: no totals, so pages by key
    host, client = host_for(fake)
    async with client:
        first = await host.list_repositories(TOKEN, integration())
        assert len(first.repositories) == 250 and first.pages[0].cursor is None
        fake.clear_requests()
        unchanged = await host.list_repositories(TOKEN, integration(), previous=first)
        assert {r.status for r in fake.requests} == {304}
        assert len(fake.requests) == 3  # every stored page asked again at once, no more
        assert unchanged.repositories == first.repositories

        # A project of page 1 goes and a new one comes: page 1 now ends one id later, so the stored
        # keys of pages 2 and 3 no longer follow it. The walk goes on by key from the new end.
        gone = fake.project(first.pages[0].repositories[0].id)
        del fake.projects[gone.id]
        fake.forget_lists()
        fake.add_project("acme", "newcomer")
        fake.clear_requests()
        repaired = await host.list_repositories(TOKEN, integration(), previous=unchanged)
    expected = sorted(str(p.id) for p in fake.projects.values())
    assert sorted(r.id for r in repaired.repositories) == expected
    assert len({r.id for r in repaired.repositories}) == len(repaired.repositories) == 250
    assert repaired.complete


async def test_a_keyed_page_that_names_itself_next_ends_the_walk() -> None:
    # A hostile or broken host: Link rel="next" naming the same id_after again must not loop.
    fake = world(150)
    fake.count_limit = 100
    host, _ = host_for(fake)

    async def looping(request: httpx.Request) -> httpx.Response:
        response = await httpx.ASGITransport(app=fake.app).handle_async_request(request)
        await response.aread()
        if request.url.params.get("pagination") == "keyset":
            same = str(request.url)
            return httpx.Response(200, headers={"Link": f'<{same}>; rel="next"'}, content=response.content)
        return response

    async with httpx.AsyncClient(transport=httpx.MockTransport(looping), base_url=WEB) as client:
        host = GitLabHost(Upstream(client, retry=RetryPolicy(attempts=1)), ENDPOINT)
        listing: Listing = await host.list_repositories(TOKEN, integration())
    assert len(listing.repositories) == 150
    assert len(queries(fake)) == 2


async def test_gitlab_coms_limit_on_listing_projects_ends_a_walk_with_how_long_to_wait() -> None:
    # gitlab.com allows 2,000 GET /projects per user in 10 minutes (the fake's rule, sourced there);
    # here 40, so the second walk of a 30-page list runs into it.
    fake = world(3000)
    fake.projects_list_limit = (40, 600.0)
    host, client = host_for(fake)
    async with client:
        first = await host.list_repositories(TOKEN, integration())
        assert len(first.repositories) == 3000 and len(fake.requests) == 30
        with pytest.raises(RateLimitedError) as raised:
            await host.list_repositories(TOKEN, integration())
        # Retry-After: until the first walk's requests leave the 10-minute window.
        assert raised.value.retry_after_seconds is not None and 590 <= raised.value.retry_after_seconds <= 601
        statuses = [r.status for r in fake.requests[30:]]
        assert statuses.count(200) == 10 and 0 < statuses.count(429) < 20  # nothing sent after the pause
        fake.advance_time(601)
        again = await host.list_repositories(TOKEN, integration())
    assert len(again.repositories) == 3000


async def test_keyset_pages_of_projects_exist_only_in_id_order() -> None:
    # Why the walk by key is ordered by id (and the picker sorts by push time itself): GitLab refuses
    # keyset pages of projects in any other order, as the fake does after GitLab's docs.
    fake = world(150)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url=WEB) as client:
        headers = {"PRIVATE-TOKEN": TOKEN}
        base = {"pagination": "keyset", "per_page": "100", "membership": "true"}
        refused = await client.get("/api/v4/projects", params={**base, "order_by": "last_activity_at"}, headers=headers)
        keyed = await client.get("/api/v4/projects", params={**base, "order_by": "id", "sort": "asc"}, headers=headers)
    assert refused.status_code == 405 and "Keyset pagination" in refused.json()["error"]
    assert keyed.status_code == 200 and len(keyed.json()) == 100 and "id_after=" in keyed.headers["link"]
