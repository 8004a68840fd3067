"""The fake Git hosts behave like the facts sheet says the real ones do."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.scenarios import (
    GITHUB_CLASSIC_TOKEN,
    GITLAB_GROUP_TOKEN,
    GITLAB_PERSONAL_TOKEN,
    default_github,
    default_gitlab,
)
from tests.fakes.server import run_in_thread

FULL = {"administration": "write", "statuses": "write", "contents": "write", "webhooks": "write"}
CALLBACK = "http://service.test/oauth/callback"


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-GitHub-Api-Version": "2022-11-28"}


def client_for(app: Starlette, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
def github() -> FakeGitHub:
    return default_github(FakeGitHub(), repositories=65)


@pytest.fixture
async def gh(github: FakeGitHub) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(github.app, "http://github.test") as client:
        yield client


# --- GitHub ----------------------------------------------------------------------------------------


async def test_github_user_repos_walk_follows_link_until_it_disappears(gh: httpx.AsyncClient) -> None:
    url: str | None = "/user/repos?affiliation=owner,collaborator,organization_member&sort=pushed&per_page=30"
    seen: list[dict[str, Any]] = []
    links: list[str] = []
    while url:
        response = await gh.get(url, headers=auth(GITHUB_CLASSIC_TOKEN))
        assert response.status_code == 200
        seen += response.json()
        links.append(response.headers.get("link", ""))
        url = response.links.get("next", {}).get("url")

    assert len(seen) == 65 == len({repo["id"] for repo in seen})
    pushed = [repo["pushed_at"] for repo in seen]
    assert pushed == sorted(pushed, reverse=True) and len(set(pushed)) == 65
    assert 'rel="last"' in links[0] and "page=3" in links[0]
    assert 'rel="next"' not in links[-1] and 'rel="first"' in links[-1]


async def test_github_single_page_has_no_link_and_fields_the_picker_needs(gh: httpx.AsyncClient) -> None:
    response = await gh.get("/user/repos?per_page=100", headers=auth(GITHUB_CLASSIC_TOKEN))

    assert "link" not in response.headers
    repo = response.json()[0]
    for field in (
        "id",
        "node_id",
        "name",
        "full_name",
        "private",
        "visibility",
        "html_url",
        "clone_url",
        "default_branch",
        "pushed_at",
        "archived",
        "fork",
        "permissions",
    ):
        assert field in repo
    assert repo["owner"]["login"] == "octocat"


async def test_github_matching_etag_answers_304_without_spending_the_rate_limit(
    gh: httpx.AsyncClient,
) -> None:
    first = await gh.get("/user/repos?per_page=100", headers=auth(GITHUB_CLASSIC_TOKEN))
    etag = first.headers["etag"]
    assert etag.startswith('"')

    again = await gh.get(
        "/user/repos?per_page=100", headers={**auth(GITHUB_CLASSIC_TOKEN), "If-None-Match": etag}
    )

    assert again.status_code == 304 and again.content == b""
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]


async def test_github_classic_scopes_header_and_bad_credentials(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.add_fine_grained_token("github_pat_expiring", "octocat", FULL, expires="2999-12-31T10:00:00Z")

    classic = await gh.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN))
    fine = await gh.get("/user", headers=auth("github_pat_expiring"))
    bad = await gh.get("/user", headers=auth("ghp_nope"))

    assert classic.headers["x-oauth-scopes"] == "admin:repo_hook, repo"
    assert "x-oauth-scopes" not in fine.headers
    assert fine.headers["github-authentication-token-expiration"] == "2999-12-31 10:00:00 UTC"
    assert bad.status_code == 401
    assert bad.json() == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }


async def test_github_write_probe_is_403_without_permission_and_422_with_it(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.add_fine_grained_token(
        "github_pat_read", "octocat", {**FULL, "contents": "read"}, ["octocat/repo-0001"]
    )
    github.add_fine_grained_token("github_pat_write", "octocat", FULL, ["octocat/repo-0001"])
    probe = {"message": 42}  # wrong type, no content: never a valid write

    refused = await gh.put(
        "/repos/octocat/repo-0001/contents/.probe", json=probe, headers=auth("github_pat_read")
    )
    allowed = await gh.put(
        "/repos/octocat/repo-0001/contents/.probe", json=probe, headers=auth("github_pat_write")
    )
    uncovered = await gh.put(
        "/repos/octocat/repo-0002/contents/.probe", json=probe, headers=auth("github_pat_write")
    )

    assert refused.status_code == 403
    assert refused.json()["message"] == "Resource not accessible by personal access token"
    assert refused.headers["x-accepted-github-permissions"] == "contents=write"
    assert allowed.status_code == 422
    assert uncovered.status_code == 404  # repo-0002 is private and not selected
    assert github.side_effects == []


async def test_github_valid_write_is_performed_and_recorded(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    branch = (
        await gh.get("/repos/octocat/repo-0001/branches/main", headers=auth(GITHUB_CLASSIC_TOKEN))
    ).json()
    sha = branch["commit"]["sha"]

    bad_state = await gh.post(
        f"/repos/octocat/repo-0001/statuses/{sha}", json={"state": "nope"}, headers=auth(GITHUB_CLASSIC_TOKEN)
    )
    created = await gh.post(
        f"/repos/octocat/repo-0001/statuses/{sha}",
        json={"state": "success", "context": "ci"},
        headers=auth(GITHUB_CLASSIC_TOKEN),
    )

    assert bad_state.status_code == 422 and bad_state.json()["message"] == "Validation Failed"
    assert created.status_code == 201
    assert [(e.method, e.path) for e in github.side_effects] == [
        ("POST", f"/repos/octocat/repo-0001/statuses/{sha}")
    ]


async def test_github_admin_read_probe_branch_not_protected_still_proves_access(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.add_fine_grained_token("github_pat_noadmin", "octocat", {"contents": "write"}, "all")
    unprotected = "/repos/octocat/repo-0001/branches/develop/protection"  # repo-0001 is public

    allowed = await gh.get(unprotected, headers=auth(GITHUB_CLASSIC_TOKEN))
    refused = await gh.get(unprotected, headers=auth("github_pat_noadmin"))

    assert allowed.status_code == 404 and allowed.json()["message"] == "Branch not protected"
    assert refused.status_code == 403
    assert refused.json()["message"] == "Resource not accessible by personal access token"
    assert refused.headers["x-accepted-github-permissions"] == "administration=read"


async def test_github_branch_protection_of_a_private_repository_needs_a_paid_plan(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.add_fine_grained_token("github_pat_full", "octocat", FULL, "all")
    private = "/repos/octocat/repo-0002/branches/main/protection"  # repo-0002 is private

    free = await gh.get(private, headers=auth("github_pat_full"))
    github.account("octocat").plan = "pro"
    pro = await gh.get(private, headers=auth("github_pat_full"))

    assert free.status_code == 403
    assert free.json()["message"] == (
        "Upgrade to GitHub Pro or make this repository public to enable this feature."
    )
    # The header comes with this refusal too: it is not what says that a permission is missing.
    assert free.headers["x-accepted-github-permissions"] == "administration=read"
    assert (pro.status_code, pro.json()["message"]) == (404, "Branch not protected")


async def test_github_names_accepted_permissions_on_every_answer_to_a_fine_grained_token(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.add_fine_grained_token("github_pat_full", "octocat", FULL, "all")

    user = await gh.get("/user", headers=auth("github_pat_full"))
    keys = await gh.get("/repos/octocat/repo-0002/keys", headers=auth("github_pat_full"))
    hooks = await gh.get("/repos/octocat/repo-0002/hooks", headers=auth("github_pat_full"))
    invalid = await gh.post(
        "/repos/octocat/repo-0002/hooks", json={"config": "x"}, headers=auth("github_pat_full")
    )
    classic = await gh.get("/repos/octocat/repo-0002/keys", headers=auth(GITHUB_CLASSIC_TOKEN))

    assert user.headers["x-accepted-github-permissions"] == "allows_permissionless_access=true"
    assert (keys.status_code, keys.json()) == (200, [])
    assert keys.headers["x-accepted-github-permissions"] == "administration=read"
    assert hooks.headers["x-accepted-github-permissions"] == "repository_hooks=read"
    assert invalid.status_code == 422
    assert invalid.headers["x-accepted-github-permissions"] == "repository_hooks=write"
    assert "x-accepted-github-permissions" not in classic.headers


async def test_github_archived_repository_refuses_writes_whatever_the_token(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    repo = github.repository("octocat/repo-0001")
    repo.archived = True
    github.add_fine_grained_token("github_pat_full", "octocat", FULL, "all")
    sha = repo.branches["main"].sha

    status = await gh.post(
        f"/repos/octocat/repo-0001/statuses/{sha}", json={"state": "nope"}, headers=auth("github_pat_full")
    )
    contents = await gh.put(
        "/repos/octocat/repo-0001/contents/x", json={}, headers=auth(GITHUB_CLASSIC_TOKEN)
    )

    for answer in (status, contents):
        assert answer.status_code == 403
        assert answer.json()["message"] == "Repository was archived so is read-only."
    assert status.headers["x-accepted-github-permissions"] == "statuses=write"
    assert github.side_effects == []


async def test_github_deploy_keys_need_admin_on_the_repository(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.add_user("hubot")
    github.add_collaborator("octocat/repo-0002", "hubot", "write")
    github.add_fine_grained_token("github_pat_hubot", "hubot", FULL, ["octocat/repo-0002"], owner="octocat")

    refused = await gh.get("/repos/octocat/repo-0002/keys", headers=auth("github_pat_hubot"))

    assert refused.status_code == 403
    assert refused.json()["message"] == "Must have admin rights to Repository."


async def test_github_oauth_pkce_refuses_a_wrong_verifier(gh: httpx.AsyncClient, github: FakeGitHub) -> None:
    verifier = "correct-horse-battery-staple-" * 2
    authorize = await gh.get(
        "/login/oauth/authorize",
        params={
            "client_id": github.client_id,
            "redirect_uri": CALLBACK,
            "scope": "repo admin:repo_hook",
            "state": "s1",
            "code_challenge": challenge_of(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert authorize.status_code == 302
    location = httpx.URL(authorize.headers["location"])
    assert location.params["state"] == "s1"
    form = {
        "client_id": github.client_id,
        "client_secret": github.client_secret,
        "code": location.params["code"],
        "redirect_uri": CALLBACK,
    }
    accept = {"Accept": "application/json"}

    wrong = await gh.post(
        "/login/oauth/access_token", data={**form, "code_verifier": "x" * 50}, headers=accept
    )
    right = await gh.post(
        "/login/oauth/access_token", data={**form, "code_verifier": verifier}, headers=accept
    )
    reused = await gh.post(
        "/login/oauth/access_token", data={**form, "code_verifier": verifier}, headers=accept
    )

    assert wrong.status_code == 200 and wrong.json()["error"] == "bad_verification_code"
    assert right.json()["access_token"].startswith("gho_")
    assert right.json()["scope"] == "admin:repo_hook,repo"
    assert reused.json()["error"] == "bad_verification_code"


async def test_github_app_installation_redirects_to_the_setup_url_without_a_code() -> None:
    github = FakeGitHub(app_slug="fake-deployer")
    github.add_user("octocat")
    github.callback_urls, github.setup_url = [CALLBACK], f"{CALLBACK}/setup"
    async with client_for(github.app, "http://github.test") as gh:
        install = await gh.get("/apps/fake-deployer/installations/new", params={"state": "s1"})
        github.install_needs_approval = True
        requested = await gh.get("/apps/fake-deployer/installations/new", params={"state": "s2"})
        github.install_request_keeps_state = False
        requested_stateless = await gh.get("/apps/fake-deployer/installations/new", params={"state": "s3"})

    assert install.headers["location"].startswith(f"{CALLBACK}/setup?")
    assert set(httpx.URL(install.headers["location"]).params) == {"installation_id", "setup_action", "state"}
    assert dict(httpx.URL(requested.headers["location"]).params) == {"setup_action": "request", "state": "s2"}
    assert dict(httpx.URL(requested_stateless.headers["location"]).params) == {"setup_action": "request"}
    assert github.installation_requests == ["octocat", "octocat"]
    assert len(github.installations) == 1


@pytest.mark.parametrize(
    ("api_prefix", "served", "missing"), [("", "apps", "github-apps"), ("/api/v3", "github-apps", "apps")]
)
async def test_github_serves_only_the_installation_page_of_the_host_it_imitates(
    api_prefix: str, served: str, missing: str
) -> None:
    github = FakeGitHub(app_slug="fake-deployer", api_prefix=api_prefix)
    github.add_user("octocat")
    github.callback_urls, github.setup_url = [CALLBACK], CALLBACK
    async with client_for(github.app, "http://github.test") as gh:
        there = await gh.get(f"/{served}/fake-deployer/installations/new", params={"state": "s"})
        elsewhere = await gh.get(f"/{missing}/fake-deployer/installations/new", params={"state": "s"})

    assert there.status_code == 302
    assert elsewhere.status_code == 404
    assert github.installations and len(github.installations) == 1


async def test_github_accepts_any_verifier_for_a_code_issued_without_a_challenge() -> None:
    github = FakeGitHub(app_slug="fake-deployer")
    github.add_user("octocat")
    github.callback_urls, github.setup_url = [CALLBACK], f"{CALLBACK}/setup"
    github.request_oauth_on_install = True
    async with client_for(github.app, "http://github.test") as gh:
        install = await gh.get("/apps/fake-deployer/installations/new", params={"state": "s1"})
        params = httpx.URL(install.headers["location"]).params
        form = {"client_id": github.client_id, "client_secret": github.client_secret, "code": params["code"]}
        issued = await gh.post(
            "/login/oauth/access_token",
            data={**form, "code_verifier": "anything-at-all-" * 3},
            headers={"Accept": "application/json"},
        )

    # With user authorization during installation GitHub goes to the callback URL, not the setup URL.
    assert install.headers["location"].startswith(f"{CALLBACK}?")
    assert params["setup_action"] == "install" and params["state"] == "s1"
    assert issued.json()["access_token"].startswith("ghu_")


async def test_github_app_refresh_token_is_single_use() -> None:
    github = FakeGitHub(app_slug="fake-deployer")
    github.add_user("octocat")
    github.callback_urls = [CALLBACK]
    github.request_oauth_on_install = True
    async with client_for(github.app, "http://github.test") as gh:
        install = await gh.get("/apps/fake-deployer/installations/new", params={"state": "s2"})
        params = httpx.URL(install.headers["location"]).params
        assert params["setup_action"] == "install" and params["state"] == "s2"
        form = {"client_id": github.client_id, "client_secret": github.client_secret}
        accept = {"Accept": "application/json"}
        issued = (
            await gh.post("/login/oauth/access_token", data={**form, "code": params["code"]}, headers=accept)
        ).json()
        assert issued["access_token"].startswith("ghu_") and issued["expires_in"] == 28800
        assert issued["refresh_token"].startswith("ghr_") and issued["scope"] == ""
        installations = (await gh.get("/user/installations", headers=auth(issued["access_token"]))).json()
        assert installations["installations"][0]["id"] == int(params["installation_id"])

        refresh = {**form, "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
        renewed = (await gh.post("/login/oauth/access_token", data=refresh, headers=accept)).json()
        replayed = (await gh.post("/login/oauth/access_token", data=refresh, headers=accept)).json()
        old_access = await gh.get("/user", headers=auth(issued["access_token"]))

    assert renewed["access_token"] != issued["access_token"]
    assert replayed["error"] == "bad_refresh_token"
    assert old_access.status_code == 401
    assert github.refresh_count == 1


async def test_github_exhausted_rate_limit_answers_403_with_reset(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.rate_limit_remaining = 1
    github.rate_limit_retry_after = 30

    last = await gh.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN))
    limited = await gh.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN))

    assert last.status_code == 200 and last.headers["x-ratelimit-remaining"] == "0"
    assert limited.status_code == 403
    assert limited.headers["x-ratelimit-remaining"] == "0" and limited.headers["retry-after"] == "30"
    assert int(limited.headers["x-ratelimit-reset"]) > 0


async def test_github_faults_are_served_once_and_counted(gh: httpx.AsyncClient, github: FakeGitHub) -> None:
    github.fail_next(502)
    github.invalid_json_next()

    failed = await gh.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN))
    garbled = await gh.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN))
    fine = await gh.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN))

    assert failed.status_code == 502
    with pytest.raises(json.JSONDecodeError):
        garbled.json()
    assert fine.status_code == 200
    assert github.count("GET", "/user") == 3
    assert [r.status for r in github.requests] == [502, 200, 200]


# --- GitLab ----------------------------------------------------------------------------------------


@pytest.fixture
def gitlab() -> FakeGitLab:
    return default_gitlab(FakeGitLab(), repositories=75)


@pytest.fixture
async def gl(gitlab: FakeGitLab) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Mount("/gitlab", app=gitlab.app)])  # a self-managed instance under a path
    async with client_for(app, "http://gitlab.test") as client:
        yield client


async def test_gitlab_offset_pagination_headers_and_etag(gl: httpx.AsyncClient, gitlab: FakeGitLab) -> None:
    headers = {"PRIVATE-TOKEN": GITLAB_PERSONAL_TOKEN}
    url = "/gitlab/api/v4/projects?membership=true&min_access_level=40&simple=true&order_by=last_activity_at&per_page=20"

    first = await gl.get(url, headers=headers)
    last = await gl.get(f"{url}&page=4", headers=headers)
    cached = await gl.get(url, headers={**headers, "If-None-Match": first.headers["etag"]})

    assert (first.headers["x-total"], first.headers["x-total-pages"], first.headers["x-next-page"]) == (
        "75",
        "4",
        "2",
    )
    assert first.links["next"]["url"].startswith("http://gitlab.test/gitlab/api/v4/projects?")
    assert len(last.json()) == 15 and last.headers["x-next-page"] == ""
    assert cached.status_code == 304 and cached.content == b""
    assert "visibility" not in first.json()[0]


async def test_gitlab_role_from_associations_and_the_pre_17_4_fallback(
    gl: httpx.AsyncClient, gitlab: FakeGitLab
) -> None:
    headers = {"PRIVATE-TOKEN": GITLAB_GROUP_TOKEN}
    associations = await gl.get(
        "/gitlab/api/v4/personal_access_tokens/self/associations?min_access_level=40", headers=headers
    )
    bot = (await gl.get("/gitlab/api/v4/user", headers=headers)).json()
    gitlab.version_below_17_4 = True
    old = await gl.get("/gitlab/api/v4/personal_access_tokens/self/associations", headers=headers)
    project = (await gl.get("/gitlab/api/v4/projects/acme%2Fplatform%2Fservice-0001", headers=headers)).json()

    assert [g["access_levels"] for g in associations.json()["groups"]] == [40, 40]
    assert bot["bot"] is True and bot["username"].startswith("group_")
    # A route the instance does not have: GitLab's catch-all answers "error", not "message".
    assert old.status_code == 404 and old.json() == {"error": "404 Not Found"}
    assert project["permissions"]["project_access"] is None
    assert project["permissions"]["group_access"]["access_level"] == 40  # inherited from the parent group


async def test_gitlab_older_than_15_5_has_no_token_self_and_answers_unknown_routes_with_error(
    gl: httpx.AsyncClient, gitlab: FakeGitLab
) -> None:
    headers = {"PRIVATE-TOKEN": GITLAB_PERSONAL_TOKEN}
    gitlab.version_below_15_5 = True

    token_self = await gl.get("/gitlab/api/v4/personal_access_tokens/self", headers=headers)
    unauthenticated = await gl.get("/gitlab/api/v4/personal_access_tokens/self")
    missing_project = await gl.get("/gitlab/api/v4/projects/999999", headers=headers)
    version = (await gl.get("/gitlab/api/v4/version", headers=headers)).json()

    assert (token_self.status_code, token_self.json()) == (404, {"error": "404 Not Found"})
    assert unauthenticated.status_code == 404  # the catch-all route does not authenticate
    assert missing_project.status_code == 404 and "message" in missing_project.json()
    assert version["version"].startswith("15.4")


async def test_gitlab_service_accounts_are_bots_with_personal_tokens(
    gl: httpx.AsyncClient, gitlab: FakeGitLab
) -> None:
    account = gitlab.add_service_account(group="acme")
    gitlab.add_personal_token("glpat-service", account, ["api", "read_repository", "write_repository"])

    user = (await gl.get("/gitlab/api/v4/user", headers={"PRIVATE-TOKEN": "glpat-service"})).json()

    assert user["bot"] is True
    assert user["username"].startswith(f"service_account_group_{gitlab.group('acme').id}_")


async def test_gitlab_bad_and_expired_tokens_are_401(gl: httpx.AsyncClient, gitlab: FakeGitLab) -> None:
    gitlab.add_personal_token("glpat-expired", "alice", ["api"], expires_at="2020-01-01")

    for token in ("glpat-unknown", "glpat-expired"):
        response = await gl.get(
            "/gitlab/api/v4/personal_access_tokens/self", headers={"PRIVATE-TOKEN": token}
        )
        assert response.status_code == 401 and response.json() == {"message": "401 Unauthorized"}


async def test_gitlab_oauth_pkce_and_single_use_refresh(gl: httpx.AsyncClient, gitlab: FakeGitLab) -> None:
    verifier = "v" * 64
    authorize = await gl.get(
        "/gitlab/oauth/authorize",
        params={
            "client_id": gitlab.client_id,
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "state": "s3",
            "scope": "api read_repository write_repository",
            "code_challenge": challenge_of(verifier),
            "code_challenge_method": "S256",
        },
    )
    code = httpx.URL(authorize.headers["location"]).params["code"]
    form = {
        "grant_type": "authorization_code",
        "client_id": gitlab.client_id,
        "client_secret": gitlab.client_secret,
        "code": code,
        "redirect_uri": CALLBACK,
    }

    wrong = await gl.post("/gitlab/oauth/token", data={**form, "code_verifier": "w" * 64})
    issued = (await gl.post("/gitlab/oauth/token", data={**form, "code_verifier": verifier})).json()
    refresh = {
        "grant_type": "refresh_token",
        "client_id": gitlab.client_id,
        "client_secret": gitlab.client_secret,
        "refresh_token": issued["refresh_token"],
    }
    # As GitLab documents it, the refresh repeats the authorization's redirect_uri (doc/api/oauth2.md).
    without_redirect_uri = await gl.post("/gitlab/oauth/token", data=refresh)
    refresh["redirect_uri"] = CALLBACK
    renewed = await gl.post("/gitlab/oauth/token", data=refresh)
    replayed = await gl.post("/gitlab/oauth/token", data=refresh)
    old = await gl.get("/gitlab/api/v4/user", headers={"Authorization": f"Bearer {issued['access_token']}"})

    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 7200
    assert without_redirect_uri.status_code == 400
    assert renewed.status_code == 200
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert old.status_code == 401
    assert gitlab.refresh_count == 1


async def test_gitlab_spent_budget_answers_429_with_retry_after(
    gl: httpx.AsyncClient, gitlab: FakeGitLab
) -> None:
    gitlab.rate_limit_remaining = 0

    response = await gl.get("/gitlab/api/v4/projects", headers={"PRIVATE-TOKEN": GITLAB_PERSONAL_TOKEN})

    assert response.status_code == 429 and response.headers["retry-after"] == "60"


# --- over a real socket ----------------------------------------------------------------------------


def test_run_in_thread_serves_on_loopback_and_can_drop_connections(github: FakeGitHub) -> None:
    with run_in_thread(github.app) as base_url, httpx.Client(base_url=base_url, timeout=5) as client:
        assert base_url.startswith("http://127.0.0.1:")
        assert client.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN)).json()["login"] == "octocat"

        github.reset_next_connection()
        with pytest.raises(httpx.TransportError):
            client.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN))
        github.truncate_next()
        with pytest.raises(httpx.TransportError):
            client.get("/user/repos", headers=auth(GITHUB_CLASSIC_TOKEN))

        assert client.get("/user", headers=auth(GITHUB_CLASSIC_TOKEN)).status_code == 200
    assert [r.status for r in github.requests] == [200, 0, 200, 200]
