"""GitHubHost.verify_token against recorded GitHub answers (tests/fixtures/github, see its README).

The permission probes of fine-grained tokens have no recording: their answers are built below in
the shape GitHub documents (403 "Resource not accessible by personal access token"; 422 validation
errors), each carrying ``X-Accepted-GitHub-Permissions`` as every answer to a fine-grained token does
(https://github.blog/changelog/2023-08-10-x-accepted-github-permissions-header-for-fine-grained-permission-actors).
``test_github_fine_grained_fake.py`` checks the same against the fake GitHub.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from app.domain.errors import (
    InvalidTokenError,
    MissingPermissionsError,
    ProviderUnavailableError,
    RateLimitedError,
)
from app.domain.models import GitProvider, HostEndpoint, RepositoryAccess, TokenKind, VerifiedToken
from app.hosts.github.client import GitHubHost
from app.hosts.github.constants import REQUIRED_FINE_GRAINED_PERMISSIONS
from app.hosts.github.messages import REVOKED as REVOKED_MESSAGE
from app.net.client import RetryPolicy, Upstream
from tests.recordings import load, replay

API = "https://api.github.com"
GITHUB = HostEndpoint(GitProvider.GITHUB, "github.com", "https://github.com", API)
GHE_API = "https://ghe.example.com/api/v3"
GHE = HostEndpoint(GitProvider.GITHUB, "ghe.example.com", "https://ghe.example.com", GHE_API)

CLASSIC = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0" * 2
FINE_GRAINED = "github_pat_11ABCDEFG0" + "z9Y8x7W6v5" * 7
LEGACY = "0123456789abcdef0123456789abcdef01234567"  # 40 hex, no prefix

USER = "user.oauth-scopes.codecov-2020.json"  # ThiagoCodecov: public_repos 3, no owned_private_repos
# The recorded user-repos page 1 lists codecov's repositories; the first one that is administered and
# not archived is codecov/admin, so the fine-grained probes go there.
PROBE = "/repos/codecov/admin"
HEAD_SHA = "f0895290dc26668faeeb20ee5ccd4cc995925775"  # "master" in branches.codecov-2020.json
CLASSIC_HEADERS = ("X-OAuth-Scopes", "X-Accepted-OAuth-Scopes", "X-OAuth-Client-Id")

NO_DELAY = RetryPolicy(base_delay=0, max_delay=0)


# --- answers GitHub gives (documented shapes; no recording exists for them) ---------------------


def not_accessible(permission: str) -> httpx.Response:
    return httpx.Response(
        403,
        headers={"X-Accepted-GitHub-Permissions": permission},
        json={
            "message": "Resource not accessible by personal access token",
            "documentation_url": "https://docs.github.com/rest",
            "status": "403",
        },
    )


def refused(message: str, permission: str) -> httpx.Response:
    """A 403 for another reason than the token's grants; the header comes with it all the same."""
    return accepting(
        httpx.Response(403, json={"message": message, "documentation_url": "https://docs.github.com/rest"}),
        permission,
    )


def accepting(response: httpx.Response, permission: str) -> httpx.Response:
    """``response`` as GitHub sends it to a fine-grained token: naming what the endpoint accepts."""
    response.headers["X-Accepted-GitHub-Permissions"] = permission
    return response


def invalid(message: str) -> httpx.Response:
    return httpx.Response(422, json={"message": message, "documentation_url": "https://docs.github.com/rest"})


def not_found(message: str = "Not Found") -> httpx.Response:
    return httpx.Response(404, json={"message": message, "documentation_url": "https://docs.github.com/rest"})


def without_headers(response: httpx.Response, *names: str) -> httpx.Response:
    """``replay`` merges headers; a fine-grained token's answer must not carry classic ones at all."""
    dropped = {name.lower() for name in names}
    kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
    return httpx.Response(response.status_code, headers=kept, content=response.content)


def fine_grained_user(**body_overrides: Any) -> httpx.Response:
    body = {**load("github", USER)["response"]["body"], **body_overrides}
    return without_headers(replay("github", USER, body=body), *CLASSIC_HEADERS)


def repos_page(name: str, **overrides: Any) -> httpx.Response:
    return without_headers(replay("github", name, **overrides), *CLASSIC_HEADERS)


def granting_probes() -> dict[tuple[str, str], httpx.Response]:
    """Every probe answered as for a token holding all eight permissions."""
    return {
        ("GET", f"{PROBE}/keys"): accepting(httpx.Response(200, json=[]), "administration=read"),
        ("PATCH", PROBE): accepting(
            invalid("Invalid request.\n\nFor 'properties/has_issues', \"not-a-boolean\" is not a boolean."),
            "administration=write",
        ),
        ("GET", f"{PROBE}/commits/master/statuses"): accepting(httpx.Response(200, json=[]), "statuses=read"),
        ("POST", f"{PROBE}/statuses/{HEAD_SHA}"): accepting(invalid("Validation Failed"), "statuses=write"),
        ("GET", f"{PROBE}/branches"): accepting(repos_page("branches.codecov-2020.json"), "contents=read"),
        ("PUT", f"{PROBE}/contents/.git-integrations-permission-probe"): accepting(
            invalid('Invalid request.\n\n"content", "message" weren\'t supplied.'), "contents=write"
        ),
        ("GET", f"{PROBE}/hooks"): accepting(httpx.Response(200, json=[]), "repository_hooks=read"),
        ("POST", f"{PROBE}/hooks"): accepting(
            invalid("Invalid request.\n\nFor 'properties/config', \"not-an-object\" is not an object."),
            "repository_hooks=write",
        ),
    }


# --- plumbing -----------------------------------------------------------------------------------


@pytest.fixture
def github() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


async def verify(token: str, endpoint: HostEndpoint = GITHUB) -> VerifiedToken:
    async with httpx.AsyncClient() as client:
        return await GitHubHost(Upstream(client, retry=NO_DELAY), endpoint).verify_token(token)


def mock_fine_grained(
    router: respx.MockRouter,
    *,
    user: httpx.Response | None = None,
    repos: httpx.Response | None = None,
    probes: dict[tuple[str, str], httpx.Response | list[httpx.Response]] | None = None,
    api: str = API,
) -> dict[tuple[str, str], respx.Route]:
    """Routes for a fine-grained token: /user, /user/repos (page 2 on request) and the probes."""
    router.get(f"{api}/user").mock(return_value=user or fine_grained_user())
    router.get(f"{api}/user/repos", params={"page": "2"}).mock(
        return_value=repos_page("user-repos.page2.codecov-2020.json")
    )
    router.get(f"{api}/user/repos").mock(
        return_value=repos or repos_page("user-repos.page1.codecov-2020.json")
    )
    routes = {}
    for (method, path), answer in {**granting_probes(), **(probes or {})}.items():
        route = router.route(method=method, url=f"{api}{path}")
        if isinstance(answer, list):
            route.mock(side_effect=answer)
        else:
            route.mock(return_value=answer)
        routes[(method, path)] = route
    return routes


def all_but(*names: str) -> list[str]:
    return [name for name in REQUIRED_FINE_GRAINED_PERMISSIONS if name not in names]


def called(router: respx.MockRouter, method: str, path: str) -> int:
    return sum(1 for call in router.calls if call.request.method == method and call.request.url.path == path)


# --- classic tokens -----------------------------------------------------------------------------


async def test_classic_token_with_repo_and_admin_repo_hook_is_accepted(github: respx.MockRouter) -> None:
    github.get(f"{API}/user").mock(
        return_value=replay("github", USER, headers={"X-OAuth-Scopes": "repo, admin:repo_hook, read:org"})
    )

    result = await verify(CLASSIC)

    assert result.token_kind is TokenKind.GITHUB_CLASSIC
    assert result.repository_access is RepositoryAccess.ALL
    assert result.granted_permissions == ("repo", "admin:repo_hook", "read:org")
    assert result.unverified_permissions == ()
    assert result.manage_access_url == "https://github.com/settings/tokens"
    assert result.expires_at is None  # the recording has no expiry header
    account = result.account
    assert (account.id, account.login, account.name) == ("44376991", "ThiagoCodecov", "Thiago")
    assert account.avatar_url == "https://avatars3.githubusercontent.com/u/44376991?v=4"
    assert account.url == "https://github.com/ThiagoCodecov"
    assert github.calls.call_count == 1  # the scopes come with the user: nothing else is asked


async def test_every_request_carries_the_token_and_api_headers(github: respx.MockRouter) -> None:
    github.get(f"{API}/user").mock(
        return_value=replay("github", USER, headers={"X-OAuth-Scopes": "repo, admin:repo_hook"})
    )

    await verify(f"  {CLASSIC}\n")  # pasted with whitespace around it

    headers = github.calls.last.request.headers
    assert headers["Authorization"] == f"Bearer {CLASSIC}"
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["User-Agent"]
    assert not headers["User-Agent"].startswith("python-httpx")


async def test_classic_token_without_admin_repo_hook_is_refused(github: respx.MockRouter) -> None:
    github.get(f"{API}/user").mock(
        return_value=replay("github", USER, headers={"X-OAuth-Scopes": "repo, read:org"})
    )

    with pytest.raises(MissingPermissionsError) as caught:
        await verify(CLASSIC)

    assert caught.value.missing == ["admin:repo_hook"]
    assert caught.value.granted == ["repo", "read:org"]
    assert "admin:repo_hook" in caught.value.message
    assert "https://github.com/settings/tokens" in caught.value.message
    assert github.calls.call_count == 1


async def test_classic_token_with_the_recorded_scopes_lacks_both_required_scopes(
    github: respx.MockRouter,
) -> None:
    # Recorded header: "read:org, repo:status, user:email, write:repo_hook" (narrower scopes do not count).
    github.get(f"{API}/user").mock(return_value=replay("github", USER))

    with pytest.raises(MissingPermissionsError) as caught:
        await verify(CLASSIC)

    assert caught.value.missing == ["repo", "admin:repo_hook"]
    assert caught.value.granted == ["read:org", "repo:status", "user:email", "write:repo_hook"]


async def test_classic_token_with_an_empty_scope_header_has_no_scopes(github: respx.MockRouter) -> None:
    github.get(f"{API}/user").mock(
        return_value=replay("github", "user.github-app-token-empty-scopes.codecov-2024.json")
    )

    with pytest.raises(MissingPermissionsError) as caught:
        await verify(CLASSIC)

    assert caught.value.missing == ["repo", "admin:repo_hook"]
    assert caught.value.granted == []


async def test_token_without_known_prefix_and_with_scope_header_is_classic(github: respx.MockRouter) -> None:
    github.get(f"{API}/user").mock(
        return_value=replay("github", USER, headers={"X-OAuth-Scopes": "admin:repo_hook, repo"})
    )

    result = await verify(LEGACY)

    assert result.token_kind is TokenKind.GITHUB_CLASSIC
    assert github.calls.call_count == 1


async def test_token_without_known_prefix_and_without_scope_header_is_probed_as_fine_grained(
    github: respx.MockRouter,
) -> None:
    mock_fine_grained(github)

    result = await verify(LEGACY)

    assert result.token_kind is TokenKind.GITHUB_FINE_GRAINED
    assert result.granted_permissions == REQUIRED_FINE_GRAINED_PERMISSIONS


# --- fine-grained tokens ------------------------------------------------------------------------


async def test_fine_grained_token_with_all_permissions_is_accepted(github: respx.MockRouter) -> None:
    mock_fine_grained(github)

    result = await verify(FINE_GRAINED)

    assert result.token_kind is TokenKind.GITHUB_FINE_GRAINED
    assert result.granted_permissions == REQUIRED_FINE_GRAINED_PERMISSIONS
    assert result.unverified_permissions == ()
    assert result.manage_access_url == "https://github.com/settings/personal-access-tokens"
    assert result.account.login == "ThiagoCodecov"
    # No owned_private_repos in /user: "all repositories" cannot be proven, and page 2 is not needed.
    assert result.repository_access is RepositoryAccess.SELECTED
    assert called(github, "GET", "/user/repos") == 1
    # /user, one page of repositories, eight probes (the branch list also gives the head commit).
    assert github.calls.call_count == 10


async def test_fine_grained_token_without_webhooks_write_is_refused(github: respx.MockRouter) -> None:
    mock_fine_grained(github, probes={("POST", f"{PROBE}/hooks"): not_accessible("repository_hooks=write")})

    with pytest.raises(MissingPermissionsError) as caught:
        await verify(FINE_GRAINED)

    assert caught.value.missing == ["webhooks:write"]
    assert caught.value.granted == all_but("webhooks:write")
    assert caught.value.unverified == []
    assert "Webhooks: write" in caught.value.message
    assert "codecov/admin" in caught.value.message
    assert "https://github.com/settings/personal-access-tokens" in caught.value.message


async def test_fine_grained_token_without_statuses_is_refused_in_words(github: respx.MockRouter) -> None:
    mock_fine_grained(
        github,
        probes={
            ("GET", f"{PROBE}/commits/master/statuses"): not_accessible("statuses=read"),
            ("POST", f"{PROBE}/statuses/{HEAD_SHA}"): not_accessible("statuses=write"),
        },
    )

    with pytest.raises(MissingPermissionsError) as caught:
        await verify(FINE_GRAINED)

    assert caught.value.missing == ["statuses:read", "statuses:write"]
    assert "Commit statuses: read and write" in caught.value.message


async def test_fine_grained_token_covering_no_repository_is_refused(github: respx.MockRouter) -> None:
    mock_fine_grained(github, repos=httpx.Response(200, json=[]))

    with pytest.raises(MissingPermissionsError) as caught:
        await verify(FINE_GRAINED)

    assert caught.value.missing == list(REQUIRED_FINE_GRAINED_PERMISSIONS)
    assert caught.value.granted == []
    assert "does not cover any repository" in caught.value.message
    assert "https://github.com/settings/personal-access-tokens" in caught.value.message
    assert github.calls.call_count == 2  # /user and /user/repos; nothing to probe


async def test_fine_grained_token_refused_when_listing_repositories_is_invalid(
    github: respx.MockRouter,
) -> None:
    mock_fine_grained(github, repos=httpx.Response(403, json={"message": "Resource protected by SAML"}))

    with pytest.raises(InvalidTokenError):
        await verify(FINE_GRAINED)

    assert github.calls.call_count == 2


async def test_fine_grained_write_probe_answering_404_is_reported_unverified(
    github: respx.MockRouter,
) -> None:
    mock_fine_grained(github, probes={("PATCH", PROBE): not_found()})

    result = await verify(FINE_GRAINED)

    assert result.unverified_permissions == ("administration:write",)
    assert result.granted_permissions == tuple(all_but("administration:write"))


async def test_missing_and_unverified_permissions_are_reported_together(github: respx.MockRouter) -> None:
    mock_fine_grained(
        github,
        probes={
            ("GET", f"{PROBE}/hooks"): not_accessible("repository_hooks=read"),
            ("PUT", f"{PROBE}/contents/.git-integrations-permission-probe"): httpx.Response(409, json={}),
        },
    )

    with pytest.raises(MissingPermissionsError) as caught:
        await verify(FINE_GRAINED)

    assert caught.value.missing == ["webhooks:read"]
    assert caught.value.unverified == ["contents:write"]
    assert "contents:write" not in caught.value.granted
    assert "Contents: write" in caught.value.message  # named as not checked


async def test_write_probes_send_invalid_bodies(github: respx.MockRouter) -> None:
    routes = mock_fine_grained(github)

    await verify(FINE_GRAINED)

    def sent(method: str, path: str) -> Any:
        route = routes[(method, path)]
        assert route.call_count == 1
        return json.loads(route.calls.last.request.content)

    assert sent("PATCH", PROBE) == {"has_issues": "not-a-boolean"}
    assert sent("POST", f"{PROBE}/statuses/{HEAD_SHA}") == {"state": "not-a-state"}
    assert sent("PUT", f"{PROBE}/contents/.git-integrations-permission-probe") == {}
    assert sent("POST", f"{PROBE}/hooks") == {"config": "not-an-object"}


async def test_write_probe_that_succeeds_counts_as_granted_and_is_logged(
    github: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    mock_fine_grained(
        github,
        probes={
            ("PUT", f"{PROBE}/contents/.git-integrations-permission-probe"): httpx.Response(201, json={})
        },
    )

    with caplog.at_level(logging.WARNING, logger="app.hosts.github.fine_grained"):
        result = await verify(FINE_GRAINED)

    assert "contents:write" in result.granted_permissions
    assert any("succeeded" in record.getMessage() for record in caplog.records)


async def test_deploy_keys_refused_to_a_user_without_admin_rights_is_unverified(
    github: respx.MockRouter,
) -> None:
    # The user's role, not the token: the header that comes with it names the endpoint's permission.
    mock_fine_grained(
        github,
        probes={
            ("GET", f"{PROBE}/keys"): refused("Must have admin rights to Repository.", "administration=read")
        },
    )

    result = await verify(FINE_GRAINED)

    assert result.unverified_permissions == ("administration:read",)


@pytest.mark.parametrize(
    "message",
    [
        "Repository was archived so is read-only.",
        "Upgrade to GitHub Pro or make this repository public to enable this feature.",
        "",
    ],
)
async def test_a_refusal_that_does_not_say_a_permission_is_missing_is_unverified(
    github: respx.MockRouter, message: str
) -> None:
    mock_fine_grained(
        github, probes={("POST", f"{PROBE}/statuses/{HEAD_SHA}"): refused(message, "statuses=write")}
    )

    result = await verify(FINE_GRAINED)

    assert result.unverified_permissions == ("statuses:write",)


async def test_branch_protection_is_not_what_administration_is_probed_with(github: respx.MockRouter) -> None:
    # It answers "Upgrade to GitHub Pro ..." for private repositories on GitHub Free.
    mock_fine_grained(github)

    await verify(FINE_GRAINED)

    assert called(github, "GET", f"{PROBE}/keys") == 1
    assert not any(call.request.url.path.endswith("/protection") for call in github.calls)


async def test_statuses_write_is_unverified_without_a_head_commit(github: respx.MockRouter) -> None:
    mock_fine_grained(github, probes={("GET", f"{PROBE}/branches"): httpx.Response(200, json=[])})

    result = await verify(FINE_GRAINED)

    assert result.unverified_permissions == ("statuses:write",)
    assert called(github, "POST", f"{PROBE}/statuses/{HEAD_SHA}") == 0


async def test_default_branch_beyond_the_first_branch_page_is_fetched(github: respx.MockRouter) -> None:
    other = [{"name": "a-feature", "commit": {"sha": "1" * 40}, "protected": False}]
    branch = {"name": "master", "commit": {"sha": HEAD_SHA}, "protected": False}
    mock_fine_grained(
        github,
        probes={
            ("GET", f"{PROBE}/branches"): httpx.Response(
                200, json=other, headers={"Link": f'<{API}{PROBE}/branches?per_page=100&page=2>; rel="next"'}
            ),
            ("GET", f"{PROBE}/branches/master"): httpx.Response(200, json=branch),
        },
    )

    result = await verify(FINE_GRAINED)

    assert result.granted_permissions == REQUIRED_FINE_GRAINED_PERMISSIONS
    assert called(github, "POST", f"{PROBE}/statuses/{HEAD_SHA}") == 1
    assert github.calls.call_count == 11


async def test_probe_goes_to_an_administered_repository(github: respx.MockRouter) -> None:
    page = load("github", "user-repos.page1.codecov-2020.json")["response"]["body"]
    autotest = next(repo for repo in page if repo["full_name"] == "codecov/autotest")  # admin: false
    admin = next(repo for repo in page if repo["full_name"] == "codecov/admin")  # admin: true
    mock_fine_grained(github, repos=repos_page("user-repos.page1.codecov-2020.json", body=[autotest, admin]))

    await verify(FINE_GRAINED)

    assert called(github, "GET", "/repos/codecov/autotest/hooks") == 0
    assert called(github, "GET", f"{PROBE}/hooks") == 1


async def test_server_errors_on_a_probe_leave_it_unverified_after_retries(github: respx.MockRouter) -> None:
    mock_fine_grained(github, probes={("GET", f"{PROBE}/hooks"): [httpx.Response(502)] * 3})

    result = await verify(FINE_GRAINED)

    assert result.unverified_permissions == ("webhooks:read",)
    assert called(github, "GET", f"{PROBE}/hooks") == 3  # the first try and two retries


async def test_permissions_that_could_not_be_checked_at_all_are_not_accepted(
    github: respx.MockRouter,
) -> None:
    down = httpx.Response(503)
    probes: dict[tuple[str, str], httpx.Response | list[httpx.Response]] = dict.fromkeys(
        granting_probes(), down
    )
    mock_fine_grained(github, probes=probes)

    with pytest.raises(ProviderUnavailableError) as caught:
        await verify(FINE_GRAINED)

    assert not isinstance(caught.value, RateLimitedError)


async def test_rate_limit_during_probes_propagates(github: respx.MockRouter) -> None:
    secondary = replay("github", "error-403-secondary-rate-limit.github-docs.json")
    mock_fine_grained(github, probes={("POST", f"{PROBE}/hooks"): secondary})

    with pytest.raises(RateLimitedError) as caught:
        await verify(FINE_GRAINED)

    assert caught.value.retry_after_seconds == 60  # no hint in the answer: at least a minute


# --- repository access of fine-grained tokens ---------------------------------------------------


async def test_fine_grained_token_seeing_every_owned_repository_has_all_access(
    github: respx.MockRouter,
) -> None:
    # ThiagoCodecov has 3 public repositories; page 2 lists 7 of his (3 public + 4 private).
    mock_fine_grained(github, user=fine_grained_user(owned_private_repos=4))

    result = await verify(FINE_GRAINED)

    assert result.repository_access is RepositoryAccess.ALL
    assert called(github, "GET", "/user/repos") == 2
    assert github.calls.call_count == 11


async def test_fine_grained_token_missing_an_owned_repository_has_selected_access(
    github: respx.MockRouter,
) -> None:
    mock_fine_grained(github, user=fine_grained_user(owned_private_repos=5))

    result = await verify(FINE_GRAINED)

    assert result.repository_access is RepositoryAccess.SELECTED


async def test_repository_pages_are_bounded(github: respx.MockRouter) -> None:
    page = load("github", "user-repos.page1.codecov-2020.json")["response"]["body"]

    def endless(request: httpx.Request) -> httpx.Response:
        number = int(request.url.params.get("page", "1"))
        link = f'<{API}/user/repos?per_page=100&page={number + 1}>; rel="next"'
        return httpx.Response(200, json=page, headers={"Link": link})

    github.get(f"{API}/user").mock(return_value=fine_grained_user(owned_private_repos=4))
    github.get(f"{API}/user/repos").mock(side_effect=endless)
    for (method, path), answer in granting_probes().items():
        github.route(method=method, url=f"{API}{path}").mock(return_value=answer)

    result = await verify(FINE_GRAINED)

    assert called(github, "GET", "/user/repos") == 10
    assert result.repository_access is RepositoryAccess.SELECTED


async def test_next_page_on_another_host_is_not_followed(github: respx.MockRouter) -> None:
    elsewhere = {"Link": '<https://elsewhere.example/user/repos?page=2>; rel="next"'}
    mock_fine_grained(
        github,
        user=fine_grained_user(owned_private_repos=4),
        repos=repos_page("user-repos.page1.codecov-2020.json", headers=elsewhere),
    )

    result = await verify(FINE_GRAINED)  # assert_all_mocked would fail on a request to elsewhere.example

    assert result.repository_access is RepositoryAccess.SELECTED
    assert called(github, "GET", "/user/repos") == 1


# --- failures of GET /user ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "recording",
    ["error-401-bad-credentials.github-docs.json", "error-401-bad-credentials.octokit-rb-2019.json"],
)
async def test_revoked_token_is_invalid(github: respx.MockRouter, recording: str) -> None:
    github.get(f"{API}/user").mock(return_value=replay("github", recording))

    with pytest.raises(InvalidTokenError) as caught:
        await verify(CLASSIC)

    assert caught.value.message == REVOKED_MESSAGE
    assert github.calls.call_count == 1  # a 401 is not retried


async def test_rate_limited_answer_carries_retry_after(github: respx.MockRouter) -> None:
    reset = int(time.time()) + 120
    github.get(f"{API}/user").mock(
        return_value=replay(
            "github", "error-403-rate-limit.github-docs.json", headers={"x-ratelimit-reset": str(reset)}
        )
    )

    with pytest.raises(RateLimitedError) as caught:
        await verify(FINE_GRAINED)

    assert caught.value.retry_after_seconds is not None
    assert 115 <= caught.value.retry_after_seconds <= 120
    assert github.calls.call_count == 1


async def test_forbidden_user_shows_githubs_reason(github: respx.MockRouter) -> None:
    reason = "Resource protected by organization SAML enforcement. You must grant your token access."
    github.get(f"{API}/user").mock(return_value=httpx.Response(403, json={"message": reason}))

    with pytest.raises(InvalidTokenError) as caught:
        await verify(FINE_GRAINED)

    assert reason in caught.value.message


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(301, headers={"Location": "https://elsewhere.example/user"}),
        httpx.Response(200, text="<html>maintenance</html>"),
        httpx.Response(404, json={"message": "Not Found"}),
    ],
    ids=["redirect", "not-json", "not-found"],
)
async def test_unexpected_user_answer_is_provider_unavailable(
    github: respx.MockRouter, answer: httpx.Response
) -> None:
    github.get(f"{API}/user").mock(return_value=answer)

    with pytest.raises(ProviderUnavailableError):
        await verify(CLASSIC)

    assert github.calls.call_count == 1


# --- sanity checks before any request -----------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "",
        "   \n",
        "ghp_abc\r\nX-Injected: yes",
        "ghp_abc def",
        "ghp_äöü1234567890",
        "ghp_" + "a" * 252,  # 256 characters
        "github_pat_abc-def",
    ],
    ids=["empty", "blank", "header-injection", "inner-space", "non-ascii", "too-long", "dash"],
)
async def test_malformed_token_makes_no_request(github: respx.MockRouter, token: str) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        await verify(token)

    assert github.calls.call_count == 0
    assert caught.value.message


@pytest.mark.parametrize("prefix", ["gho_", "ghu_", "ghs_", "ghr_"])
async def test_oauth_app_token_is_pointed_to_login(github: respx.MockRouter, prefix: str) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        await verify(prefix + "16C7e42F292c6912E7710c838347Ae178B4a")

    assert "Connect with GitHub" in caught.value.message
    assert "personal access token" in caught.value.message
    assert github.calls.call_count == 0


# --- expiry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, datetime(2024, 8, 12, 19, 42, 46, tzinfo=UTC)),  # as recorded: "2024-08-12 19:42:46 UTC"
        ("2024-08-12 21:42:46 +0200", datetime(2024, 8, 12, 19, 42, 46, tzinfo=UTC)),
        ("2024-08-12 19:42:46 +0000", datetime(2024, 8, 12, 19, 42, 46, tzinfo=UTC)),
        ("2024-08-12T19:42:46Z", datetime(2024, 8, 12, 19, 42, 46, tzinfo=UTC)),
        ("2024-08-12T19:42:46+00:00", datetime(2024, 8, 12, 19, 42, 46, tzinfo=UTC)),
        ("next Tuesday", None),
        # Seen for fine-grained tokens: the time of the request instead of the expiry (Date is 11:42:46 GMT).
        ("2024-08-12 11:42:46 UTC", None),
    ],
)
async def test_expiry_header_is_recorded(
    github: respx.MockRouter, header: str | None, expected: datetime | None
) -> None:
    headers = {"X-OAuth-Scopes": "repo, admin:repo_hook"}
    if header is not None:
        headers["github-authentication-token-expiration"] = header
    github.get(f"{API}/user").mock(
        return_value=replay("github", "user.github-app-token-empty-scopes.codecov-2024.json", headers=headers)
    )

    result = await verify(CLASSIC)

    assert result.expires_at == expected
    if expected is not None:
        assert result.expires_at is not None and result.expires_at.tzinfo is not None


# --- GitHub Enterprise ----------------------------------------------------------------------------


async def test_github_enterprise_api_prefix_is_used(github: respx.MockRouter) -> None:
    github.get(f"{GHE_API}/user").mock(
        return_value=replay("github", USER, headers={"X-OAuth-Scopes": "repo, admin:repo_hook"})
    )

    result = await verify(CLASSIC, GHE)

    assert str(github.calls.last.request.url) == f"{GHE_API}/user"
    assert result.manage_access_url == "https://ghe.example.com/settings/tokens"


async def test_github_enterprise_probes_use_the_api_prefix(github: respx.MockRouter) -> None:
    mock_fine_grained(github, api=GHE_API)

    result = await verify(FINE_GRAINED, GHE)

    assert all(str(call.request.url).startswith(f"{GHE_API}/") for call in github.calls)
    assert result.manage_access_url == "https://ghe.example.com/settings/personal-access-tokens"


# --- secrecy --------------------------------------------------------------------------------------

Scenario = Callable[[respx.MockRouter], object]


def _echoing_forbidden(router: respx.MockRouter) -> object:
    # A 403 whose message repeats the token: the message must not be passed on.
    return router.get(f"{API}/user").mock(
        return_value=httpx.Response(403, json={"message": f"Token {CLASSIC} is not allowed here"})
    )


def _revoked(router: respx.MockRouter) -> object:
    return router.get(f"{API}/user").mock(
        return_value=replay("github", "error-401-bad-credentials.github-docs.json")
    )


def _narrow_scopes(router: respx.MockRouter) -> object:
    return router.get(f"{API}/user").mock(return_value=replay("github", USER))


def _down(router: respx.MockRouter) -> object:
    return router.get(f"{API}/user").mock(side_effect=httpx.ConnectError(f"cannot connect; Bearer {CLASSIC}"))


def _rate_limited(router: respx.MockRouter) -> object:
    return router.get(f"{API}/user").mock(
        return_value=replay("github", "error-403-rate-limit.github-docs.json")
    )


@pytest.mark.parametrize("scenario", [_echoing_forbidden, _revoked, _narrow_scopes, _down, _rate_limited])
async def test_token_never_appears_in_error_messages(
    github: respx.MockRouter, caplog: pytest.LogCaptureFixture, scenario: Scenario
) -> None:
    scenario(github)

    with caplog.at_level(logging.DEBUG), pytest.raises(Exception) as caught:  # noqa: PT011 - any failure
        await verify(CLASSIC)

    error = caught.value
    texts = [str(error), repr(error.args), getattr(error, "message", ""), caplog.text]
    for text in texts:
        assert CLASSIC not in text
        assert CLASSIC[4:20] not in text  # nor any recognisable part of it


async def test_token_never_appears_in_fine_grained_refusals_or_logs(
    github: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    mock_fine_grained(github, probes={("POST", f"{PROBE}/hooks"): not_accessible("repository_hooks=write")})

    with caplog.at_level(logging.DEBUG), pytest.raises(MissingPermissionsError) as caught:
        await verify(FINE_GRAINED)

    for text in (str(caught.value), caught.value.message, caplog.text):
        assert FINE_GRAINED not in text
        assert FINE_GRAINED[11:30] not in text
