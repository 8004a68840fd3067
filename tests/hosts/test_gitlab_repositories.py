"""GitLab listing and branches at the HTTP boundary: respx (every request mocked) shaped by recordings."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from app.domain.errors import NeedsReconnectError, RateLimitedError
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
from app.hosts.gitlab.client import GitLabHost
from app.net.client import RetryPolicy, Upstream
from tests.recordings import load, replay

WEB = "https://gitlab.com"
API = f"{WEB}/api/v4"
ENDPOINT = HostEndpoint(GitProvider.GITLAB, "gitlab.com", WEB, API)
TOKEN = "glpat-" + "c" * 20


def integration(
    kind: TokenKind = TokenKind.GITLAB_PERSONAL, resource: TokenResource | None = None
) -> Integration:
    return Integration(
        id="i2",
        owner="alice",
        endpoint=ENDPOINT,
        auth_method=AuthMethod.OAUTH if kind is TokenKind.GITLAB_OAUTH else AuthMethod.ACCESS_TOKEN,
        token_kind=kind,
        account=GitAccount(id="7", login="codecov"),
        repository_access=RepositoryAccess.ALL,
        granted_permissions=["api"],
        status=IntegrationStatus.ACTIVE,
        created_at=datetime.now(UTC),
        resource=resource,
    )


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient() as http:
        yield GitLabHost(Upstream(http, retry=RetryPolicy(attempts=1)), ENDPOINT)


def project_json(number: int) -> dict[str, Any]:
    """A project in the recorded shape (codecov's first project, renamed)."""
    entry: dict[str, Any] = copy.deepcopy(
        load("gitlab", "projects-owned.codecov-2018.json")["response"]["body"][0]
    )
    entry.update(
        id=5000 + number,
        name=f"project-{number:04d}",
        path=f"project-{number:04d}",
        path_with_namespace=f"acme/project-{number:04d}",
        web_url=f"{WEB}/acme/project-{number:04d}",
        http_url_to_repo=f"{WEB}/acme/project-{number:04d}.git",
        last_activity_at=f"2024-02-{1 + number % 28:02d}T10:00:00.000Z",
    )
    entry["namespace"] = {**entry["namespace"], "full_path": "acme"}
    return entry


def pagination_headers(number: int, *, totals: bool = True, last: int = 3) -> dict[str, str]:
    """The documented GitLab pagination headers (pagination-headers.gitlab-docs.json) for page ``number``."""
    recorded = load("gitlab", "pagination-headers.gitlab-docs.json")["response"]["headers"]
    headers = {k: v for k, v in recorded.items() if k.startswith("x-")}
    headers.update(
        {
            "x-page": str(number),
            "x-next-page": str(number + 1) if number < last else "",
            "x-prev-page": str(number - 1) if number > 1 else "",
        }
    )
    links = [f'<{API}/projects?page={number + 1}&per_page=100>; rel="next"'] if number < last else []
    if totals:
        headers["x-total-pages"] = str(last)
        links.append(f'<{API}/projects?page={last}&per_page=100>; rel="last"')
    else:  # above 10,000 records GitLab omits the totals and rel="last"
        headers.pop("x-total", None)
        headers.pop("x-total-pages", None)
    headers["link"] = ", ".join(links)
    return headers


async def test_personal_token_lists_projects_where_the_user_is_maintainer(client: GitLabHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/projects").mock(return_value=replay("gitlab", "projects-owned.codecov-2018.json"))
        listing = await client.list_repositories(TOKEN, integration())

    sent = route.calls.last.request
    assert route.call_count == 1  # X-Total-Pages: 1 in the recording
    assert sent.url.params["membership"] == "true"
    assert sent.url.params["min_access_level"] == "40"
    assert "simple" not in sent.url.params  # visibility and archived are needed
    assert sent.headers["PRIVATE-TOKEN"] == TOKEN and TOKEN not in str(sent.url)
    example = next(r for r in listing.repositories if r.full_name == "codecov/example-python")
    assert example.id == "580838" and example.owner == "codecov" and not example.private
    assert example.clone_url == "https://gitlab.com/codecov/example-python.git"
    assert example.default_branch == "master"
    assert len(listing.repositories) == 3


async def test_oauth_integrations_send_a_bearer_token(client: GitLabHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/projects").mock(return_value=httpx.Response(200, json=[project_json(1)]))
        await client.list_repositories("oauth-token", integration(TokenKind.GITLAB_OAUTH))
    assert route.calls.last.request.headers["Authorization"] == "Bearer oauth-token"


async def test_total_pages_header_sends_the_remaining_pages_at_once(client: GitLabHost) -> None:
    in_flight = most = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        number = int(request.url.params["page"])
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return httpx.Response(
            200,
            json=[project_json(number * 10 + i) for i in range(2)],
            headers=pagination_headers(number, last=4),
        )

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/projects").mock(side_effect=answer)
        listing = await client.list_repositories(TOKEN, integration())
    assert route.call_count == 4
    assert most == 3
    assert len(listing.repositories) == 8


async def test_above_ten_thousand_projects_the_walk_goes_on_by_key_one_page_at_a_time(
    client: GitLabHost,
) -> None:
    # Page 1 without totals (GitLab stops counting above 10,000): the rest by keyset pages, each named
    # by the one before's Link rel="next" (GitLab REST docs, "Keyset-based pagination").
    in_flight = most = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        params = request.url.params
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        if "page" in params:
            return httpx.Response(
                200, json=[project_json(1)], headers=pagination_headers(1, totals=False, last=3)
            )
        assert params["pagination"] == "keyset" and params["order_by"] == "id" and params["sort"] == "asc"
        after = int(params["id_after"])
        number = after - 5000 + 1
        headers = {}
        if number < 3:
            query = "membership=true&order_by=id&sort=asc&pagination=keyset&per_page=100"
            headers["Link"] = f'<{API}/projects?{query}&id_after={5000 + number}>; rel="next"'
        return httpx.Response(200, json=[project_json(number)], headers=headers)

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/projects").mock(side_effect=answer)
        listing = await client.list_repositories(TOKEN, integration())
    assert [c.request.url.params.get("id_after") for c in route.calls] == [None, "5001", "5002"]
    assert most == 1
    assert len(listing.repositories) == 3 and listing.complete


async def test_group_token_lists_the_groups_projects_with_subgroups_and_shared_ones(
    client: GitLabHost,
) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/groups/42/projects").mock(return_value=httpx.Response(200, json=[project_json(1)]))
        listing = await client.list_repositories(
            TOKEN, integration(TokenKind.GITLAB_GROUP, TokenResource(kind="group", ids=("42",), path="acme"))
        )
    params = route.calls.last.request.url.params
    assert params["include_subgroups"] == "true" and params["with_shared"] == "true"
    assert params["min_access_level"] == "40"
    assert [r.name for r in listing.repositories] == ["project-0001"]


async def test_project_token_lists_its_one_project(client: GitLabHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/projects/5001").mock(return_value=httpx.Response(200, json=project_json(1)))
        listing = await client.list_repositories(
            TOKEN, integration(TokenKind.GITLAB_PROJECT, TokenResource(kind="project", ids=("5001",)))
        )
    assert route.call_count == 1
    assert [r.id for r in listing.repositories] == ["5001"]


async def test_search_is_left_to_gitlab(client: GitLabHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/projects").mock(return_value=httpx.Response(200, json=[project_json(7)]))
        await client.list_repositories(TOKEN, integration(), search="proj")
    assert route.calls.last.request.url.params["search"] == "proj"
    # Group paths too: "payments" finds acme/payments/api (provider-facts, "Learned since").
    assert route.calls.last.request.url.params["search_namespaces"] == "true"


async def test_maintainer_rights_come_from_the_listing_filter_or_the_projects_permissions(
    client: GitLabHost,
) -> None:
    recorded = load("gitlab", "projects-owned.codecov-2018.json")["response"]["body"][0]
    assert recorded["permissions"]["project_access"]["access_level"] == 40
    developer = {**recorded, "id": 5002, "permissions": {"project_access": {"access_level": 30}}}
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/projects").mock(return_value=httpx.Response(200, json=[recorded]))
        mock.get("/projects/5001").mock(return_value=httpx.Response(200, json={**recorded, "id": 5001}))
        mock.get("/projects/5002").mock(return_value=httpx.Response(200, json=developer))
        listed = await client.list_repositories(TOKEN, integration())
        maintained = await client.list_repositories(
            TOKEN, integration(TokenKind.GITLAB_PROJECT, TokenResource(kind="project", ids=("5001",)))
        )
        developed = await client.list_repositories(
            TOKEN, integration(TokenKind.GITLAB_PROJECT, TokenResource(kind="project", ids=("5002",)))
        )
    assert [r.viewer_can_administer for r in listed.repositories] == [True]
    assert [r.viewer_can_administer for r in maintained.repositories] == [True]
    assert [r.viewer_can_administer for r in developed.repositories] == [False]


async def test_revalidation_reuses_unchanged_pages_and_takes_changed_ones(client: GitLabHost) -> None:
    def page(number: int, etag: str) -> httpx.Response:
        headers = {**pagination_headers(number, last=2), "etag": etag}
        return httpx.Response(200, json=[project_json(number)], headers=headers)

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/projects", params={"page": "1"}).mock(return_value=page(1, 'W/"a1"'))
        mock.get("/projects", params={"page": "2"}).mock(return_value=page(2, 'W/"a2"'))
        first = await client.list_repositories(TOKEN, integration())

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        one = mock.get("/projects", params={"page": "1"}).mock(
            return_value=httpx.Response(304, headers={"etag": 'W/"a1"'})
        )
        changed = project_json(2) | {"name": "renamed"}
        two = mock.get("/projects", params={"page": "2"}).mock(
            return_value=httpx.Response(
                200, json=[changed], headers={**pagination_headers(2, last=2), "etag": 'W/"b2"'}
            )
        )
        again = await client.list_repositories(TOKEN, integration(), previous=first)
    assert one.calls.last.request.headers["If-None-Match"] == 'W/"a1"'
    assert two.calls.last.request.headers["If-None-Match"] == 'W/"a2"'
    assert [p.fetched for p in again.pages] == [False, True]
    assert sorted(r.name for r in again.repositories) == ["project-0001", "renamed"]


async def test_revoked_token_asks_for_a_reconnect(client: GitLabHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/projects").mock(return_value=replay("gitlab", "error-401.gitlab-docs.json"))
        with pytest.raises(NeedsReconnectError):
            await client.list_repositories(TOKEN, integration())


async def test_throttling_says_how_long_to_wait(client: GitLabHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/projects").mock(
            return_value=httpx.Response(429, headers={"Retry-After": "45"}, text="Retry later")
        )
        with pytest.raises(RateLimitedError) as raised:
            await client.list_repositories(TOKEN, integration())
    assert raised.value.retry_after_seconds == 45


async def test_branches_come_from_the_recorded_branch_list(client: GitLabHost) -> None:
    recorded = load("gitlab", "branches.codecov-2018.json")["response"]["body"]
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/projects/187725/repository/branches").mock(
            return_value=replay("gitlab", "branches.codecov-2018.json")
        )
        listing = await client.list_branches(TOKEN, integration(), "187725")
    assert route.calls.last.request.url.params["per_page"] == "100"
    assert "search" not in route.calls.last.request.url.params
    assert [(b.name, b.commit_sha, b.protected) for b in listing.branches] == [
        (b["name"], b["commit"]["id"], b["protected"]) for b in recorded
    ]


@pytest.mark.parametrize(
    ("search", "sent"),
    [
        ("release", "release"),
        ("^rel", "rel"),
        ("v1$", "v1"),
        ("^main$", "main"),
        ("a^b$c", "a^b$c"),
        ("^", None),
    ],
)
async def test_a_branch_search_never_sends_gitlabs_operators(
    client: GitLabHost, search: str, sent: str | None
) -> None:
    # GitLab reads a leading ^ as "starts with" and a trailing $ as "ends with" (API docs, branches,
    # "search"); the service searches literally, so it sends neither and filters the answer itself.
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/projects/187725/repository/branches").mock(
            return_value=replay("gitlab", "branches.codecov-2018.json")
        )
        await client.list_branches(TOKEN, integration(), "187725", search=search)
    assert route.calls.last.request.url.params.get("search") == sent
