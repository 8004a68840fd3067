"""One scenario end to end: `python -m app serve` against a fake GitHub and a fake GitLab on loopback.

The service process talks to the fakes over real sockets; the caller uses a real GraphQL client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.httpx import HTTPXAsyncTransport
from starlette.applications import Starlette
from starlette.routing import Mount

from app.settings.model import Settings
from app.settings.values import Secret
from tests.conftest import JWT_SECRET, KEY_A, token_for
from tests.fakes import scenarios
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.server import run_in_thread
from tests.harness import serve, service_environment

pytestmark = pytest.mark.uvicorn

CONNECT = """
    mutation Connect($input: ConnectGitTokenInput!) {
      connectGitToken(input: $input) {
        __typename
        ... on Integration { id host tokenKind repositoryAccess grantedPermissions account { login } }
        ... on Error { message }
        ... on MissingPermissionsError { missing }
      }
    }
"""


async def connect(session: Any, **values: str) -> dict[str, Any]:
    result: dict[str, Any] = await session.execute(GraphQLRequest(CONNECT, variable_values={"input": values}))
    return result["connectGitToken"]  # type: ignore[no-any-return]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeGitHub, FakeGitLab, FakeGitLab, str, str, str]]:
    github = scenarios.default_github(FakeGitHub(), repositories=12)
    github.add_fine_grained_token("github_pat_" + "NoHooks".ljust(82, "0"), "octocat",
                                  {**scenarios.GITHUB_FULL_PERMISSIONS, "webhooks": "read"}, "all")  # fmt: skip
    gitlab = scenarios.default_gitlab(FakeGitLab(), repositories=9)
    self_hosted = scenarios.default_gitlab(FakeGitLab(), repositories=3)
    with (
        run_in_thread(github.app) as github_url,
        run_in_thread(gitlab.app) as gitlab_url,
        run_in_thread(Starlette(routes=[Mount("/gitlab", app=self_hosted.app)])) as self_hosted_url,
    ):
        yield github, gitlab, self_hosted, github_url, gitlab_url, self_hosted_url


async def test_tokens_for_both_hosts_are_checked_and_stored_through_a_served_process(
    fakes: tuple[FakeGitHub, FakeGitLab, FakeGitLab, str, str, str], mongo_uri: str, tmp_path: Path
) -> None:
    github, gitlab, self_hosted, github_url, gitlab_url, self_hosted_url = fakes
    gitlab.clear_requests()
    env = service_environment(
        DATA_DIR=str(tmp_path), MONGODB_URI=mongo_uri, MONGODB_DATABASE="e2e_tokens",
        ENCRYPTION_KEYS=f"a:{KEY_A}", AUTH_JWT_SECRET=JWT_SECRET,
        GITHUB_URL=github_url, GITHUB_API_URL=github_url, GITLAB_URL=gitlab_url,
        GIT_HOST_ALLOWLIST="127.0.0.1",
    )  # fmt: skip
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log, serve(env, stderr=log) as served:
        url = served.url
        bearer = token_for(Settings(auth_jwt_secret=Secret(JWT_SECRET)), "alice")
        transport = HTTPXAsyncTransport(
            url=f"{url}/graphql", headers={"Authorization": f"Bearer {bearer}"}, timeout=30
        )
        async with Client(transport=transport) as session:
            classic = await connect(session, provider="GITHUB", token=scenarios.GITHUB_CLASSIC_TOKEN)
            fine = await connect(session, provider="GITHUB", token=scenarios.GITHUB_FINE_GRAINED_TOKEN)
            no_hooks = await connect(
                session, provider="GITHUB", token="github_pat_" + "NoHooks".ljust(82, "0")
            )
            personal = await connect(session, provider="GITLAB", token=scenarios.GITLAB_PERSONAL_TOKEN)
            group = await connect(
                session,
                provider="GITLAB",
                token=scenarios.GITLAB_GROUP_TOKEN,
                host=f"{self_hosted_url}/gitlab/",
            )
            listed = await session.execute(gql("{ integrations { host tokenKind account { login } } }"))
    stderr = log_path.read_text()

    assert classic["__typename"] == "Integration"
    assert classic["tokenKind"] == "GITHUB_CLASSIC"
    # Both GitHub tokens act as octocat on the same host: the second connect updates the first.
    assert fine["tokenKind"] == "GITHUB_FINE_GRAINED"
    assert fine["id"] == classic["id"]
    assert no_hooks["__typename"] == "MissingPermissionsError"
    assert no_hooks["missing"] == ["webhooks:write"]
    assert github.side_effects == [], "permission probes must not change anything at the host"
    assert personal["tokenKind"] == "GITLAB_PERSONAL"
    assert group["tokenKind"] == "GITLAB_GROUP"
    assert group["host"] == f"{self_hosted_url.removeprefix('http://')}/gitlab"
    assert group["repositoryAccess"] == "SELECTED"
    assert [i["tokenKind"] for i in listed["integrations"]] == [
        "GITHUB_FINE_GRAINED",
        "GITLAB_PERSONAL",
        "GITLAB_GROUP",
    ]
    assert self_hosted.count(path_prefix="/api/v4/personal_access_tokens/self") >= 1
    assert gitlab.count(path_prefix="/api/v4/personal_access_tokens/self") >= 1
    for secret in (
        scenarios.GITHUB_CLASSIC_TOKEN,
        scenarios.GITLAB_PERSONAL_TOKEN,
        scenarios.GITLAB_GROUP_TOKEN,
    ):
        assert secret not in stderr
    assert '"operation": "Connect"' in stderr, "one JSON log line per request names the operation"
