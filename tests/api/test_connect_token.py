"""connectGitToken, updateGitToken, verifyGitIntegration and disconnectGitIntegration through the ASGI app.

The Git hosts are faked at the HTTP boundary with respx (``assert_all_mocked``), shaped by the
recorded responses in tests/fixtures; DNS is a patched resolver, so nothing leaves the machine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import respx

from app.settings.model import Settings
from app.storage.mongo import Database
from tests.conftest import GraphQLTestClient, running_app
from tests.recordings import replay

GITHUB_API = "https://api.github.com"
CLASSIC = "ghp_" + "C" * 36
CLASSIC_2 = "ghp_" + "D" * 36
GITLAB_TOKEN = "glpat-" + "G" * 20
PUBLIC_IP = "93.184.216.34"  # a public address, only ever "resolved" by the fake resolver; respx answers

CONNECT = """
mutation Connect($input: ConnectGitTokenInput!) {
  connectGitToken(input: $input) {
    __typename
    ... on Integration { id provider host authMethod tokenKind repositoryAccess grantedPermissions status
                         account { login name avatarUrl url } manageAccessUrl expiresAt lastVerifiedAt }
    ... on Error { message code }
    ... on MissingPermissionsError { missing granted }
    ... on InsufficientRoleError { required actual }
    ... on HostNotAllowedError { host }
    ... on ProviderUnavailableError { retryAfterSeconds }
  }
}
"""

DNS: dict[str, list[str]] = {
    "gitlab.example.com": [PUBLIC_IP],
    "metadata.example.com": ["169.254.169.254"],
    "internal.example.com": ["10.1.2.3"],
    "v6.example.com": ["::1"],
}


async def fake_resolver(host: str, port: int) -> Sequence[str]:
    if host not in DNS:
        raise OSError(f"no such host {host}")
    return DNS[host]


@pytest.fixture
def hosts() -> respx.MockRouter:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def api(
    settings: Settings, hosts: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[GraphQLTestClient]:
    caplog.set_level(logging.DEBUG, logger="app")
    caplog.set_level(logging.DEBUG, logger="httpx")
    async with (
        httpx.AsyncClient() as upstream,
        running_app(settings, upstream, resolver=fake_resolver) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield GraphQLTestClient(http, settings)


@pytest.fixture
async def raw_db(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.mongodb_uri.reveal(), settings.mongodb_database)  # type: ignore[union-attr]
    yield db
    await db.close()


def github_user(
    hosts: respx.MockRouter, token: str, scopes: str = "repo, admin:repo_hook", user_id: int = 44376991
) -> respx.Route:
    body = replay("github", "user.oauth-scopes.codecov-2020.json").json() | {"id": user_id}
    return hosts.get(f"{GITHUB_API}/user", headers={"Authorization": f"Bearer {token}"}).mock(
        return_value=replay(
            "github", "user.oauth-scopes.codecov-2020.json", headers={"X-OAuth-Scopes": scopes}, body=body
        )
    )


def github_rejects(hosts: respx.MockRouter, token: str) -> respx.Route:
    return hosts.get(f"{GITHUB_API}/user", headers={"Authorization": f"Bearer {token}"}).mock(
        return_value=replay("github", "error-401-bad-credentials.octokit-rb-2019.json")
    )


def gitlab_personal_token(hosts: respx.MockRouter, api: str, scopes: list[str], level: int = 40) -> None:
    hosts.get(f"{api}/personal_access_tokens/self").respond(
        json={"id": 4, "name": "deploy", "revoked": False, "active": True, "scopes": scopes, "user_id": 3,
              "expires_at": "2027-01-31", "created_at": "2026-01-01T00:00:00Z", "last_used_at": None}
    )  # fmt: skip
    hosts.get(f"{api}/user").mock(return_value=replay("gitlab", "user.codecov-2018.json"))
    hosts.get(f"{api}/personal_access_tokens/self/associations").respond(
        json={"groups": [], "projects": [{"id": 7, "name": "app", "path_with_namespace": "team/app",
              "web_url": "https://gitlab.example.com/team/app",
              "access_levels": {"project_access_level": level, "group_access_level": None}}]}
    )  # fmt: skip


async def stored_documents(raw_db: Database) -> list[dict[str, Any]]:
    return [doc async for doc in raw_db.db["integrations"].find({})]


def assert_secret_nowhere(
    secret: str, api: GraphQLTestClient, caplog: pytest.LogCaptureFixture, docs: Any
) -> None:
    for response in api.responses:
        assert secret not in response.text
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in repr(record.__dict__)
    assert secret not in repr(docs)


# --- GitHub -------------------------------------------------------------------------------------


async def test_classic_token_with_required_scopes_is_stored_encrypted_and_listed(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    github_user(hosts, CLASSIC)
    body = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}})
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "Integration"
    assert result["provider"] == "GITHUB" and result["host"] == "github.com"
    assert result["tokenKind"] == "GITHUB_CLASSIC" and result["authMethod"] == "ACCESS_TOKEN"
    assert result["repositoryAccess"] == "ALL" and result["status"] == "ACTIVE"
    assert result["grantedPermissions"] == ["repo", "admin:repo_hook"]
    assert result["account"]["login"] == "ThiagoCodecov"
    listed = await api.execute("{ integrations { id } }")
    assert listed["data"]["integrations"] == [{"id": result["id"]}]
    docs = await stored_documents(raw_db)
    assert len(docs) == 1 and docs[0]["secrets"]["accessToken"].startswith("enc:v2:")
    assert_secret_nowhere(CLASSIC, api, caplog, docs)


async def test_classic_token_without_admin_repo_hook_is_refused_and_nothing_is_stored(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    github_user(hosts, CLASSIC, scopes="repo, read:org")
    body = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}})
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "MissingPermissionsError"
    assert result["missing"] == ["admin:repo_hook"]
    assert result["granted"] == ["repo", "read:org"]
    assert "admin:repo_hook" in result["message"]
    assert await stored_documents(raw_db) == []
    assert_secret_nowhere(CLASSIC, api, caplog, [])


async def test_revoked_token_is_invalid_and_nothing_is_stored(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database
) -> None:
    github_rejects(hosts, CLASSIC)
    body = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}})
    assert body["data"]["connectGitToken"]["__typename"] == "InvalidTokenError"
    assert await stored_documents(raw_db) == []


async def test_rate_limited_host_is_unavailable_with_retry_after(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{GITHUB_API}/user").mock(
        return_value=replay("github", "error-403-rate-limit.github-docs.json", headers={"retry-after": "42"})
    )
    body = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}})
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "ProviderUnavailableError"
    assert result["retryAfterSeconds"] == 42


async def test_host_down_is_unavailable(api: GraphQLTestClient, hosts: respx.MockRouter) -> None:
    hosts.get(f"{GITHUB_API}/user").mock(side_effect=httpx.ConnectError("connection refused"))
    body = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}})
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "ProviderUnavailableError"
    assert "github.com" in result["message"]


async def test_github_with_another_host_is_refused(api: GraphQLTestClient) -> None:
    body = await api.execute(
        CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC, "host": "gitlab.example.com"}}
    )
    assert body["data"]["connectGitToken"]["__typename"] == "HostNotAllowedError"


async def test_same_account_again_updates_and_two_users_each_get_their_own(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    github_user(hosts, CLASSIC)
    github_user(hosts, CLASSIC_2)
    first = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}})
    again = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC_2}})
    assert again["data"]["connectGitToken"]["id"] == first["data"]["connectGitToken"]["id"]
    assert len((await api.execute("{ integrations { id } }"))["data"]["integrations"]) == 1
    bobs = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}}, user="bob")
    assert bobs["data"]["connectGitToken"]["id"] != first["data"]["connectGitToken"]["id"]
    alice_sees = await api.execute("{ integrations { id } }")
    assert [i["id"] for i in alice_sees["data"]["integrations"]] == [first["data"]["connectGitToken"]["id"]]


# --- GitLab -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entered", "key", "api_url"),
    [
        ("gitlab.example.com", "gitlab.example.com", "https://gitlab.example.com/api/v4"),
        ("https://gitlab.example.com/", "gitlab.example.com", "https://gitlab.example.com/api/v4"),
        ("https://GitLab.Example.com:8443/gitlab/", "gitlab.example.com:8443/gitlab",
         "https://gitlab.example.com:8443/gitlab/api/v4"),
    ],
)  # fmt: skip
async def test_self_hosted_gitlab_personal_token_is_accepted_with_a_normalised_host(
    api: GraphQLTestClient, hosts: respx.MockRouter, entered: str, key: str, api_url: str
) -> None:
    gitlab_personal_token(hosts, api_url, ["api", "read_repository", "write_repository"])
    body = await api.execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": entered}}
    )
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "Integration", result
    assert result["host"] == key
    assert result["tokenKind"] == "GITLAB_PERSONAL"
    assert result["expiresAt"].startswith("2027-01-31")


async def test_gitlab_token_without_write_repository_is_refused(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database
) -> None:
    gitlab_personal_token(hosts, "https://gitlab.com/api/v4", ["api", "read_repository"])
    body = await api.execute(CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN}})
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "MissingPermissionsError"
    assert result["missing"] == ["write_repository"]
    assert await stored_documents(raw_db) == []


async def test_gitlab_developer_is_refused_naming_the_role(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    api_url = "https://gitlab.com/api/v4"
    hosts.get(f"{api_url}/personal_access_tokens/self").respond(
        json={"id": 1, "active": True, "revoked": False, "scopes": ["api", "read_repository", "write_repository"],
              "user_id": 3, "expires_at": None}
    )  # fmt: skip
    hosts.get(f"{api_url}/user").mock(return_value=replay("gitlab", "user.codecov-2018.json"))
    hosts.get(
        f"{api_url}/personal_access_tokens/self/associations", params={"min_access_level": "40"}
    ).respond(json={"groups": [], "projects": []})
    hosts.get(f"{api_url}/personal_access_tokens/self/associations").respond(
        json={"groups": [{"id": 2, "name": "team", "web_url": "https://gitlab.com/groups/team", "access_levels": 30}],
              "projects": []}
    )  # fmt: skip
    body = await api.execute(CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN}})
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "InsufficientRoleError"
    assert result["required"] == "Maintainer" and result["actual"] == "Developer"


@pytest.mark.parametrize(
    "entered",
    [
        "http://gitlab.example.com",
        "https://127.0.0.1",
        "127.1",
        "0x7f.0.0.1",
        "[::1]",
        "https://[::ffff:10.0.0.1]/",
        "localhost.",
        "metadata.example.com",
        "internal.example.com",
        "v6.example.com",
        "169.254.169.254",
        "https://user:pass@gitlab.example.com",
    ],
)
async def test_hosts_that_could_reach_inside_are_refused_before_any_request(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database, entered: str
) -> None:
    body = await api.execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": entered}}
    )
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "HostNotAllowedError", result
    assert "user:pass" not in result["message"]
    assert hosts.calls.call_count == 0
    assert await stored_documents(raw_db) == []


async def test_unknown_host_name_says_it_cannot_be_found(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    body = await api.execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": "nope.example.org"}}
    )
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "ProviderUnavailableError"
    assert "nope.example.org" in result["message"]


async def test_allowlisted_private_host_may_use_http(settings: Settings, hosts: respx.MockRouter) -> None:
    from dataclasses import replace

    allowed = replace(settings, git_host_allowlist=("10.0.0.0/8",))
    gitlab_personal_token(
        hosts, "http://internal.example.com/api/v4", ["api", "read_repository", "write_repository"]
    )
    async with (
        httpx.AsyncClient() as upstream,
        running_app(allowed, upstream, resolver=fake_resolver) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        api = GraphQLTestClient(http, allowed)
        body = await api.execute(
            CONNECT,
            {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": "http://internal.example.com"}},
        )
    assert body["data"]["connectGitToken"]["__typename"] == "Integration"
    assert body["data"]["connectGitToken"]["host"] == "internal.example.com"


async def test_gitlab_redirect_is_not_followed_with_the_token(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    hosts.get("https://gitlab.example.com/api/v4/personal_access_tokens/self").respond(
        301, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    body = await api.execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": "gitlab.example.com"}}
    )
    assert body["data"]["connectGitToken"]["__typename"] == "HostNotAllowedError"
    assert [str(call.request.url.host) for call in hosts.calls] == ["gitlab.example.com"]


async def test_host_that_is_not_gitlab_is_named(api: GraphQLTestClient, hosts: respx.MockRouter) -> None:
    hosts.get("https://gitlab.example.com/api/v4/personal_access_tokens/self").respond(
        200, html="<html><body>Welcome to nginx!</body></html>"
    )
    body = await api.execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": "gitlab.example.com"}}
    )
    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "HostNotAllowedError"
    assert "GitLab" in result["message"]


# --- update, verify, disconnect -----------------------------------------------------------------

UPDATE = """mutation($id: ID!, $token: String!) { updateGitToken(input: {id: $id, token: $token}) {
  __typename ... on Integration { id lastVerifiedAt } ... on Error { message } } }"""
VERIFY = """mutation($id: ID!) { verifyGitIntegration(input: {id: $id}) {
  __typename ... on Integration { id status } ... on Error { message } } }"""
DISCONNECT = """mutation($id: ID!) { disconnectGitIntegration(input: {id: $id}) {
  __typename ... on DisconnectedIntegration { id hostNotified message } ... on Error { message } } }"""


async def connect_classic(api: GraphQLTestClient, hosts: respx.MockRouter, token: str = CLASSIC) -> str:
    github_user(hosts, token)
    body = await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": token}})
    integration_id: str = body["data"]["connectGitToken"]["id"]
    return integration_id


async def test_update_replaces_the_token_of_the_same_account(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database
) -> None:
    integration_id = await connect_classic(api, hosts)
    before = (await stored_documents(raw_db))[0]["secrets"]["accessToken"]
    github_user(hosts, CLASSIC_2)
    body = await api.execute(UPDATE, {"id": integration_id, "token": CLASSIC_2})
    assert body["data"]["updateGitToken"]["__typename"] == "Integration"
    assert (await stored_documents(raw_db))[0]["secrets"]["accessToken"] != before


async def test_update_with_another_accounts_token_is_refused(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database
) -> None:
    integration_id = await connect_classic(api, hosts)
    before = (await stored_documents(raw_db))[0]["secrets"]["accessToken"]
    github_user(hosts, CLASSIC_2, user_id=999)
    body = await api.execute(UPDATE, {"id": integration_id, "token": CLASSIC_2})
    assert body["data"]["updateGitToken"]["__typename"] == "InvalidTokenError"
    assert (await stored_documents(raw_db))[0]["secrets"]["accessToken"] == before


async def test_verify_marks_a_rejected_token_needs_reconnect(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    integration_id = await connect_classic(api, hosts)
    hosts.routes.clear()
    github_rejects(hosts, CLASSIC)
    body = await api.execute(VERIFY, {"id": integration_id})
    assert body["data"]["verifyGitIntegration"] == {
        "__typename": "Integration", "id": integration_id, "status": "NEEDS_RECONNECT"
    }  # fmt: skip
    hosts.routes.clear()
    github_user(hosts, CLASSIC)
    body = await api.execute(VERIFY, {"id": integration_id})
    assert body["data"]["verifyGitIntegration"]["status"] == "ACTIVE"


async def test_verify_during_an_outage_keeps_the_status(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    integration_id = await connect_classic(api, hosts)
    hosts.routes.clear()
    hosts.get(f"{GITHUB_API}/user").respond(503)
    body = await api.execute(VERIFY, {"id": integration_id})
    assert body["data"]["verifyGitIntegration"]["__typename"] == "ProviderUnavailableError"
    listed = await api.execute("{ integrations { status } }")
    assert listed["data"]["integrations"] == [{"status": "ACTIVE"}]


async def test_disconnect_removes_it(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database
) -> None:
    integration_id = await connect_classic(api, hosts)
    body = await api.execute(DISCONNECT, {"id": integration_id})
    assert body["data"]["disconnectGitIntegration"]["__typename"] == "DisconnectedIntegration"
    assert body["data"]["disconnectGitIntegration"]["hostNotified"] is False
    assert await stored_documents(raw_db) == []
    again = await api.execute(DISCONNECT, {"id": integration_id})
    assert again["data"]["disconnectGitIntegration"]["__typename"] == "NotFoundError"


async def test_another_users_id_behaves_like_a_missing_one(
    api: GraphQLTestClient, hosts: respx.MockRouter, raw_db: Database
) -> None:
    integration_id = await connect_classic(api, hosts)
    missing = "SW50ZWdyYXRpb246MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"  # Integration:000000000000000000000000
    for operation, variables in (
        (UPDATE, {"token": CLASSIC}),
        (VERIFY, {}),
        (DISCONNECT, {}),
    ):
        theirs = await api.execute(operation, {"id": integration_id, **variables}, user="mallory")
        nobody = await api.execute(operation, {"id": missing, **variables}, user="mallory")
        assert theirs["data"] == nobody["data"]
    query = "query($id: ID!) { integration(id: $id) { id } }"
    theirs_read = await api.execute(query, {"id": integration_id}, user="mallory")
    assert theirs_read == await api.execute(query, {"id": missing}, user="mallory")
    assert theirs_read == {"data": {"integration": None}}
    assert len(await stored_documents(raw_db)) == 1
