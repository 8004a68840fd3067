"""GitHub Enterprise with only ``GITHUB_URL`` set: the API address is derived, a github.com API paired
with another GitHub stops the start, and errors name the host the request actually went to.

GitHub Enterprise Server serves its API at ``https://HOST/api/v3`` (the fake GitHub with
``api_prefix="/api/v3"``); Enterprise Cloud with data residency at ``https://api.SUB.ghe.com``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from app.domain.errors import ConfigurationError, ProviderUnavailableError
from app.domain.models import GitProvider
from app.hosts.registry import HostRegistry, configured_origins
from app.net.client import RetryPolicy, Upstream
from app.net.guard import ConfiguredOrigin, HostGuard
from app.settings.model import Settings
from tests.fakes import scenarios
from tests.fakes.github import FakeGitHub

GHES = "http://ghe.test"
NO_RETRY = RetryPolicy(attempts=1)


@pytest.mark.parametrize(
    ("github_url", "api_url"),
    [
        ("https://github.com", "https://api.github.com"),
        ("https://ghe.example.com", "https://ghe.example.com/api/v3"),
        ("https://ghe.example.com:8443/", "https://ghe.example.com:8443/api/v3"),
        ("https://acme.ghe.com", "https://api.acme.ghe.com"),
    ],
)
def test_the_api_address_is_derived_from_github_url_when_unset(github_url: str, api_url: str) -> None:
    settings = Settings.from_env({"GITHUB_URL": github_url})

    assert settings.github_api_url == api_url
    # Configured: trusted as such, for GitHub.
    assert ConfiguredOrigin.of(api_url, GitProvider.GITHUB) in configured_origins(settings)


def test_an_explicit_api_address_is_kept() -> None:
    settings = Settings.from_env(
        {"GITHUB_URL": "https://ghe.example.com", "GITHUB_API_URL": "https://api.ghe.example.com/"}
    )

    assert settings.github_api_url == "https://api.ghe.example.com"


@pytest.mark.parametrize("github_url", ["https://ghe.example.com", "https://acme.ghe.com"])
def test_another_github_paired_with_github_coms_api_stops_the_start(github_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"GITHUB_URL": github_url, "GITHUB_API_URL": "https://api.github.com"})

    message = str(caught.value)
    assert "GITHUB_URL" in message and "GITHUB_API_URL" in message
    assert github_url in message
    assert "\n" not in message


@pytest.fixture
def ghes() -> FakeGitHub:
    return scenarios.default_github(FakeGitHub(api_prefix="/api/v3"), repositories=3)


@pytest.fixture
async def registry(ghes: FakeGitHub) -> AsyncIterator[HostRegistry]:
    settings = Settings.from_env({"GITHUB_URL": GHES})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ghes.app)) as client:
        yield HostRegistry(settings, Upstream(client, retry=NO_RETRY), HostGuard())


async def test_a_token_for_github_enterprise_server_goes_to_its_api(
    ghes: FakeGitHub, registry: HostRegistry
) -> None:
    verified = await registry.host(registry.github).verify_token(scenarios.GITHUB_CLASSIC_TOKEN)

    assert verified.account.login == scenarios.GITHUB_USER
    assert verified.manage_access_url == f"{GHES}/settings/tokens"
    assert ghes.count("GET", "/api/v3/user") == 1


async def test_errors_name_the_enterprise_host_that_was_contacted(
    ghes: FakeGitHub, registry: HostRegistry
) -> None:
    ghes.fail_next(502, path_prefix="/api/v3/user")

    with pytest.raises(ProviderUnavailableError) as caught:
        await registry.host(registry.github).verify_token(scenarios.GITHUB_CLASSIC_TOKEN)

    assert caught.value.message.startswith("ghe.test is having trouble (HTTP 502)")


async def test_errors_about_github_com_name_its_api_host() -> None:
    registry_settings = Settings.from_env({})
    with respx.mock(assert_all_mocked=True) as router:
        router.get("https://api.github.com/user").mock(side_effect=httpx.ConnectError("refused"))
        async with httpx.AsyncClient() as client:
            registry = HostRegistry(registry_settings, Upstream(client, retry=NO_RETRY), HostGuard())
            with pytest.raises(ProviderUnavailableError) as caught:
                await registry.host(registry.github).verify_token(scenarios.GITHUB_CLASSIC_TOKEN)

    assert caught.value.message.startswith("Could not reach api.github.com (connection failed)")
