"""One GitHub account connected by two platform users: a disconnect must not break the other.

The fake GitHub revokes as GitHub documents: ``DELETE /applications/{client_id}/grant`` removes every
token of that GitHub user for the app, ``DELETE /applications/{client_id}/token`` only the one named
(https://docs.github.com/rest/apps/oauth-applications#delete-an-app-authorization, #delete-an-app-token).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.settings.model import Settings
from tests.oauth_support import (
    APP_SLUG,
    DISCONNECT,
    FakeHosts,
    Service,
    fake_hosts,
    integration_id_from,
    login_settings,
    open_service,
)

REPOSITORIES = "query($id: ID!) { integration(id: $id) { repositories { totalCount } } }"


@pytest.fixture(params=[None, APP_SLUG], ids=["oauth-app", "github-app"])
def hosts(request: pytest.FixtureRequest) -> Iterator[FakeHosts]:
    with fake_hosts(app_slug=request.param) as found:
        yield found


@pytest.fixture
async def service(settings: Settings, hosts: FakeHosts) -> AsyncIterator[Service]:
    async with open_service(login_settings(settings, hosts)) as opened:
        yield opened


def token_of_last_login(hosts: FakeHosts, before: set[str]) -> str:
    [token] = [t for t in hosts.github.tokens if t not in before and not t.startswith("ghr_")]
    return token


async def test_a_disconnect_revokes_only_its_own_token_until_the_last_one_goes(
    service: Service, hosts: FakeHosts
) -> None:
    github = hosts.github
    if github.app_slug:
        github.add_installation("octocat")  # installed once; both users sign in to it
    alice_id = integration_id_from(await service.login("GITHUB", user="alice"))
    alice_token = token_of_last_login(hosts, set())
    bob_id = integration_id_from(await service.login("GITHUB", user="bob"))
    bob_token = token_of_last_login(hosts, {alice_token})

    alice_left = await service.execute(DISCONNECT, {"id": alice_id}, user="alice")

    assert alice_left["disconnectGitIntegration"]["hostNotified"] is True
    assert github.revocations == [("token", alice_token)]
    assert github.valid_token(alice_token) is None
    assert github.valid_token(bob_token) is not None
    listed = await service.graphql.execute(REPOSITORIES, {"id": bob_id}, user="bob")
    assert "errors" not in listed, listed
    assert listed["data"]["integration"]["repositories"]["totalCount"] == 3
    [bob] = await service.integrations(user="bob")
    assert bob["status"] == "ACTIVE"

    bob_left = await service.execute(DISCONNECT, {"id": bob_id}, user="bob")

    assert bob_left["disconnectGitIntegration"]["hostNotified"] is True
    assert github.revocations == [("token", alice_token), ("grant", bob_token)]
    assert github.valid_token(bob_token) is None


async def test_an_access_token_of_the_same_account_does_not_keep_the_grant(
    service: Service, hosts: FakeHosts
) -> None:
    # Pasted tokens are not part of the app's grant: the last *login* of the account revokes it.
    github = hosts.github
    github.add_classic_token("ghp_" + "b" * 36, "octocat", ["repo", "admin:repo_hook"])
    connected = await service.execute(
        "mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) { __typename } }",
        {"input": {"provider": "GITHUB", "token": "ghp_" + "b" * 36}},
        user="bob",
    )
    assert connected["connectGitToken"]["__typename"] == "Integration"
    alice_id = integration_id_from(await service.login("GITHUB", user="alice"))
    alice_token = token_of_last_login(hosts, {"ghp_" + "b" * 36})

    await service.execute(DISCONNECT, {"id": alice_id}, user="alice")

    assert github.revocations == [("grant", alice_token)]
    assert github.valid_token("ghp_" + "b" * 36) is not None
