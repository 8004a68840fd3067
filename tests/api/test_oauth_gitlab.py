"""Connect with GitLab, end to end: the service in process, a fake GitLab (Doorkeeper) on loopback that
checks the state round trip, ``redirect_uri``, the client secret and the PKCE verifier.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.composition import Seams
from app.graphql.types.node import from_global_id
from app.graphql.types.repository import repository_global_id
from app.settings.model import Settings
from tests.fakes._gitlab_models import DEVELOPER
from tests.oauth_support import (
    CALLBACK,
    COMPLETE_OAUTH,
    DISCONNECT,
    FakeHosts,
    Service,
    fake_hosts,
    handed_on,
    integration_id_from,
    login_settings,
    open_service,
    query_of,
)


@pytest.fixture
def hosts() -> Iterator[FakeHosts]:
    with fake_hosts() as found:
        yield found


@pytest.fixture
async def service(settings: Settings, hosts: FakeHosts) -> AsyncIterator[Service]:
    async with open_service(login_settings(settings, hosts)) as opened:
        yield opened


async def complete(service: Service, **values: Any) -> dict[str, Any]:
    data = await service.execute(COMPLETE_OAUTH, {"input": values})
    result: dict[str, Any] = data["completeGitOAuth"]
    return result


async def test_gitlab_login_checks_the_token_like_a_pasted_one_and_stores_both_tokens(
    service: Service, hosts: FakeHosts
) -> None:
    authorization = await service.start("GITLAB")
    url = authorization["authorizationUrl"]
    params = query_of(url)
    assert url.startswith(f"{hosts.gitlab_url}/oauth/authorize?")
    assert params["response_type"] == "code"
    assert params["client_id"] == hosts.gitlab.client_id
    assert params["redirect_uri"] == CALLBACK
    assert params["scope"] == "api read_repository write_repository"
    assert params["code_challenge_method"] == "S256"
    assert params["state"] == authorization["state"]

    location = await service.visit_host(url)
    response = await service.callback(location)
    assert query_of(response.headers["location"])["code"] == query_of(location)["code"]
    assert await service.integrations() == []
    result = await complete(service, **handed_on(response))

    [integration] = await service.integrations()
    assert integration["id"] == integration_id_from(result)
    assert integration["provider"] == "GITLAB"
    assert integration["authMethod"] == "OAUTH"
    assert integration["tokenKind"] == "GITLAB_OAUTH"
    assert integration["account"]["login"] == "alice"
    assert set(integration["grantedPermissions"]) >= {"api", "read_repository", "write_repository"}
    expires_at = datetime.fromisoformat(integration["expiresAt"])
    assert timedelta(hours=1, minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=2)
    stored = await service.db["integrations"].find_one({})
    assert stored["secrets"]["accessToken"] and stored["secrets"]["refreshToken"]
    assert not any(token in str(stored) for token in hosts.gitlab.tokens)


async def test_gitlab_refuses_a_code_for_another_redirect_uri(service: Service) -> None:
    authorization = await service.start("GITLAB")
    location = await service.visit_host(authorization["authorizationUrl"])
    await service.db["oauth_states"].update_one({}, {"$set": {"redirectUri": "http://elsewhere.test/cb"}})

    result = await complete(service, state=authorization["state"], code=query_of(location)["code"])

    assert result["__typename"] == "OAuthExchangeError"
    assert result["reason"] == "invalid_grant"
    assert await service.integrations() == []


async def test_gitlab_refuses_a_wrong_verifier(service: Service) -> None:
    authorization = await service.start("GITLAB")
    location = await service.visit_host(authorization["authorizationUrl"])
    await service.db["oauth_states"].update_one({}, {"$set": {"codeVerifier": "y" * 64}})

    result = await complete(service, **handed_on(await service.callback(location)))

    assert result["__typename"] == "OAuthExchangeError"
    assert result["reason"] == "invalid_grant"
    assert await service.integrations() == []


async def test_a_gitlab_user_below_maintainer_is_refused(service: Service, hosts: FakeHosts) -> None:
    gitlab = hosts.gitlab
    gitlab.add_user("dev")
    gitlab.add_member("dev", gitlab.group("acme"), DEVELOPER)
    gitlab.approving_user = "dev"
    authorization = await service.start("GITLAB")
    location = await service.visit_host(authorization["authorizationUrl"])

    result = await complete(service, state=authorization["state"], code=query_of(location)["code"])

    assert result["__typename"] == "InsufficientRoleError"
    assert result["required"] == "Maintainer"
    assert result["actual"] == "Developer"
    assert await service.integrations() == []


async def test_an_expiring_gitlab_token_is_refreshed_once_for_concurrent_requests(
    service: Service, hosts: FakeHosts
) -> None:
    hosts.gitlab.code_token_lifetime = 30
    integration_id = integration_id_from(await service.login("GITLAB"))
    hosts.gitlab.hang_next(0.3, path_prefix="/oauth/token")

    results = await asyncio.gather(*(service.verify(integration_id) for _ in range(20)))

    assert hosts.gitlab.refresh_count == 1
    assert all(r["__typename"] == "Integration" and r["status"] == "ACTIVE" for r in results), results
    assert datetime.fromisoformat(results[0]["expiresAt"]) - datetime.now(UTC) > timedelta(hours=1)


async def test_a_refresh_gitlab_refuses_asks_for_reconnect(service: Service, hosts: FakeHosts) -> None:
    hosts.gitlab.code_token_lifetime = 30
    integration_id = integration_id_from(await service.login("GITLAB"))
    for record in hosts.gitlab.refresh_tokens.values():
        record.used = True  # GitLab answers invalid_grant
    before = await service.db["integrations"].find_one({})

    verified = await service.verify(integration_id)  # the first refusal: the refresh token is spent

    assert verified["status"] == "NEEDS_RECONNECT"
    after = await service.db["integrations"].find_one({})
    assert after["secrets"] == before["secrets"]
    assert "refreshLease" not in after


async def test_a_refresh_gitlab_cannot_answer_or_refuses_the_services_client_keeps_the_login(
    service: Service, hosts: FakeHosts
) -> None:
    hosts.gitlab.code_token_lifetime = 30
    integration_id = integration_id_from(await service.login("GITLAB"))
    configured = hosts.gitlab.client_secret
    hosts.gitlab.fail_next(503, path_prefix="/oauth/token")

    down = await service.verify(integration_id)
    hosts.gitlab.client_secret = "rotated-at-gitlab"  # GitLab answers 401 invalid_client
    wrong_client = await service.verify(integration_id)

    assert down["__typename"] == wrong_client["__typename"] == "ProviderUnavailableError"
    stored = await service.db["integrations"].find_one({})
    assert stored["status"] == "ACTIVE"
    assert "refreshLease" not in stored
    hosts.gitlab.client_secret = configured
    assert (await service.verify(integration_id))["status"] == "ACTIVE"
    assert hosts.gitlab.refresh_count == 1


async def test_disconnecting_a_gitlab_login_revokes_it(service: Service, hosts: FakeHosts) -> None:
    integration_id = integration_id_from(await service.login("GITLAB"))
    [access_token] = [t for t, record in hosts.gitlab.tokens.items() if record.kind == "oauth"]

    data = await service.execute(DISCONNECT, {"id": integration_id})

    assert data["disconnectGitIntegration"]["hostNotified"] is True
    assert hosts.gitlab.revocations == [("revoke", access_token)]
    assert hosts.gitlab.valid_token(access_token) is None
    assert await service.integrations() == []


async def test_disconnecting_when_gitlab_cannot_be_reached_still_removes_the_integration(
    settings: Settings, hosts: FakeHosts
) -> None:
    async with open_service(login_settings(settings, hosts)) as service:
        integration_id = integration_id_from(await service.login("GITLAB"))
        hosts.gitlab.fail_next(503, count=3, path_prefix="/oauth/revoke")

        data = await service.execute(DISCONNECT, {"id": integration_id})

        result = data["disconnectGitIntegration"]
        assert result["__typename"] == "DisconnectedIntegration"
        assert result["hostNotified"] is False
        assert "could not be told" in result["message"]
        assert await service.integrations() == []


async def test_a_request_whose_token_a_concurrent_refresh_spent_goes_on_with_the_new_one(
    settings: Settings, hosts: FakeHosts
) -> None:
    # A refresh invalidates the old access token at once (the fake GitLab revokes it, as GitLab and
    # GitHub do): a request that took the token just before another request renewed it must not read
    # the host's 401 as a refused login.
    now = [datetime.now(UTC)]
    seams = Seams(clock=lambda: now[0])
    async with open_service(login_settings(settings, hosts), seams=seams) as service:
        integration_id = integration_id_from(await service.login("GITLAB"))
        project = next(iter(hosts.gitlab.projects.values()))
        branches = f"/api/v4/projects/{project.id}/repository/branches"
        local = from_global_id(integration_id)
        assert local is not None
        hosts.gitlab.hang_next(0.5, path_prefix=branches)
        reading = asyncio.ensure_future(
            service.execute(
                "query($id: ID!) { node(id: $id) { ... on Repository { branches { totalCount } } } }",
                {"id": repository_global_id(local[1], str(project.id))},
            )
        )
        while not any(r.path.startswith(branches) for r in hosts.gitlab.requests):
            await asyncio.sleep(0.01)  # the read holds the old token, its request held by the host
        now[0] += timedelta(hours=2)  # due: the next request renews the login, spending the old token
        renewed = await service.verify(integration_id)

        read = await reading
        stored = await service.db["integrations"].find_one({})

    assert renewed["status"] == "ACTIVE" and hosts.gitlab.refresh_count == 1
    assert read["node"]["branches"]["totalCount"] >= 1, read
    assert stored is not None and stored["status"] == "ACTIVE"
