"""Shared by the login (OAuth) tests: fake hosts on loopback, the service in process, and a "browser".

The browser follows the authorization URL to the fake host (a real request over loopback), brings
each redirect back to the service's ``/oauth/callback`` and on to the host again (the second leg of a
GitHub App installation), until the service sends it to ``returnTo`` (or answers a page). There the
frontend, signed in, calls ``completeGitOAuth`` with what the callback handed on.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from pymongo import AsyncMongoClient

from app.composition import Seams
from app.settings.model import Settings
from app.settings.values import OAuthClient, Secret
from tests.conftest import GraphQLTestClient, running_app
from tests.fakes import scenarios
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.server import run_in_thread
from tests.harness import ServedApp

PUBLIC_URL = "http://service.test"
CALLBACK = f"{PUBLIC_URL}/oauth/callback"
RETURN_TO = "https://app.example.com/settings/git?tab=integrations"
APP_SLUG = "deploy-bot"

CONNECT_OAUTH = """
mutation Start($input: ConnectGitOAuthInput!) {
  connectGitOAuth(input: $input) {
    __typename
    ... on GitOAuthAuthorization { authorizationUrl state expiresAt }
    ... on Error { code message }
    ... on OAuthNotConfiguredError { variables }
  }
}
"""
INTEGRATION_FIELDS = """
    id provider host authMethod tokenKind repositoryAccess grantedPermissions manageAccessUrl
    expiresAt status account { login }
"""
COMPLETE_OAUTH = f"""
mutation Complete($input: CompleteGitOAuthInput!) {{
  completeGitOAuth(input: $input) {{
    __typename
    ... on Integration {{ {INTEGRATION_FIELDS} }}
    ... on Error {{ code message }}
    ... on OAuthExchangeError {{ reason }}
    ... on MissingPermissionsError {{ missing granted }}
    ... on InsufficientRoleError {{ required actual }}
  }}
}}
"""
VERIFY = f"""
mutation Verify($id: ID!) {{
  verifyGitIntegration(input: {{id: $id}}) {{
    __typename
    ... on Integration {{ {INTEGRATION_FIELDS} }}
    ... on Error {{ code message }}
  }}
}}
"""
DISCONNECT = """
mutation Disconnect($id: ID!) {
  disconnectGitIntegration(input: {id: $id}) {
    __typename
    ... on DisconnectedIntegration { id hostNotified message }
    ... on Error { code message }
  }
}
"""
INTEGRATIONS = f"{{ integrations {{ {INTEGRATION_FIELDS} }} }}"


@dataclass
class FakeHosts:
    github: FakeGitHub
    github_url: str
    gitlab: FakeGitLab
    gitlab_url: str
    github_api_url: str | None = None  # None: on ``github_url``, at ``github.api_prefix``


def new_github(app_slug: str | None = None, *, api_prefix: str = "") -> FakeGitHub:
    """``octocat`` (who logs in) with three repositories, and ``hubot``; the service's callback registered."""
    github = FakeGitHub(app_slug=app_slug, api_prefix=api_prefix)
    github.add_user("octocat", "The Octocat")
    github.add_user("hubot", "Hubot")
    github.add_repositories("octocat", 3)
    github.callback_urls = [CALLBACK]
    github.setup_url = CALLBACK
    return github


def new_gitlab() -> FakeGitLab:
    """``alice`` (who logs in, Maintainer of ``acme``) with the service's redirect URI registered."""
    return scenarios.default_gitlab(FakeGitLab(redirect_uris=[CALLBACK]), repositories=3)


@contextlib.contextmanager
def fake_hosts(
    *, app_slug: str | None = None, api_prefix: str = "", separate_api: bool = False
) -> Iterator[FakeHosts]:
    """The fakes on loopback; GitHub like GHES with ``api_prefix="/api/v3"``, and with ``separate_api``
    its API served on an origin of its own (like api.github.com)."""
    github, gitlab = new_github(app_slug, api_prefix=api_prefix), new_gitlab()
    with contextlib.ExitStack() as stack:
        github_url = stack.enter_context(run_in_thread(github.app))
        gitlab_url = stack.enter_context(run_in_thread(gitlab.app))
        api_url = None
        if separate_api:
            api_url = stack.enter_context(run_in_thread(github.app)) + api_prefix
            github.html_url = github_url  # links name the web origin, not the API's the request came to
        yield FakeHosts(github, github_url, gitlab, gitlab_url, api_url)


def login_settings(settings: Settings, hosts: FakeHosts, **overrides: Any) -> Settings:
    """``settings`` pointing at the fakes, with both hosts' OAuth applications configured."""
    github, gitlab = hosts.github, hosts.gitlab
    values: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "github_url": hosts.github_url,
        "github_api_url": hosts.github_api_url or hosts.github_url + github.api_prefix,
        "github_oauth": OAuthClient(github.client_id, Secret(github.client_secret)),
        "github_app_slug": github.app_slug,
        "gitlab_url": hosts.gitlab_url,
        "gitlab_oauth": OAuthClient(gitlab.client_id, Secret(gitlab.client_secret)),
    }
    return replace(settings, **(values | overrides))


class Service:
    """The service in process (ASGI), its database, and a browser that visits the hosts."""

    def __init__(self, app: ServedApp, http: httpx.AsyncClient, settings: Settings, database: Any) -> None:
        self.app = app
        self.http = http
        self.graphql = GraphQLTestClient(http, settings)
        self.settings = settings
        self.db = database

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, user: str = "alice"
    ) -> Any:
        body = await self.graphql.execute(query, variables, user=user)
        assert "errors" not in body, body
        return body["data"]

    async def start(
        self, provider: str, return_to: str | None = RETURN_TO, *, user: str = "alice"
    ) -> dict[str, Any]:
        """``connectGitOAuth``; returns the authorization (asserted to be one)."""
        data = await self.execute(
            CONNECT_OAUTH, {"input": {"provider": provider, "returnTo": return_to}}, user=user
        )
        result: dict[str, Any] = data["connectGitOAuth"]
        assert result["__typename"] == "GitOAuthAuthorization", result
        return result

    async def visit_host(self, authorization_url: str) -> str:
        """The browser at the host's authorization page: where the host sends it back."""
        async with httpx.AsyncClient() as browser:
            response = await browser.get(authorization_url)
        assert response.status_code == 302, response.text
        location: str = response.headers["location"]
        assert location.startswith(CALLBACK), location
        return location

    async def callback(self, location: str) -> httpx.Response:
        """The browser bringing the host's redirect to ``/oauth/callback``."""
        return await self.http.get(location)

    async def follow(self, url: str, visited: list[str] | None = None) -> httpx.Response:
        """The browser from ``url`` through the hosts and the callback: the service's last answer.

        Stops at the first answer that is not a redirect to a host or to the callback (the redirect
        to ``returnTo``, or a page). ``visited`` collects every URL the browser asked for.
        """
        hosts = (self.settings.github_url, self.settings.gitlab_url)
        async with httpx.AsyncClient() as browser:
            for _ in range(10):
                if visited is not None:
                    visited.append(url)
                on_service = url.startswith(CALLBACK)
                response = await (self.http.get(url) if on_service else browser.get(url))
                location = response.headers.get("location")
                if response.status_code != 302 or location is None:
                    assert on_service, f"the host answered {response.status_code}: {response.text}"
                    return response
                if not (location.startswith(CALLBACK) or location.startswith(hosts)):
                    assert on_service, f"the host sent the browser elsewhere: {location}"
                    return response
                url = location
        raise AssertionError("the browser was redirected in circles")

    async def arrive(
        self, provider: str, return_to: str | None = RETURN_TO, *, user: str = "alice"
    ) -> tuple[dict[str, Any], httpx.Response]:
        """``connectGitOAuth`` as ``user``, then the browser until the service sends it on."""
        authorization = await self.start(provider, return_to, user=user)
        return authorization, await self.follow(authorization["authorizationUrl"])

    async def complete(self, values: dict[str, Any], *, user: str = "alice") -> dict[str, Any]:
        """``completeGitOAuth`` as ``user`` (the signed-in frontend) with ``values``."""
        data = await self.execute(COMPLETE_OAUTH, {"input": values}, user=user)
        result: dict[str, Any] = data["completeGitOAuth"]
        return result

    async def login(
        self, provider: str, return_to: str | None = RETURN_TO, *, user: str = "alice"
    ) -> dict[str, Any]:
        """The whole sign-in as the frontend does it: the ``completeGitOAuth`` result."""
        _, response = await self.arrive(provider, return_to, user=user)
        return await self.complete(handed_on(response), user=user)

    async def integrations(self, *, user: str = "alice") -> list[dict[str, Any]]:
        data = await self.execute(INTEGRATIONS, user=user)
        result: list[dict[str, Any]] = data["integrations"]
        return result

    async def verify(self, integration_id: str, *, user: str = "alice") -> dict[str, Any]:
        data = await self.execute(VERIFY, {"id": integration_id}, user=user)
        result: dict[str, Any] = data["verifyGitIntegration"]
        return result


@contextlib.asynccontextmanager
async def open_service(
    settings: Settings, *, own_http_client: bool = False, seams: Seams | None = None
) -> AsyncIterator[Service]:
    """The service in process. ``own_http_client``: it builds its HTTP client as in production (the SSRF
    guard, ``HTTP_TIMEOUT_SECONDS``) instead of using a plain test client; ``seams`` replace other parts."""
    assert settings.mongodb_uri is not None
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri.reveal(), tz_aware=True)
    try:
        async with (
            httpx.AsyncClient() as plain,
            running_app(settings, None if own_http_client else plain, seams=seams) as app,
        ):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
                yield Service(app, http, settings, mongo[settings.mongodb_database])
    finally:
        await mongo.close()


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url`` (one value each)."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def handed_on(response: httpx.Response) -> dict[str, str]:
    """What the callback handed on to ``returnTo``: ``state``, ``code`` and maybe ``installationId``."""
    assert response.status_code == 302, response.text
    params = query_of(response.headers["location"])
    assert "code" in params and "state" in params, response.headers["location"]
    return {k: params[k] for k in ("state", "code", "installationId") if k in params}


def integration_id_from(result: dict[str, Any]) -> str:
    """The id of the integration a ``completeGitOAuth`` result is (asserted to be one)."""
    assert result["__typename"] == "Integration", result
    integration_id: str = result["id"]
    return integration_id
