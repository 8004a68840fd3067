"""``APP_ENV=production`` does not use the fake Git hosts of the tests and of ``make demo``.

Every answer of a fake carries ``X-Fake-Git-Host``, and production's client refuses it before the service
acts on anything it says — however the fake is reached (its loopback address as ``make demo`` configures
it, a proxy, a port forward, a name that resolves to it). Where a host listens is no sign of a fake:
production starts with Git hosts on loopback (an egress proxy, a sidecar or port forward to a self-hosted
GitLab, a GitHub Enterprise on the same machine: configured hosts are trusted as configured), so the
demo's own variables start too, and the marker is what keeps its fakes out.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.net.guard import HostGuard
from app.net.transport import guarded_client
from app.net.transports import FAKE_HOST_HEADER, FakeHostRefused
from app.settings.model import Settings
from demo.runner import service_environment
from tests.conftest import JWT_SECRET, KEY_A, GraphQLTestClient, running_app
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


def test_production_starts_with_the_demo_configuration() -> None:
    """Nothing but loopback tells the demo's variables from a real deployment's: the marker keeps it out."""
    settings = Settings.from_env(demo_environment() | PRODUCTION)
    assert settings.production
    assert settings.github_url == "http://127.0.0.1:8101"
    assert settings.git_host_allowlist == ("127.0.0.1",)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GITHUB_URL", "http://localhost:8101"),  # a GitHub Enterprise on the same machine
        ("GITHUB_API_URL", "http://[::1]:8101"),
        ("GITLAB_URL", "http://127.0.0.1:8102/gitlab"),  # a sidecar or port forward to a self-hosted GitLab
        ("GITLAB_URL", "http://0.0.0.0:8102"),
        ("GITLAB_URL", "http://gitlab.localhost:8102"),
        ("GIT_HOST_ALLOWLIST", "10.0.0.0/8,127.0.0.1"),  # an egress proxy on loopback
        ("GIT_HOST_ALLOWLIST", "localhost"),
        ("GIT_HOST_ALLOWLIST", "127.0.0.0/8"),
    ],
)
def test_production_starts_with_git_hosts_on_loopback(name: str, value: str) -> None:
    env = PRODUCTION | {"AUTH_JWT_SECRET": "s" * 48, name: value}
    if name == "GITHUB_API_URL":
        env["GITHUB_URL"] = "https://github.example.com"
    settings = Settings.from_env(env)
    assert settings.production
    configured = {
        "GITHUB_URL": settings.github_url,
        "GITHUB_API_URL": settings.github_api_url,
        "GITLAB_URL": settings.gitlab_url,
        "GIT_HOST_ALLOWLIST": ",".join(settings.git_host_allowlist),
    }
    assert configured[name] == value


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


@pytest.mark.parametrize(
    ("provider", "token"),
    [("GITHUB", scenarios.GITHUB_CLASSIC_TOKEN), ("GITLAB", scenarios.GITLAB_PERSONAL_TOKEN)],
)
async def test_production_started_against_fakes_on_loopback_refuses_their_answers(
    settings: Settings, provider: str, token: str
) -> None:
    """The start-up accepts the fakes' loopback addresses; the first answer of one stops the connect."""
    github = scenarios.default_github(FakeGitHub(), repositories=3)
    gitlab = scenarios.default_gitlab(FakeGitLab(), repositories=3)
    with run_in_thread(github.app) as github_url, run_in_thread(gitlab.app) as gitlab_url:
        assert settings.mongodb_uri is not None
        production = Settings.from_env(
            {
                "APP_ENV": "production",
                "MONGODB_URI": settings.mongodb_uri.reveal(),
                "MONGODB_DATABASE": settings.mongodb_database,
                "DATA_DIR": str(settings.data_dir),
                "ENCRYPTION_KEYS": f"a:{KEY_A}",
                "AUTH_JWT_SECRET": JWT_SECRET,  # the test client's: dev tokens are refused in production
                "GITHUB_URL": github_url,
                "GITHUB_API_URL": github_url,
                "GITLAB_URL": gitlab_url,
                "GIT_HOST_ALLOWLIST": "127.0.0.1",
            }
        )
        async with running_app(production) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                client = GraphQLTestClient(http, settings)
                body = await client.execute(CONNECT, {"input": {"provider": provider, "token": token}})
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "ProviderUnavailableError", result
    assert "fake Git host" in result["message"]
    assert token not in result["message"]
    fake = github if provider == "GITHUB" else gitlab
    assert fake.count() == 1, "one answer read, refused, never retried"
    assert (gitlab if provider == "GITHUB" else github).count() == 0
