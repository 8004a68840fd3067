"""Issue 11, item 4: the configured hosts are no backdoor.

Before, every name equal to a configured host (``GITHUB_URL``, ``GITHUB_API_URL``, ``GITLAB_URL``,
even ``AUTH_JWKS_URL``) skipped the guard's scheme, port and address checks, whatever it was typed
for. With ``GITHUB_URL=http://localhost:<port>``, ``connectGitToken(provider: GITLAB, host:
"http://localhost:<any port>")`` was accepted and the service sent a token to whatever listened
there. Now a configured address is trusted exactly as configured (scheme, host and port) and only
for its own Git host; the JWKS host is never a Git host. The service runs with the HTTP client it
builds in production (the guard in its network backend) and no ``GIT_HOST_ALLOWLIST``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from app.domain.errors import HostNotAllowedError
from app.domain.models import GitProvider
from app.hosts.registry import HostRegistry, configured_origins
from app.net.client import Upstream
from app.net.guard import HostGuard
from app.settings.model import Settings
from tests.fakes import scenarios
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.server import run_in_thread
from tests.oauth_support import Service, open_service

CONNECT = """mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) {
  __typename ... on Integration { provider host account { login } } ... on Error { code message } } }"""


@dataclass
class Hosts:
    github: FakeGitHub
    github_port: int
    gitlab: FakeGitLab
    gitlab_port: int


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    github = scenarios.default_github(FakeGitHub(), repositories=2)
    gitlab = scenarios.default_gitlab(FakeGitLab(), repositories=2)
    with run_in_thread(github.app) as github_url, run_in_thread(gitlab.app) as gitlab_url:
        yield Hosts(github, int(github_url.rsplit(":", 1)[1]), gitlab, int(gitlab_url.rsplit(":", 1)[1]))


@pytest.fixture
async def service(settings: Settings, hosts: Hosts) -> AsyncIterator[Service]:
    github = f"http://localhost:{hosts.github_port}"
    configured = replace(settings, github_url=github, github_api_url=github, git_host_allowlist=())
    async with open_service(configured, own_http_client=True) as opened:
        yield opened


async def connect(service: Service, **values: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await service.execute(CONNECT, {"input": values}))["connectGitToken"]
    return result


@pytest.mark.parametrize("port_of", ["gitlab_port", "github_port"])
async def test_a_gitlab_host_on_the_configured_github_name_is_refused_before_any_request(
    service: Service, hosts: Hosts, port_of: str
) -> None:
    host = f"http://localhost:{getattr(hosts, port_of)}"

    result = await connect(service, provider="GITLAB", host=host, token=scenarios.GITLAB_PERSONAL_TOKEN)

    assert result["__typename"] == "HostNotAllowedError", result
    assert hosts.gitlab.requests == [] and hosts.github.requests == [], "nothing was sent anywhere"
    assert await service.db["integrations"].count_documents({}) == 0


@pytest.mark.parametrize("host", [None, "http://localhost:{port}"])
async def test_github_at_its_configured_address_still_works(
    service: Service, hosts: Hosts, host: str | None
) -> None:
    values = {"provider": "GITHUB", "token": scenarios.GITHUB_CLASSIC_TOKEN}
    if host is not None:
        values["host"] = host.format(port=hosts.github_port)

    result = await connect(service, **values)

    assert result["__typename"] == "Integration", result
    assert result["host"] == f"localhost:{hosts.github_port}"
    assert result["account"]["login"] == scenarios.GITHUB_USER


def registry_for(settings: Settings) -> HostRegistry:
    guard = HostGuard(configured=configured_origins(settings))
    return HostRegistry(settings, Upstream(httpx.AsyncClient()), guard)


async def test_the_jwks_host_is_never_a_git_host() -> None:
    settings = Settings.from_env(
        {
            "AUTH_JWKS_URL": "http://localhost:18103/.well-known/jwks.json",
            "AUTH_ISSUER": "https://idp.example.com/",
            "AUTH_AUDIENCE": "git-integrations",
        }
    )

    assert all(origin.port != 18103 for origin in configured_origins(settings))
    with pytest.raises(HostNotAllowedError):
        await registry_for(settings).endpoint_for(GitProvider.GITLAB, "http://localhost:18103")


async def test_gitlab_at_its_configured_address_is_trusted_but_not_on_another_port() -> None:
    settings = Settings.from_env({"GITLAB_URL": "http://localhost:18102"})
    registry = registry_for(settings)

    assert (await registry.endpoint_for(GitProvider.GITLAB, "localhost:18102")) == registry.gitlab
    with pytest.raises(HostNotAllowedError):
        await registry.endpoint_for(GitProvider.GITLAB, "http://localhost:18104")
