"""``APP_ENV=production`` does not talk to the fake Git hosts of the tests and of ``make demo``.

Two locks: the settings refuse a configuration that points at loopback, where the fakes serve (``make
demo``'s own variables, with production's required ones added, do not start); and every answer of a fake
carries ``X-Fake-Git-Host``, which production's client refuses — for a fake reached some other way
(a proxy, a port forward, a hostname that resolves to it), before the service acts on anything it says.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from app.domain.errors import ConfigurationError
from app.net.guard import HostGuard
from app.net.transport import guarded_client
from app.net.transports import FAKE_HOST_HEADER, FakeHostRefused
from app.settings import Settings
from demo.runner import service_environment
from tests.conftest import KEY_A, GraphQLTestClient, running_app
from tests.fakes import scenarios
from tests.fakes._host import FAKE_HOST_HEADER as FAKES_HEADER
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.server import run_in_thread

PRODUCTION = {
    "APP_ENV": "production",
    "MONGODB_URI": "mongodb://db.internal:27017/?replicaSet=rs0",
    "ENCRYPTION_KEYS": f"a:{KEY_A}",
}


def demo_environment() -> dict[str, str]:
    return service_environment(
        service_url="http://127.0.0.1:8100",
        page_url="http://127.0.0.1:8103",
        github_url="http://127.0.0.1:8101",
        gitlab_url="http://127.0.0.1:8102",
        data_dir=".data/demo",
        jwt_secret="s" * 48,
        key=KEY_A,
    )


def test_the_demo_configuration_starts_in_development() -> None:
    settings = Settings.from_env(demo_environment())
    assert settings.github_url == "http://127.0.0.1:8101"


def test_production_refuses_the_demo_configuration() -> None:
    with pytest.raises(ConfigurationError, match=r"^GITHUB_URL: .*loopback.*make demo"):
        Settings.from_env(demo_environment() | PRODUCTION)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GITHUB_URL", "http://localhost:8101"),
        ("GITHUB_API_URL", "http://[::1]:8101"),
        ("GITLAB_URL", "http://127.0.0.2:8102/gitlab"),
        ("GITLAB_URL", "http://2130706433:8102"),  # 127.0.0.1 spelled as one number
        ("GITLAB_URL", "http://0.0.0.0:8102"),  # reaches the machine's own sockets
        ("GITLAB_URL", "http://[::ffff:127.0.0.1]:8102"),
        ("GITLAB_URL", "http://gitlab.localhost:8102"),
        ("GIT_HOST_ALLOWLIST", "10.0.0.0/8,127.0.0.1"),
        ("GIT_HOST_ALLOWLIST", "localhost"),
    ],
)
def test_production_refuses_each_loopback_git_host(name: str, value: str) -> None:
    env = PRODUCTION | {"AUTH_JWT_SECRET": "s" * 48, name: value}
    if name == "GITHUB_API_URL":
        env["GITHUB_URL"] = "https://github.example.com"
    with pytest.raises(ConfigurationError, match=rf"^{name}: .*loopback"):
        Settings.from_env(env)


def test_production_accepts_real_hosts_and_private_networks() -> None:
    settings = Settings.from_env(
        PRODUCTION
        | {
            "AUTH_JWT_SECRET": "s" * 48,
            "GITLAB_URL": "https://gitlab.internal",
            "GIT_HOST_ALLOWLIST": "10.0.0.0/8",
        }
    )
    assert settings.gitlab_url == "https://gitlab.internal"


def test_the_fakes_and_the_service_name_the_same_header() -> None:
    assert FAKES_HEADER == FAKE_HOST_HEADER


@pytest.mark.parametrize("fake", [FakeGitHub(), FakeGitLab()], ids=["github", "gitlab"])
async def test_every_answer_of_a_fake_says_so_and_production_refuses_it(fake: Any) -> None:
    guard = HostGuard(allowlist=("127.0.0.1",))
    with run_in_thread(fake.app) as url:
        async with guarded_client(guard, timeout_seconds=5, user_agent="t") as development:
            answer = await development.get(f"{url}/user")  # 401 without a token: still marked
            assert answer.headers[FAKE_HOST_HEADER] == type(fake).__name__
        async with guarded_client(
            guard, timeout_seconds=5, user_agent="t", refuse_fake_hosts=True
        ) as production:
            with pytest.raises(FakeHostRefused, match="fake Git host"):
                await production.get(f"{url}/user")
            with pytest.raises(FakeHostRefused):
                await production.get(f"{url}/_fake/state")


CONNECT = """
mutation($input: ConnectGitTokenInput!) {
  connectGitToken(input: $input) { __typename ... on Error { code message } }
}
"""


async def test_a_production_service_reaching_a_fake_answers_that_it_does_not_use_it(
    settings: Settings,
) -> None:
    """Settings made in code (past the start-up check), as if the fake were reached by its address."""
    github = scenarios.default_github(FakeGitHub(), repositories=3)
    with run_in_thread(github.app) as url:
        production = replace(
            settings,
            app_env="production",
            github_url=url,
            github_api_url=url,
            git_host_allowlist=("127.0.0.1",),
        )
        async with running_app(production) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                client = GraphQLTestClient(
                    http, settings
                )  # the same JWT secret; dev tokens are refused in production
                body = await client.execute(
                    CONNECT, {"input": {"provider": "GITHUB", "token": scenarios.GITHUB_CLASSIC_TOKEN}}
                )
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "ProviderUnavailableError", result
    assert "fake Git host" in result["message"]
    assert scenarios.GITHUB_CLASSIC_TOKEN not in result["message"]
    assert github.count("GET", "/user") == 1, "one answer read, refused, never retried"
