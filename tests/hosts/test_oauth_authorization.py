"""The authorization servers (app.hosts.github.oauth, app.hosts.gitlab.oauth) and GitHub's login-token checks against recorded
answers (tests/fixtures, see the READMEs) and the error shapes the provider facts document.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from app.domain.errors import MissingPermissionsError, OAuthExchangeError, ProviderUnavailableError
from app.domain.models import GitProvider, HostEndpoint, RepositoryAccess, TokenKind, TokenResource
from app.hosts.github.client import GitHubHost
from app.hosts.github.oauth import GitHubAuthorization
from app.hosts.gitlab.oauth import GitLabAuthorization
from app.hosts.oauth import REFUSED_REFRESH_REASONS, TokenGrant, code_challenge
from app.net.client import RetryPolicy, Upstream
from app.settings.values import OAuthClient, Secret
from tests.recordings import load, replay

CLIENT = OAuthClient("Iv23liSqj8DAO20A3KLA", Secret("s3cr3t-client-secret"))
REDIRECT = "https://deploy.example.com/oauth/callback"
VERIFIER = "v" * 64
STATE = "S" * 43
APP_TOKEN = "ghu_" + "A1b2C3d4E5" * 3 + "xyzXYZ"


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def github(
    http: httpx.AsyncClient,
    *,
    slug: str | None = None,
    web: str = "https://github.com",
    api: str | None = None,
) -> GitHubAuthorization:
    api = api or ("https://api.github.com" if web == "https://github.com" else f"{web}/api/v3")
    return GitHubAuthorization(Upstream(http), CLIENT, web, api, urlsplit(web).netloc, app_slug=slug)


def gitlab(http: httpx.AsyncClient) -> GitLabAuthorization:
    return GitLabAuthorization(Upstream(http), CLIENT, "https://gitlab.com", "gitlab.com")


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


# --- where the browser goes -------------------------------------------------------------------------


def test_the_oauth_app_login_asks_for_the_scopes_with_pkce() -> None:
    url = github(httpx.AsyncClient()).authorization_url(
        state=STATE, code_verifier=VERIFIER, redirect_uri=REDIRECT
    )

    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://github.com/login/oauth/authorize"
    assert params == {
        "response_type": "code",
        "client_id": CLIENT.client_id,
        "redirect_uri": REDIRECT,
        "scope": "repo admin:repo_hook read:user",
        "state": STATE,
        "code_challenge": code_challenge(VERIFIER),
        "code_challenge_method": "S256",
    }
    assert CLIENT.client_secret.reveal() not in url


@pytest.mark.parametrize(
    ("web", "api", "expected"),
    [
        (
            "https://github.com",
            "https://api.github.com",
            "https://github.com/apps/deploy-bot/installations/new",
        ),
        (
            "https://ghe.example.com",
            "https://ghe.example.com/api/v3",
            "https://ghe.example.com/github-apps/deploy-bot/installations/new",
        ),
        (
            "https://octo.ghe.com",
            "https://api.octo.ghe.com",
            "https://octo.ghe.com/apps/deploy-bot/installations/new",
        ),
        # A github.com-like host elsewhere (a test double on loopback, its API on another origin):
        # not GHES, whose API is always on the web host at /api/v3.
        (
            "http://127.0.0.1:9000",
            "http://127.0.0.1:9001",
            "http://127.0.0.1:9000/apps/deploy-bot/installations/new",
        ),
    ],
)
def test_with_an_app_slug_the_login_installs_the_github_app(web: str, api: str, expected: str) -> None:
    server = github(httpx.AsyncClient(), slug="deploy-bot", web=web, api=api)

    url = server.authorization_url(state=STATE, code_verifier=VERIFIER, redirect_uri=REDIRECT)

    assert url.split("?")[0] == expected
    # The installation page takes no PKCE challenge; the authorization after it does.
    assert parse_qs(urlsplit(url).query) == {"state": [STATE]}
    assert server.installs_first
    assert server.token_kind is TokenKind.GITHUB_APP
    second = server.user_authorization_url(state=STATE, code_verifier=VERIFIER, redirect_uri=REDIRECT)
    assert second.split("?")[0] == f"{web}/login/oauth/authorize"
    assert parse_qs(urlsplit(second).query) == {
        "response_type": ["code"],
        "client_id": [CLIENT.client_id],
        "redirect_uri": [REDIRECT],
        "state": [STATE],
        "code_challenge": [code_challenge(VERIFIER)],
        "code_challenge_method": ["S256"],
    }


def test_the_gitlab_login_asks_for_api_and_repository_scopes() -> None:
    url = gitlab(httpx.AsyncClient()).authorization_url(
        state=STATE, code_verifier=VERIFIER, redirect_uri=REDIRECT
    )

    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith("https://gitlab.com/oauth/authorize?")
    assert params["response_type"] == "code"
    assert params["scope"] == "api read_repository write_repository"
    assert params["code_challenge_method"] == "S256"


def test_the_challenge_is_rfc_7636_s256() -> None:
    # RFC 7636 appendix B
    assert (
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


# --- the token endpoint -----------------------------------------------------------------------------


async def test_an_oauth_app_code_becomes_a_token_that_does_not_expire(mock: respx.MockRouter) -> None:
    route = mock.post("https://github.com/login/oauth/access_token").mock(
        return_value=replay("github", "oauth-access-token.codecov-2020.json")
    )
    async with httpx.AsyncClient() as http:
        grant = await github(http).exchange_code(
            "dc38acf492b071cc4dce", code_verifier=VERIFIER, redirect_uri=REDIRECT
        )

    assert grant == TokenGrant(
        access_token="testw5efy5qccduniyucsk5tesu08s4640xtoymv",
        scopes=("read:org", "repo:status", "user:email", "write:repo_hook"),
    )
    sent = route.calls.last.request
    assert sent.headers["accept"] == "application/json"
    assert form(sent) == {
        "grant_type": "authorization_code",
        "code": "dc38acf492b071cc4dce",
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": CLIENT.client_id,
        "client_secret": CLIENT.client_secret.reveal(),
    }
    assert "testw5efy5" not in repr(grant)


async def test_a_github_app_code_comes_with_an_expiry_and_a_refresh_token(mock: respx.MockRouter) -> None:
    mock.post("https://github.com/login/oauth/access_token").mock(
        return_value=replay("github", "oauth-access-token.github-app-expiring.codecov-2024.json")
    )
    async with httpx.AsyncClient() as http:
        grant = await github(http, slug="deploy-bot").exchange_code(
            "71367b9f258ca9a60c44", code_verifier=VERIFIER, redirect_uri=REDIRECT
        )

    assert grant.expires_in == 28800
    assert grant.refresh_token == "testtoken"
    assert grant.scopes == ()
    assert grant.refresh_token_expires_in == 15897600  # about six months: then the user signs in again


async def test_a_gitlab_code_becomes_a_token_pair(mock: respx.MockRouter) -> None:
    mock.post("https://gitlab.com/oauth/token").mock(
        return_value=replay("gitlab", "oauth-token.authorization-code.codecov-2020.json")
    )
    body = load("gitlab", "oauth-token.authorization-code.codecov-2020.json")["response"]["body"]
    async with httpx.AsyncClient() as http:
        grant = await gitlab(http).exchange_code("7c005cbb", code_verifier=VERIFIER, redirect_uri=REDIRECT)

    assert grant.access_token == body["access_token"]
    assert grant.refresh_token == body["refresh_token"]
    assert grant.scopes == ("api",)


async def test_github_refusing_a_code_with_http_200_is_an_exchange_error_with_its_reason(
    mock: respx.MockRouter,
) -> None:
    mock.post("https://github.com/login/oauth/access_token").mock(
        return_value=httpx.Response(
            200,
            json={
                "error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired.",
                "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
            },
        )
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(OAuthExchangeError) as caught:
            await github(http).exchange_code("c0de" * 5, code_verifier=VERIFIER, redirect_uri=REDIRECT)

    assert caught.value.reason == "bad_verification_code"
    assert "c0de" not in caught.value.message


async def test_a_refused_refresh_names_a_reason_that_means_reconnect(mock: respx.MockRouter) -> None:
    mock.post("https://gitlab.com/oauth/token").mock(
        return_value=httpx.Response(
            400,
            json={
                "error": "invalid_grant",
                "error_description": "The provided authorization grant is invalid",
            },
        )
    )
    mock.post("https://github.com/login/oauth/access_token").mock(
        return_value=httpx.Response(200, json={"error": "bad_refresh_token"})
    )
    async with httpx.AsyncClient() as http:
        for server in (gitlab(http), github(http, slug="deploy-bot")):
            with pytest.raises(OAuthExchangeError) as caught:
                await server.refresh("ghr_" + "r" * 40, redirect_uri=REDIRECT)
            assert caught.value.reason in REFUSED_REFRESH_REASONS


async def test_a_refresh_is_sent_once_even_when_the_host_fails(mock: respx.MockRouter) -> None:
    route = mock.post("https://gitlab.com/oauth/token").mock(return_value=httpx.Response(502, text="<html>"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProviderUnavailableError):
            await gitlab(http).refresh("r" * 64, redirect_uri=REDIRECT)

    assert route.call_count == 1  # a single-use refresh token must not be sent twice
    assert form(route.calls.last.request)["grant_type"] == "refresh_token"


async def test_the_refresh_carries_redirect_uri_where_gitlab_documents_it(mock: respx.MockRouter) -> None:
    # gitlabhq doc/api/oauth2.md: "parameters = 'client_id=APP_ID&client_secret=APP_SECRET&refresh_token=
    # REFRESH_TOKEN&grant_type=refresh_token&redirect_uri=REDIRECT_URI'"; GitHub documents no such field.
    recorded = replay("gitlab", "oauth-token.authorization-code.codecov-2020.json")
    gitlab_route = mock.post("https://gitlab.com/oauth/token").mock(return_value=recorded)
    github_route = mock.post("https://github.com/login/oauth/access_token").mock(
        return_value=replay("github", "oauth-access-token.github-app-expiring.codecov-2024.json")
    )
    async with httpx.AsyncClient() as http:
        await gitlab(http).refresh("r" * 64, redirect_uri=REDIRECT)
        grant = await github(http, slug="deploy-bot").refresh("ghr_" + "r" * 40, redirect_uri=REDIRECT)

    assert form(gitlab_route.calls.last.request) == {
        "grant_type": "refresh_token",
        "refresh_token": "r" * 64,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT.client_id,
        "client_secret": CLIENT.client_secret.reveal(),
    }
    assert "redirect_uri" not in form(github_route.calls.last.request)
    assert grant.refresh_token_expires_in == 15897600


# --- revocation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("whole_grant", "what"), [(False, "token"), (True, "grant")])
async def test_github_revokes_the_token_or_the_grant_with_basic_auth_and_the_token_in_the_body(
    mock: respx.MockRouter, whole_grant: bool, what: str
) -> None:
    route = mock.delete(f"https://api.github.com/applications/{CLIENT.client_id}/{what}").mock(
        return_value=httpx.Response(204)
    )
    async with httpx.AsyncClient() as http:
        assert await github(http).revoke(APP_TOKEN, whole_grant=whole_grant) is True

    sent = route.calls.last.request
    expected = base64.b64encode(f"{CLIENT.client_id}:{CLIENT.client_secret.reveal()}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {expected}"
    assert json.loads(sent.content) == {"access_token": APP_TOKEN}


async def test_a_revocation_github_does_not_confirm_is_reported_as_such(mock: respx.MockRouter) -> None:
    mock.delete(f"https://api.github.com/applications/{CLIENT.client_id}/token").mock(
        return_value=httpx.Response(404, json={"message": "Not Found"})
    )
    async with httpx.AsyncClient() as http:
        assert await github(http).revoke(APP_TOKEN) is False


async def test_gitlab_revokes_with_the_client_credentials(mock: respx.MockRouter) -> None:
    route = mock.post("https://gitlab.com/oauth/revoke").mock(return_value=httpx.Response(200, json={}))
    async with httpx.AsyncClient() as http:
        assert await gitlab(http).revoke("a" * 64) is True

    assert form(route.calls.last.request) == {
        "client_id": CLIENT.client_id,
        "client_secret": CLIENT.client_secret.reveal(),
        "token": "a" * 64,
    }


async def test_a_host_that_cannot_be_reached_is_unavailable_for_revocation(mock: respx.MockRouter) -> None:
    mock.post("https://gitlab.com/oauth/revoke").mock(side_effect=httpx.ConnectError("connection refused"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProviderUnavailableError) as caught:
            await gitlab(http).revoke("a" * 64)
    assert "a" * 64 not in caught.value.message


# --- GitHub login tokens ----------------------------------------------------------------------------

API = "https://api.github.com"
GITHUB = HostEndpoint(GitProvider.GITHUB, "github.com", "https://github.com", API)


def installations(**changes: object) -> httpx.Response:
    """The documented example, with what the scenario needs changed in every installation."""
    body = load("github", "user-installations.openapi-example.json")["response"]["body"]
    for item in body["installations"]:
        item.update(changes)
    return replay("github", "user-installations.openapi-example.json", body=body, headers={"Link": ""})


FULL = {"administration": "write", "statuses": "write", "contents": "write", "repository_hooks": "write"}


async def test_a_github_app_token_is_confirmed_through_the_users_installations(
    mock: respx.MockRouter,
) -> None:
    mock.get(f"{API}/user").mock(
        return_value=replay("github", "user.github-app-token-empty-scopes.codecov-2024.json")
    )
    mock.get(f"{API}/user/installations").mock(
        return_value=installations(permissions=FULL, html_url="https://github.com/settings/installations/3")
    )
    async with httpx.AsyncClient() as http:
        client = GitHubHost(Upstream(http, retry=RetryPolicy(base_delay=0, max_delay=0)), GITHUB)
        verified = await client.verify_login(APP_TOKEN, TokenKind.GITHUB_APP, installation_id="3")

    assert verified.token_kind is TokenKind.GITHUB_APP
    assert verified.account.login == "RulaKhaled"
    assert verified.repository_access is RepositoryAccess.ALL
    assert verified.resource == TokenResource(kind="installations", ids=("3", "1"))
    assert verified.manage_access_url == "https://github.com/settings/installations/3"
    assert "webhooks:write" in verified.granted_permissions
    assert verified.expires_at is not None  # github-authentication-token-expiration


async def test_a_forged_installation_id_is_not_confirmed(mock: respx.MockRouter) -> None:
    mock.get(f"{API}/user").mock(
        return_value=replay("github", "user.github-app-token-empty-scopes.codecov-2024.json")
    )
    mock.get(f"{API}/user/installations").mock(return_value=installations(permissions=FULL))
    async with httpx.AsyncClient() as http:
        client = GitHubHost(Upstream(http), GITHUB)
        with pytest.raises(MissingPermissionsError) as caught:
            await client.verify_login(APP_TOKEN, TokenKind.GITHUB_APP, installation_id="2")

    assert caught.value.missing == ["installation"]


async def test_an_installation_without_the_needed_permissions_names_them(mock: respx.MockRouter) -> None:
    mock.get(f"{API}/user").mock(
        return_value=replay("github", "user.github-app-token-empty-scopes.codecov-2024.json")
    )
    mock.get(f"{API}/user/installations").mock(
        return_value=installations()
    )  # checks, metadata, contents: read
    async with httpx.AsyncClient() as http:
        with pytest.raises(MissingPermissionsError) as caught:
            await GitHubHost(Upstream(http), GITHUB).verify_login(
                APP_TOKEN, TokenKind.GITHUB_APP, installation_id="1"
            )

    assert "contents:write" in caught.value.missing
    assert "contents:read" in caught.value.granted


async def test_an_oauth_app_token_needs_the_scopes_of_a_classic_token(mock: respx.MockRouter) -> None:
    mock.get(f"{API}/user").mock(return_value=replay("github", "user.oauth-scopes.codecov-2020.json"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(MissingPermissionsError) as caught:
            await GitHubHost(Upstream(http), GITHUB).verify_login(
                "gho_" + "x" * 36, TokenKind.GITHUB_OAUTH_APP
            )

    assert caught.value.missing == ["repo", "admin:repo_hook"]
    assert "write:repo_hook" in caught.value.granted


async def test_a_reason_that_echoes_the_code_is_not_repeated_to_the_user(mock: respx.MockRouter) -> None:
    code = "3584d83530557fdd1f46"  # GitHub codes are 20 hex characters
    mock.post("https://github.com/login/oauth/access_token").mock(
        return_value=httpx.Response(
            200, json={"error": "odd_error", "error_description": f"code {code} is odd"}
        )
    )
    async with httpx.AsyncClient() as http:
        with pytest.raises(OAuthExchangeError) as caught:
            await github(http).exchange_code(code, code_verifier=VERIFIER, redirect_uri=REDIRECT)

    assert caught.value.reason == "odd_error"
    assert code not in caught.value.message
    assert caught.value.message == "GitHub refused the sign-in (odd_error)."
