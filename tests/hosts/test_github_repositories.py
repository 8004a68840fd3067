"""GitHub listing and branches at the HTTP boundary: respx (every request mocked) shaped by recordings."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from app.domain.errors import NeedsReconnectError, NotFoundError, RateLimitedError
from app.domain.models import (
    AccessNoticeReason,
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
from app.hosts.github.client import GitHubHost
from app.hosts.github.repositories import parse_repository, sso_hidden_organizations
from app.net.client import RetryPolicy, Upstream
from app.net.transports import AnswerTooLarge
from tests.recordings import load, replay

API = "https://api.github.com"
ENDPOINT = HostEndpoint(GitProvider.GITHUB, "github.com", "https://github.com", API)
TOKEN = "ghp_" + "a" * 36


def integration(
    kind: TokenKind = TokenKind.GITHUB_CLASSIC, resource: TokenResource | None = None
) -> Integration:
    return Integration(
        id="i1",
        owner="alice",
        endpoint=ENDPOINT,
        auth_method=AuthMethod.ACCESS_TOKEN,
        token_kind=kind,
        account=GitAccount(id="1", login="codecov"),
        repository_access=RepositoryAccess.ALL,
        granted_permissions=["repo"],
        status=IntegrationStatus.ACTIVE,
        created_at=datetime.now(UTC),
        resource=resource,
    )


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient() as http:
        yield GitHubHost(Upstream(http, retry=RetryPolicy(attempts=1)), ENDPOINT)


def repo_json(number: int, owner: str = "octocat") -> dict[str, Any]:
    """A ``/user/repos`` entry in the recorded shape (the first recorded repository, renamed)."""
    entry: dict[str, Any] = copy.deepcopy(
        load("github", "user-repos.page1.codecov-2020.json")["response"]["body"][0]
    )
    entry.update(
        id=1000 + number,
        name=f"repo-{number:04d}",
        full_name=f"{owner}/repo-{number:04d}",
        html_url=f"https://github.com/{owner}/repo-{number:04d}",
        clone_url=f"https://github.com/{owner}/repo-{number:04d}.git",
        pushed_at=f"2024-01-{1 + number % 28:02d}T00:00:{number % 60:02d}Z",
    )
    entry["owner"] = {**entry["owner"], "login": owner}
    return entry


async def test_classic_token_lists_every_page_that_the_recorded_link_header_announces(
    client: GitHubHost,
) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        page1 = mock.get("/user/repos", params={"page": "1"}).mock(
            return_value=replay("github", "user-repos.page1.codecov-2020.json")
        )
        page2 = mock.get("/user/repos", params={"page": "2"}).mock(
            return_value=replay("github", "user-repos.page2.codecov-2020.json")
        )
        listing = await client.list_repositories(TOKEN, integration())

    assert page1.call_count == 1 and page2.call_count == 1
    sent = page1.calls.last.request
    assert sent.url.params["affiliation"] == "owner,collaborator,organization_member"
    assert sent.url.params["per_page"] == "100"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(sent.url)
    repositories = listing.repositories
    assert len(repositories) == 115
    admin = next(r for r in repositories if r.full_name == "codecov/admin")
    assert admin.id == "codecov/admin" and admin.owner == "codecov" and admin.private
    assert admin.clone_url.endswith("codecov/admin.git")
    # Most recently pushed first.
    pushed = [r.pushed_at for r in repositories if r.pushed_at]
    assert pushed == sorted(pushed, reverse=True)
    # Each page keeps the ETag GitHub sent with it, for revalidation.
    assert [p.etag for p in listing.pages] == [
        load("github", f"user-repos.page{n}.codecov-2020.json")["response"]["headers"]["ETag"] for n in (1, 2)
    ]


async def test_pages_after_the_first_are_fetched_concurrently_once_rel_last_is_known(
    client: GitHubHost,
) -> None:
    in_flight = 0
    most = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        number = int(request.url.params["page"])
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        # Recorded Link headers of a 5-page walk (octokit/fixtures), with repository bodies.
        return replay(
            "github",
            f"pagination-issues.page{number}-of-5.octokit-fixtures-2022.json",
            body=[repo_json(number * 10 + i) for i in range(3)],
        )

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/user/repos").mock(side_effect=answer)
        listing = await client.list_repositories(TOKEN, integration())

    assert route.call_count == 5
    assert most == 4  # pages 2..5 at once, after page 1
    assert len(listing.repositories) == 15


async def test_a_link_pointing_outside_the_api_base_is_never_followed(client: GitHubHost) -> None:
    evil = '<https://collector.example/user/repos?page=2>; rel="next", <https://collector.example/user/repos?page=9>; rel="last"'
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/user/repos").mock(
            return_value=httpx.Response(200, json=[repo_json(1)], headers={"Link": evil})
        )
        listing = await client.list_repositories(TOKEN, integration())
    # Anything sent to collector.example would have failed the test (assert_all_mocked).
    assert route.call_count == 1
    assert [r.name for r in listing.repositories] == ["repo-0001"]
    # The host said there is more: the list is partial, and says so (never a silently partial answer).
    assert not listing.complete
    assert [n.reason for n in listing.notices] == [AccessNoticeReason.LIST_INCOMPLETE]


async def test_fine_grained_token_lists_what_the_token_reaches_without_an_affiliation_filter(
    client: GitHubHost,
) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/user/repos").mock(
            return_value=httpx.Response(200, json=[repo_json(1), repo_json(2)])
        )
        listing = await client.list_repositories(TOKEN, integration(TokenKind.GITHUB_FINE_GRAINED))
    assert "affiliation" not in route.calls.last.request.url.params
    assert len(listing.repositories) == 2


async def test_github_app_lists_the_repositories_of_each_installation_and_says_when_access_is_selected(
    client: GitHubHost,
) -> None:
    installations = replay("github", "user-installations.openapi-example.json", headers={"Link": ""})
    repositories = replay(
        "github",
        "user-installation-repositories.openapi-example.json",
        headers={"Link": ""},
        body={
            **load("github", "user-installation-repositories.openapi-example.json")["response"]["body"],
            "repository_selection": "selected",
        },
    )
    listed = load("github", "user-installations.openapi-example.json")["response"]["body"]["installations"]
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        discovery = mock.get("/user/installations").mock(return_value=installations)
        per_installation = [
            mock.get(f"/user/installations/{i['id']}/repositories").mock(return_value=repositories)
            for i in listed
        ]
        listing = await client.list_repositories(
            "ghu_" + "b" * 36,
            integration(
                TokenKind.GITHUB_APP, TokenResource(kind="installations", ids=(str(listed[0]["id"]),))
            ),
        )
    assert discovery.call_count == 1
    assert [r.call_count for r in per_installation] == [1] * len(listed)
    assert [r.full_name for r in listing.repositories] == ["octocat/Hello-World"]
    assert listing.repository_access is RepositoryAccess.SELECTED


async def test_an_installation_removed_since_the_connection_is_skipped(client: GitHubHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/user/installations").mock(
            return_value=httpx.Response(200, json={"total_count": 0, "installations": []})
        )
        gone = mock.get("/user/installations/77/repositories").mock(
            return_value=httpx.Response(404, json={"message": "Not Found"})
        )
        listing = await client.list_repositories(
            "ghu_x", integration(TokenKind.GITHUB_APP, TokenResource(kind="installations", ids=("77",)))
        )
    assert gone.call_count == 1
    assert listing.repositories == []


async def test_revalidation_sends_each_pages_etag_and_reuses_the_page_on_304(client: GitHubHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/user/repos", params={"page": "1"}).mock(
            return_value=replay("github", "user-repos.page1.codecov-2020.json")
        )
        mock.get("/user/repos", params={"page": "2"}).mock(
            return_value=replay("github", "user-repos.page2.codecov-2020.json")
        )
        first = await client.list_repositories(TOKEN, integration())

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/user/repos").mock(return_value=httpx.Response(304))
        again = await client.list_repositories(TOKEN, integration(), previous=first)

    assert route.call_count == 2  # both pages in one round, with their ETags
    sent = sorted(call.request.headers["If-None-Match"] for call in route.calls)
    assert sent == sorted(p.etag for p in first.pages if p.etag)
    assert not any(p.fetched for p in again.pages)
    assert [r.id for r in again.repositories] == [r.id for r in first.repositories]


async def test_revoked_token_asks_for_a_reconnect(client: GitHubHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/user/repos").mock(
            return_value=replay("github", "error-401-bad-credentials.octokit-rb-2019.json")
        )
        with pytest.raises(NeedsReconnectError):
            await client.list_repositories(TOKEN, integration())


async def test_rate_limit_says_how_long_to_wait(client: GitHubHost) -> None:
    reset = int(datetime.now(UTC).timestamp()) + 120
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/user/repos").mock(
            return_value=replay(
                "github", "error-403-rate-limit.github-docs.json", headers={"x-ratelimit-reset": str(reset)}
            )
        )
        with pytest.raises(RateLimitedError) as raised:
            await client.list_repositories(TOKEN, integration())
    assert raised.value.retry_after_seconds is not None and 100 <= raised.value.retry_after_seconds <= 120
    assert TOKEN not in raised.value.message


async def test_a_rate_limit_on_one_concurrent_page_fails_the_listing_with_rate_limited(
    client: GitHubHost,
) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        if number == 3:
            return httpx.Response(
                429, headers={"retry-after": "30"}, json={"message": "secondary rate limit"}
            )
        return replay(
            "github",
            f"pagination-issues.page{number}-of-5.octokit-fixtures-2022.json",
            body=[repo_json(number)],
        )

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/user/repos").mock(side_effect=answer)
        with pytest.raises(RateLimitedError) as raised:
            await client.list_repositories(TOKEN, integration())
    assert raised.value.retry_after_seconds == 30


async def test_branches_come_from_matching_refs_and_the_protected_list_in_one_round(
    client: GitHubHost,
) -> None:
    refs = load("github", "git-matching-refs.github-docs.json")["response"]["body"]
    # The recorded /branches answer of codecov, cut to one entry renamed after the docs' feature-b:
    # what ?protected=true lists (GitHub's own protected flag rides along).
    protected = load("github", "branches.codecov-2020.json")["response"]["body"][:1]
    protected[0].update(name="feature-b", protected=True)
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        heads = mock.get("/repos/octocat/Hello-World/git/matching-refs/heads").mock(
            return_value=replay("github", "git-matching-refs.github-docs.json")
        )
        guarded = mock.get("/repos/octocat/Hello-World/branches", params={"protected": "true"}).mock(
            return_value=replay("github", "branches.codecov-2020.json", body=protected)
        )
        listing = await client.list_branches(TOKEN, integration(), "octocat/Hello-World")
    assert heads.called and guarded.called
    assert guarded.calls.last.request.url.params["per_page"] == "100"
    assert [(b.name, b.commit_sha, b.protected) for b in listing.branches] == [
        ("feature-a", refs[0]["object"]["sha"], False),
        ("feature-b", refs[1]["object"]["sha"], True),
    ]


async def test_matching_refs_that_come_in_pages_are_read_to_the_end(client: GitHubHost) -> None:
    # Older descriptions of the endpoint had page/per_page: a Link is followed if GitHub sends one.
    refs = load("github", "git-matching-refs.github-docs.json")["response"]["body"]

    def page(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params["page"])
        url = f"{API}/repos/octocat/Hello-World/git/matching-refs/heads?per_page=100"
        links = f'<{url}&page=2>; rel="next", <{url}&page=2>; rel="last"' if number == 1 else ""
        return replay(
            "github",
            "git-matching-refs.github-docs.json",
            body=[refs[number - 1]],
            headers={"Link": links} if links else {},
        )

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/repos/octocat/Hello-World/git/matching-refs/heads").mock(side_effect=page)
        mock.get("/repos/octocat/Hello-World/branches").mock(return_value=httpx.Response(200, json=[]))
        listing = await client.list_branches(TOKEN, integration(), "octocat/Hello-World")
    assert [b.name for b in listing.branches] == ["feature-a", "feature-b"]


async def test_an_empty_repository_has_no_branches(client: GitHubHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/repos/octocat/empty/git/matching-refs/heads").mock(
            return_value=httpx.Response(409, json={"message": "Git Repository is empty."})
        )
        mock.get("/repos/octocat/empty/branches").mock(
            return_value=httpx.Response(409, json={"message": "Git Repository is empty."})
        )
        listing = await client.list_branches(TOKEN, integration(), "octocat/empty")
    assert listing.branches == []


async def test_branches_of_a_repository_no_longer_visible_are_not_found(client: GitHubHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get(url__regex=r".*/repos/octocat/gone/.*").mock(
            return_value=httpx.Response(404, json={"message": "Not Found"})
        )
        with pytest.raises(NotFoundError):
            await client.list_branches(TOKEN, integration(), "octocat/gone")


async def test_branches_by_prefix_ask_matching_refs_for_that_prefix_only(client: GitHubHost) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        route = mock.get("/repos/octocat/Hello-World/git/matching-refs/heads/feature-").mock(
            return_value=replay("github", "git-matching-refs.github-docs.json")
        )
        mock.get("/repos/octocat/Hello-World/branches").mock(return_value=httpx.Response(200, json=[]))
        found = await client.branches_starting_with(TOKEN, integration(), "octocat/Hello-World", "feature-")
    assert route.called
    assert found is not None and [b.name for b in found] == ["feature-a", "feature-b"]


async def test_an_answer_naming_the_prefix_itself_is_not_taken_as_complete(client: GitHubHost) -> None:
    # The docs do not say whether an existing ref named exactly like the prefix hides the others.
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/repos/octocat/Hello-World/git/matching-refs/heads/feature-a").mock(
            return_value=replay(
                "github",
                "git-matching-refs.github-docs.json",
                body=load("github", "git-matching-refs.github-docs.json")["response"]["body"][:1],
            )
        )
        mock.get("/repos/octocat/Hello-World/branches").mock(return_value=httpx.Response(200, json=[]))
        found = await client.branches_starting_with(TOKEN, integration(), "octocat/Hello-World", "feature-a")
    assert found is None


@pytest.mark.parametrize("prefix", ["../../user", "a..b", ".hidden", "/abs", "x y", "feat?x", "a//b"])
async def test_a_prefix_no_branch_name_can_start_with_never_reaches_the_path(
    client: GitHubHost, prefix: str
) -> None:
    with respx.mock(assert_all_mocked=True, base_url=API):
        assert (
            await client.branches_starting_with(TOKEN, integration(), "octocat/Hello-World", prefix) is None
        )


async def test_organizations_behind_saml_sso_become_a_notice_with_where_to_authorize(
    client: GitHubHost,
) -> None:
    # The header as GitHub's docs and provider-facts quote it: 200, the organizations' repositories
    # left out, their ids named.
    sso = {"X-GitHub-SSO": "partial-results; organizations=21955855,20582480"}
    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/user/repos").mock(
            return_value=replay("github", "user-repos.page1.codecov-2020.json", headers={**sso, "Link": ""})
        )
        listing = await client.list_repositories(TOKEN, integration())
    assert len(listing.notices) == 1
    notice = listing.notices[0]
    assert notice.reason is AccessNoticeReason.SSO_AUTHORIZATION_REQUIRED
    assert notice.organizations == ("21955855", "20582480")
    assert notice.url == "https://github.com/settings/tokens"
    assert "2 organizations" in notice.message and notice.url in notice.message
    assert listing.pages[0].hidden_organizations == ("21955855", "20582480")


@pytest.mark.parametrize(
    ("header", "hidden"),
    [
        ("partial-results; organizations=21955855", ("21955855",)),
        ("PARTIAL-RESULTS;organizations=1, 2 ,1", ("1", "2")),
        ("partial-results; organizations=<script>,42", ("42",)),
        ("required; url=https://github.com/orgs/acme/sso", ()),
        ("partial-results", ()),
    ],
)
def test_the_sso_header_is_read_strictly(header: str, hidden: tuple[str, ...]) -> None:
    response = httpx.Response(200, headers={"X-GitHub-SSO": header})
    assert sso_hidden_organizations(response) == hidden


def test_admin_rights_come_from_permissions_admin() -> None:
    recorded = load("github", "user-repos.page1.codecov-2020.json")["response"]["body"][0]
    assert recorded["permissions"]["admin"] is True
    admin = parse_repository(recorded, "https://github.com")
    writer = parse_repository(
        {**recorded, "permissions": {"admin": False, "push": True, "pull": True}}, "https://github.com"
    )
    unknown = parse_repository(
        {k: v for k, v in recorded.items() if k != "permissions"}, "https://github.com"
    )
    assert admin is not None and admin.viewer_can_administer is True
    assert writer is not None and writer.viewer_can_administer is False
    assert unknown is not None and unknown.viewer_can_administer is False


async def test_a_matching_refs_answer_too_large_to_read_falls_back_to_branch_pages(client: GitHubHost) -> None:
    def too_large(request: httpx.Request) -> httpx.Response:
        raise AnswerTooLarge("more than 5 MiB", request=request, limit=5 * 1024 * 1024)

    with respx.mock(assert_all_mocked=True, base_url=API) as mock:
        mock.get("/repos/octocat/huge/git/matching-refs/heads").mock(side_effect=too_large)
        mock.get("/repos/octocat/huge/branches", params={"protected": "true"}).mock(
            return_value=httpx.Response(200, json=[])
        )
        pages = mock.get("/repos/octocat/huge/branches").mock(
            return_value=replay("github", "branches.codecov-2020.json")
        )
        listing = await client.list_branches(TOKEN, integration(), "octocat/huge")
    recorded = load("github", "branches.codecov-2020.json")["response"]["body"]
    assert [b.name for b in listing.branches] == [b["name"] for b in recorded]
    assert pages.called
