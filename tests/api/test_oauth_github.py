"""Connect with GitHub, end to end: the service in process, a fake GitHub on loopback that checks the
state round trip, ``redirect_uri``, the client secret and the PKCE verifier as GitHub does.

The callback only hands ``state`` and ``code`` on to ``returnTo``; the signed-in frontend finishes
with ``completeGitOAuth`` (tests/security/test_login_binding.py has the attacks this prevents).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from app.domain.models import TokenKind
from app.hosts.oauth import code_challenge
from app.settings.model import Settings
from app.storage.oauth_states import state_digest
from tests.oauth_support import (
    APP_SLUG,
    CALLBACK,
    COMPLETE_OAUTH,
    RETURN_TO,
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
def app_hosts() -> Iterator[FakeHosts]:
    """GitHub acting as the GitHub App ``deploy-bot`` (installations, expiring ``ghu_`` tokens)."""
    with fake_hosts(app_slug=APP_SLUG) as found:
        yield found


@pytest.fixture
async def service(settings: Settings, hosts: FakeHosts) -> AsyncIterator[Service]:
    async with open_service(login_settings(settings, hosts)) as opened:
        yield opened


@pytest.fixture
async def app_service(settings: Settings, app_hosts: FakeHosts) -> AsyncIterator[Service]:
    async with open_service(login_settings(settings, app_hosts)) as opened:
        yield opened


async def complete(service: Service, user: str = "alice", **values: Any) -> dict[str, Any]:
    data = await service.execute(COMPLETE_OAUTH, {"input": values}, user=user)
    result: dict[str, Any] = data["completeGitOAuth"]
    return result


async def code_for(service: Service, authorization: dict[str, Any]) -> str:
    """The browser at GitHub: the code it comes back with (not yet brought to the service)."""
    return query_of(await service.visit_host(authorization["authorizationUrl"]))["code"]


# --- OAuth App ------------------------------------------------------------------------------------


async def test_oauth_app_login_hands_the_code_to_the_frontend_which_completes_it(
    service: Service, hosts: FakeHosts
) -> None:
    authorization = await service.start("GITHUB")
    url = authorization["authorizationUrl"]
    params = query_of(url)
    assert url.startswith(f"{hosts.github_url}/login/oauth/authorize?")
    assert params["client_id"] == hosts.github.client_id
    assert params["redirect_uri"] == CALLBACK
    assert params["scope"] == "repo admin:repo_hook read:user"
    assert params["state"] == authorization["state"]
    assert len(authorization["state"]) >= 43  # 32 random bytes
    assert params["code_challenge_method"] == "S256"
    expires_at = datetime.fromisoformat(authorization["expiresAt"])
    assert timedelta(minutes=9) < expires_at - datetime.now(UTC) <= timedelta(minutes=10)

    location = await service.visit_host(url)
    code = query_of(location)["code"]
    response = await service.callback(location)

    assert response.status_code == 302
    back = response.headers["location"]
    assert back.startswith("https://app.example.com/settings/git?")
    assert query_of(back) == {"tab": "integrations", "state": authorization["state"], "code": code}
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert await service.integrations() == [], "the callback connects nothing by itself"
    state_doc = await service.db["oauth_states"].find_one({})
    assert state_doc["usedAt"] is None

    result = await complete(service, **handed_on(response))

    [integration] = await service.integrations()
    assert integration["id"] == integration_id_from(result)
    assert integration["authMethod"] == "OAUTH"
    assert integration["tokenKind"] == "GITHUB_OAUTH_APP"
    assert integration["repositoryAccess"] == "ALL"
    assert {"repo", "admin:repo_hook"} <= set(integration["grantedPermissions"])
    assert integration["account"]["login"] == "octocat"
    assert integration["expiresAt"] is None  # OAuth App tokens do not expire

    access_token = next(t for t in hosts.github.tokens if t.startswith("gho_"))
    stored = await service.db["integrations"].find_one({})
    assert access_token not in str(stored)
    assert stored["secrets"]["accessToken"] and stored["secrets"]["refreshToken"] is None
    state_doc = await service.db["oauth_states"].find_one({})
    assert state_doc["state"] == state_digest(authorization["state"])  # only the digest is kept
    assert state_doc["usedAt"] is not None
    for secret in (access_token, code, authorization["state"], hosts.github.client_secret):
        assert secret not in str(await service.integrations())
    assert access_token not in back


async def test_the_code_is_exchanged_only_with_the_pkce_verifier_of_its_challenge(
    service: Service, hosts: FakeHosts
) -> None:
    authorization = await service.start("GITHUB")
    location = await service.visit_host(authorization["authorizationUrl"])
    pending = await service.db["oauth_states"].find_one({})
    assert (
        code_challenge(pending["codeVerifier"])
        == query_of(authorization["authorizationUrl"])["code_challenge"]
    )
    await service.db["oauth_states"].update_one({}, {"$set": {"codeVerifier": "x" * 64}})

    result = await complete(service, **handed_on(await service.callback(location)))

    assert result["__typename"] == "OAuthExchangeError"
    assert result["reason"] == "bad_verification_code"
    assert await service.integrations() == []


async def test_a_code_github_refuses_gives_oauth_exchange_error_with_its_reason(service: Service) -> None:
    authorization = await service.start("GITHUB")

    result = await complete(service, state=authorization["state"], code="0123456789abcdef0123")

    assert result["__typename"] == "OAuthExchangeError"
    assert result["reason"] == "bad_verification_code"
    assert "0123456789abcdef0123" not in result["message"]
    assert await service.integrations() == []


async def test_a_wrong_client_secret_is_refused_by_github(settings: Settings, hosts: FakeHosts) -> None:
    configured = login_settings(settings, hosts)
    hosts.github.client_secret = "rotated-at-github"
    async with open_service(configured) as service:
        result = await service.login("GITHUB")
        assert result["__typename"] == "OAuthExchangeError"
        assert result["reason"] == "incorrect_client_credentials"
        assert "fake-github-client-secret" not in str(result)
        assert await service.integrations() == []


async def test_complete_git_oauth_finishes_a_login_for_the_caller(service: Service) -> None:
    authorization = await service.start("GITHUB")

    result = await complete(
        service, state=authorization["state"], code=await code_for(service, authorization)
    )

    assert result["__typename"] == "Integration"
    assert result["tokenKind"] == "GITHUB_OAUTH_APP"
    assert [i["id"] for i in await service.integrations()] == [result["id"]]


async def test_access_denied_at_github_ends_the_flow_with_an_error_for_the_frontend(
    service: Service, hosts: FakeHosts
) -> None:
    hosts.github.deny_authorization = True
    authorization = await service.start("GITHUB")
    location = await service.visit_host(authorization["authorizationUrl"])
    assert query_of(location)["error"] == "access_denied"

    response = await service.callback(location)

    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {"tab": "integrations", "error": "ACCESS_DENIED"}
    again = await complete(service, state=authorization["state"], code="whatever")
    assert again["__typename"] == "InvalidOAuthStateError"  # the flow is over


async def test_without_return_to_the_callback_shows_the_complete_git_oauth_call_to_run(
    service: Service,
) -> None:
    authorization = await service.start("GITHUB", return_to=None)
    location = await service.visit_host(authorization["authorizationUrl"])

    response = await service.callback(location)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    call = f"completeGitOAuth(input: {{state: &quot;{authorization['state']}&quot;, code: &quot;{query_of(location)['code']}&quot;}})"
    assert call in response.text
    assert await service.integrations() == []
    result = await complete(service, state=authorization["state"], code=query_of(location)["code"])
    assert result["__typename"] == "Integration"


async def test_login_is_not_offered_when_the_provider_has_no_client_credentials(
    settings: Settings, hosts: FakeHosts
) -> None:
    async with open_service(login_settings(settings, hosts, github_oauth=None)) as service:
        data = await service.execute(
            "mutation { connectGitOAuth(input: {provider: GITHUB}) { __typename "
            "... on OAuthNotConfiguredError { message variables } } }"
        )
    result = data["connectGitOAuth"]
    assert result["__typename"] == "OAuthNotConfiguredError"
    assert result["variables"] == ["GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"]
    assert "GITHUB_CLIENT_ID" in result["message"]


# --- state ----------------------------------------------------------------------------------------


async def test_a_state_is_used_once(service: Service) -> None:
    authorization = await service.start("GITHUB")
    location = await service.visit_host(authorization["authorizationUrl"])
    values = handed_on(await service.callback(location))
    assert (await complete(service, **values))["__typename"] == "Integration"

    replayed = await service.callback(location)
    completed = await complete(service, **values)

    assert replayed.status_code == 400
    assert "location" not in replayed.headers
    assert "already used" in replayed.text
    assert completed["__typename"] == "InvalidOAuthStateError"
    assert len(await service.integrations()) == 1


async def test_an_expired_state_is_refused(service: Service) -> None:
    authorization = await service.start("GITHUB")
    location = await service.visit_host(authorization["authorizationUrl"])
    past = datetime.now(UTC) - timedelta(seconds=1)
    await service.db["oauth_states"].update_one({}, {"$set": {"expiresAt": past}})

    response = await service.callback(location)
    result = await complete(service, state=authorization["state"], code=query_of(location)["code"])

    assert result["__typename"] == "InvalidOAuthStateError"
    assert response.status_code == 400
    assert await service.integrations() == []


async def test_another_users_state_is_refused_without_using_it_up(service: Service) -> None:
    authorization = await service.start("GITHUB", user="alice")
    location = await service.visit_host(authorization["authorizationUrl"])

    stolen = await complete(
        service, user="mallory", state=authorization["state"], code=query_of(location)["code"]
    )
    assert stolen["__typename"] == "InvalidOAuthStateError"
    assert await service.integrations(user="mallory") == []

    result = await complete(
        service, user="alice", state=authorization["state"], code=query_of(location)["code"]
    )
    assert result["__typename"] == "Integration"


async def test_an_unknown_or_malformed_state_is_refused(service: Service) -> None:
    for state in ("A" * 43, "not a state", ""):
        result = await complete(service, state=state, code="abc")
        assert result["__typename"] == "InvalidOAuthStateError"
    response = await service.http.get("/oauth/callback?code=abc")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "return_to",
    [
        "//evil.example/steal",
        "https://evil.example/",
        "https://app.example.com@evil.example/",
        "https://app.example.com:pass@evil.example/",
        "https://app.example.com.evil.example/",
        "http://app.example.com/",  # another scheme is another origin
        "https://app.example.com:8443/",
        "javascript:alert(document.domain)",
        "data:text/html,hi",
        "/settings/git",
        "https:/\\evil.example",
        "https://app.example.com\\@evil.example/",
        "https://app.example.com/\nLocation: https://evil.example/",
        " https://app.example.com/",
    ],
)
async def test_a_return_to_outside_the_frontend_origins_is_refused(service: Service, return_to: str) -> None:
    body = await service.graphql.execute(
        "mutation($input: ConnectGitOAuthInput!) { connectGitOAuth(input: $input) { __typename } }",
        {"input": {"provider": "GITHUB", "returnTo": return_to}},
    )

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "https://app.example.com" in body["errors"][0]["message"]
    assert await service.db["oauth_states"].count_documents({}) == 0


# --- GitHub App installation ----------------------------------------------------------------------


@pytest.mark.parametrize(("selection", "access"), [("all", "ALL"), ("selected", "SELECTED")])
async def test_installing_the_github_app_records_the_chosen_repository_access(
    app_service: Service, app_hosts: FakeHosts, selection: str, access: str
) -> None:
    github = app_hosts.github
    github.install_selection = selection  # type: ignore[assignment]
    github.install_repositories = ["octocat/repo-0001"] if selection == "selected" else []
    authorization = await app_service.start("GITHUB")
    url = authorization["authorizationUrl"]
    # The API at the root of the web origin, not at /api/v3: github.com-like, not GHES.
    assert url.startswith(f"{app_hosts.github_url}/apps/{APP_SLUG}/installations/new?")
    assert query_of(url) == {"state": authorization["state"]}

    location = await app_service.visit_host(url)
    assert set(query_of(location)) == {"installation_id", "setup_action", "state"}
    installation_id = query_of(location)["installation_id"]
    onwards = await app_service.callback(location)
    assert onwards.status_code == 302
    assert onwards.headers["referrer-policy"] == "no-referrer"
    second_leg = onwards.headers["location"]
    assert second_leg.startswith(f"{app_hosts.github_url}/login/oauth/authorize?")
    pending = await app_service.db["oauth_states"].find_one({})
    assert query_of(second_leg) == {
        "response_type": "code",
        "client_id": app_hosts.github.client_id,
        "redirect_uri": CALLBACK,
        "state": authorization["state"],
        "code_challenge": code_challenge(pending["codeVerifier"]),
        "code_challenge_method": "S256",
    }
    response = await app_service.follow(second_leg)
    assert handed_on(response) == {
        "state": authorization["state"],
        "code": handed_on(response)["code"],
        "installationId": installation_id,
    }
    result = await complete(app_service, **handed_on(response))

    [integration] = await app_service.integrations()
    assert integration["id"] == integration_id_from(result)
    assert integration["tokenKind"] == TokenKind.GITHUB_APP.value
    assert integration["repositoryAccess"] == access
    assert integration["manageAccessUrl"].endswith(f"/installations/{installation_id}")
    assert "contents:write" in integration["grantedPermissions"]
    expires_at = datetime.fromisoformat(integration["expiresAt"])
    assert timedelta(hours=7) < expires_at - datetime.now(UTC) <= timedelta(hours=8)
    stored = await app_service.db["integrations"].find_one({})
    assert stored["resource"] == {"kind": "installations", "ids": [installation_id], "path": None}
    assert stored["secrets"]["refreshToken"] is not None
    assert not any(token in str(stored) for token in github.refresh_tokens)


@pytest.mark.parametrize(
    ("api_prefix", "separate_api", "page"),
    [
        ("", True, "apps"),  # like github.com: the API on an origin of its own (api.github.com)
        ("/api/v3", False, "github-apps"),  # like GHES: the API on the web host at /api/v3
    ],
)
async def test_the_installation_page_is_where_the_kind_of_github_has_it(
    settings: Settings, api_prefix: str, separate_api: bool, page: str
) -> None:
    # The fake answers only the installation page the host it imitates has; the browser gets there.
    with fake_hosts(app_slug=APP_SLUG, api_prefix=api_prefix, separate_api=separate_api) as hosts:
        assert (hosts.github_api_url is not None) == separate_api
        async with open_service(login_settings(settings, hosts)) as service:
            authorization, response = await service.arrive("GITHUB")
            result = await complete(service, **handed_on(response))

            url = authorization["authorizationUrl"]
            assert url.startswith(f"{hosts.github_url}/{page}/{APP_SLUG}/installations/new?")
            assert result["__typename"] == "Integration", result
            [integration] = await service.integrations()
            assert integration["tokenKind"] == TokenKind.GITHUB_APP.value
            assert integration["manageAccessUrl"].startswith(hosts.github_url)


async def test_a_forged_installation_id_is_refused_and_nothing_is_stored(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    somebody_elses = app_hosts.github.add_installation("hubot")
    authorization = await app_service.start("GITHUB")
    location = await app_service.visit_host(authorization["authorizationUrl"])
    forged = location.replace(
        f"installation_id={query_of(location)['installation_id']}", f"installation_id={somebody_elses.id}"
    )

    response = await app_service.follow(forged)
    assert handed_on(response)["installationId"] == str(somebody_elses.id)
    result = await complete(app_service, **handed_on(response))

    assert result["__typename"] == "MissingPermissionsError"
    assert result["missing"] == ["installation"]
    assert await app_service.integrations() == []


async def test_a_forged_installation_id_through_complete_git_oauth_names_what_is_missing(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    _, response = await app_service.arrive("GITHUB")

    result = await complete(app_service, **(handed_on(response) | {"installationId": "999999"}))

    assert result["__typename"] == "MissingPermissionsError"
    assert result["missing"] == ["installation"]
    assert "octocat" in result["message"]
    assert await app_service.integrations() == []


async def test_an_installation_without_the_permissions_the_service_needs_is_refused(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    app_hosts.github.app_permissions = {"contents": "write", "metadata": "read"}

    result = await app_service.login("GITHUB")

    assert result["__typename"] == "MissingPermissionsError"
    assert "administration:write" in result["missing"]
    assert "contents:write" in result["granted"]


async def test_with_user_authorization_during_installation_the_code_github_sent_is_never_exchanged(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    app_hosts.github.request_oauth_on_install = True
    authorization = await app_service.start("GITHUB")
    location = await app_service.visit_host(authorization["authorizationUrl"])
    assert set(query_of(location)) == {"code", "installation_id", "setup_action", "state"}
    installation_code = query_of(location)["code"]

    onwards = await app_service.callback(location)
    assert onwards.headers["location"].startswith(f"{app_hosts.github_url}/login/oauth/authorize?")
    response = await app_service.follow(onwards.headers["location"])
    values = handed_on(response)
    assert values["code"] != installation_code
    assert values["installationId"] == query_of(location)["installation_id"]
    result = await complete(app_service, **values)

    assert result["__typename"] == "Integration"
    assert app_hosts.github.codes[installation_code].used is False, "never sent to GitHub"
    assert app_hosts.github.codes[values["code"]].code_challenge is not None


async def test_an_installation_awaiting_an_owners_approval_ends_on_return_to_with_that_error(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    app_hosts.github.install_needs_approval = True
    authorization, response = await app_service.arrive("GITHUB")

    assert response.status_code == 302
    assert query_of(response.headers["location"]) == {
        "tab": "integrations",
        "error": "INSTALLATION_PENDING_APPROVAL",
    }
    assert response.headers["referrer-policy"] == "no-referrer"
    assert app_hosts.github.installation_requests == ["octocat"]
    again = await complete(app_service, state=authorization["state"], code="whatever")
    assert again["__typename"] == "InvalidOAuthStateError"  # the flow is over
    assert await app_service.integrations() == []


@pytest.mark.parametrize("return_to", [RETURN_TO, None])
async def test_an_installation_request_without_a_state_or_return_to_ends_on_a_short_page(
    app_service: Service, app_hosts: FakeHosts, return_to: str | None
) -> None:
    app_hosts.github.install_needs_approval = True
    app_hosts.github.install_request_keeps_state = return_to is None  # GitHub may drop the state

    _, response = await app_service.arrive("GITHUB", return_to)

    assert response.status_code == 200
    assert "waiting for an organization owner" in response.text
    assert response.headers["content-security-policy"] == "default-src 'none'"
    assert response.headers["cache-control"] == "no-store"


async def test_a_github_app_sign_in_is_not_completed_with_a_code_from_before_the_service_sent_it_on(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    # E.g. a Setup URL that points at the frontend: the installation's own code reaches completeGitOAuth.
    app_hosts.github.request_oauth_on_install = True
    authorization = await app_service.start("GITHUB")
    location = await app_service.visit_host(authorization["authorizationUrl"])

    result = await complete(app_service, state=authorization["state"], code=query_of(location)["code"])

    assert result["__typename"] == "OAuthExchangeError"
    assert result["reason"] == "installation_not_returned"
    assert CALLBACK in result["message"]
    assert app_hosts.github.codes[query_of(location)["code"]].used is False


# --- refresh --------------------------------------------------------------------------------------


async def connect_expiring(service: Service, github: Any, lifetime: int = 30) -> str:
    """Connect through the installation flow with a first access token that is already due for renewal."""
    github.code_token_lifetime = lifetime
    return integration_id_from(await service.login("GITHUB"))


async def test_a_token_about_to_expire_is_refreshed_before_use(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    integration_id = await connect_expiring(app_service, app_hosts.github)
    old = await app_service.db["integrations"].find_one({})

    verified = await app_service.verify(integration_id)

    assert verified["__typename"] == "Integration"
    assert verified["status"] == "ACTIVE"
    assert app_hosts.github.refresh_count == 1
    assert datetime.fromisoformat(verified["expiresAt"]) - datetime.now(UTC) > timedelta(hours=7)
    new = await app_service.db["integrations"].find_one({})
    assert new["version"] == old["version"] + 1
    assert new["secrets"] != old["secrets"]
    assert "refreshLease" not in new
    await app_service.verify(integration_id)
    assert app_hosts.github.refresh_count == 1  # the new token is not due


async def test_concurrent_requests_in_one_process_refresh_once(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    integration_id = await connect_expiring(app_service, app_hosts.github)
    app_hosts.github.hang_next(0.3, path_prefix="/login/oauth/access_token")

    results = await asyncio.gather(*(app_service.verify(integration_id) for _ in range(20)))

    assert app_hosts.github.refresh_count == 1
    assert all(r["__typename"] == "Integration" and r["status"] == "ACTIVE" for r in results), results


async def test_a_refused_refresh_asks_for_reconnect_and_keeps_the_stored_tokens(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    integration_id = await connect_expiring(app_service, app_hosts.github)
    for record in app_hosts.github.refresh_tokens.values():
        record.used = True  # e.g. spent by a copy of the token elsewhere: GitHub answers bad_refresh_token
    before = await app_service.db["integrations"].find_one({})
    asked = app_hosts.github.count("POST", "/login/oauth/access_token")

    # A refresh token works once: GitHub would refuse the same one again, so the first refusal ends
    # the login.
    verified = await app_service.verify(integration_id)

    assert verified["__typename"] == "Integration"
    assert verified["status"] == "NEEDS_RECONNECT"
    assert app_hosts.github.count("POST", "/login/oauth/access_token") == asked + 1
    after = await app_service.db["integrations"].find_one({})
    assert after["secrets"] == before["secrets"]
    assert "refreshLease" not in after
    # Every later use says so at once instead of asking GitHub again.
    body = await app_service.graphql.execute(
        "query($id: ID!) { integration(id: $id) { repositories { totalCount } } }", {"id": integration_id}
    )
    assert body["errors"][0]["extensions"]["code"] == "NEEDS_RECONNECT"
    assert app_hosts.github.refresh_count == 0


async def test_a_failed_refresh_that_may_pass_keeps_the_integration_and_frees_the_lease(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    integration_id = await connect_expiring(app_service, app_hosts.github)
    app_hosts.github.fail_next(502, path_prefix="/login/oauth/access_token")

    failed = await app_service.verify(integration_id)

    assert failed["__typename"] == "ProviderUnavailableError"
    stored = await app_service.db["integrations"].find_one({})
    assert stored["status"] == "ACTIVE"
    assert "refreshLease" not in stored
    retried = await app_service.verify(integration_id)
    assert retried["status"] == "ACTIVE"
    assert app_hosts.github.refresh_count == 1


async def test_a_refresh_refused_for_the_services_own_client_keeps_the_login(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    # The operator's client secret is wrong (rotated at GitHub): GitHub answers incorrect_client_credentials
    # without looking at the refresh token. Not the user's fault: the login must survive it.
    integration_id = await connect_expiring(app_service, app_hosts.github)
    configured = app_hosts.github.client_secret
    app_hosts.github.client_secret = "rotated-at-github"

    failed = [await app_service.verify(integration_id) for _ in range(3)]

    assert all(f["__typename"] == "ProviderUnavailableError" for f in failed), failed
    stored = await app_service.db["integrations"].find_one({})
    assert stored["status"] == "ACTIVE"
    assert "refreshLease" not in stored
    app_hosts.github.client_secret = configured  # the operator fixed it
    assert (await app_service.verify(integration_id))["status"] == "ACTIVE"
    assert app_hosts.github.refresh_count == 1


# --- disconnect -----------------------------------------------------------------------------------


async def test_disconnecting_a_login_revokes_the_grant_at_github(service: Service, hosts: FakeHosts) -> None:
    integration_id = integration_id_from(await service.login("GITHUB"))
    [access_token] = [t for t in hosts.github.tokens if t.startswith("gho_")]

    data = await service.execute(
        "mutation($id: ID!) { disconnectGitIntegration(input: {id: $id}) { "
        "... on DisconnectedIntegration { hostNotified message } } }",
        {"id": integration_id},
    )

    assert data["disconnectGitIntegration"]["hostNotified"] is True
    assert hosts.github.revocations == [("grant", access_token)]
    assert hosts.github.valid_token(access_token) is None
    assert await service.integrations() == []
    assert access_token not in str(data)


async def test_disconnecting_when_github_is_down_still_removes_the_integration(
    settings: Settings, hosts: FakeHosts
) -> None:
    async with open_service(login_settings(settings, hosts)) as service:
        integration_id = integration_id_from(await service.login("GITHUB"))
        hosts.github.reset_next_connection(count=5, path_prefix="/applications")

        data = await service.execute(
            "mutation($id: ID!) { disconnectGitIntegration(input: {id: $id}) { "
            "... on DisconnectedIntegration { hostNotified message } } }",
            {"id": integration_id},
        )

        result = data["disconnectGitIntegration"]
        assert result["hostNotified"] is False
        assert "could not be told" in result["message"]
        assert urlsplit(hosts.github_url).netloc in result["message"]
        assert await service.integrations() == []
        assert hosts.github.revocations == []
