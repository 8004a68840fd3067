"""Helpers for the repository picker's tests: upstream clients that reach the fake hosts, and integrations.

``HostRouter`` is an httpx transport that sends each request to the ASGI app of the host it names, so
the service under test talks to ``http://github.test`` and ``http://gitlab.test`` exactly as it would
to the real hosts, without sockets. Integrations are stored directly (``save_verified``): how a token
was checked is the connect tests' business, not the picker's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.composition import Seams, Services, open_services
from app.domain.models import (
    AuthMethod,
    Credentials,
    GitAccount,
    HostEndpoint,
    Integration,
    RepositoryAccess,
    TokenKind,
    TokenResource,
    VerifiedToken,
)
from app.settings.model import Settings
from tests.harness import ServedApp
from tests.harness import settle as settle

GITHUB = "http://github.test"
GITLAB = "http://gitlab.test"


class MovableClock:
    """The service's clock (``Seams.clock``) that a test moves forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class HostRouter(httpx.AsyncBaseTransport):
    """Routes each request to the ASGI app registered for its host (``github.test`` → fake GitHub)."""

    def __init__(self, apps: Mapping[str, Any]) -> None:
        self._transports = {host: httpx.ASGITransport(app=app) for host, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transports.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no fake host for {request.url.host}", request=request)
        return await transport.handle_async_request(request)


def picker_settings(settings: Settings, **overrides: Any) -> Settings:
    """The test settings with GitHub and GitLab pointing at the fake hosts."""
    return replace(settings, github_url=GITHUB, github_api_url=GITHUB, gitlab_url=GITLAB, **overrides)


def upstream(fake_github: Any = None, fake_gitlab: Any = None) -> httpx.AsyncClient:
    apps = {}
    if fake_github is not None:
        apps["github.test"] = fake_github.app
    if fake_gitlab is not None:
        apps["gitlab.test"] = fake_gitlab.app
    return httpx.AsyncClient(transport=HostRouter(apps), follow_redirects=False)


@contextlib.asynccontextmanager
async def services_for(settings: Settings, http: httpx.AsyncClient) -> AsyncIterator[Services]:
    async with open_services(settings, Seams(http=http)) as services:
        yield services


def github_endpoint(api_url: str = GITHUB, web_url: str = GITHUB) -> HostEndpoint:
    from app.domain.models import GitProvider

    host = web_url.split("://", 1)[1].rstrip("/")
    return HostEndpoint(provider=GitProvider.GITHUB, host=host, web_url=web_url, api_url=api_url)


def gitlab_endpoint(web_url: str = GITLAB) -> HostEndpoint:
    from app.domain.models import GitProvider

    host = web_url.split("://", 1)[1].rstrip("/")
    return HostEndpoint(provider=GitProvider.GITLAB, host=host, web_url=web_url, api_url=f"{web_url}/api/v4")


async def connect(
    services: Services,
    *,
    token: str,
    kind: TokenKind,
    endpoint: HostEndpoint,
    owner: str = "alice",
    login: str = "octocat",
    account_id: str = "1",
    access: RepositoryAccess = RepositoryAccess.ALL,
    resource: TokenResource | None = None,
    manage_access_url: str | None = None,
) -> Integration:
    """Store an integration as if its token had just been verified."""
    method = (
        AuthMethod.OAUTH
        if kind in (TokenKind.GITHUB_APP, TokenKind.GITHUB_OAUTH_APP, TokenKind.GITLAB_OAUTH)
        else AuthMethod.ACCESS_TOKEN
    )
    verified = VerifiedToken(
        token_kind=kind,
        account=GitAccount(id=account_id, login=login),
        repository_access=access,
        granted_permissions=("repo",),
        manage_access_url=manage_access_url,
        resource=resource,
    )
    saved = await services.integrations.save_verified(
        owner, endpoint, method, verified, Credentials(access_token=token), datetime.now(UTC)
    )
    return saved.integration


def app_services(app: ServedApp) -> Services:
    """The ``Services`` a running app built in its lifespan."""
    return app.services
