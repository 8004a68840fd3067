"""The fake hosts' picker behaviours answer as the real hosts are documented to (sources in the fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab

CLASSIC = "ghp_" + "f" * 36
GITLAB = "glpat-" + "f" * 20


@pytest.fixture
def github() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_user("octocat")
    fake.add_org("initech", ["octocat"])
    fake.add_repositories("octocat", 3)
    fake.add_repository("initech", "secret", private=True, branches=["main", "release/1", "release/2"])
    fake.add_repository("octocat", "empty")
    fake.repository("octocat/empty").branches.clear()
    fake.enforce_sso("initech")
    fake.add_classic_token(CLASSIC, "octocat", ["repo"])
    return fake


@pytest.fixture
async def gh(github: FakeGitHub) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=github.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://github.test", headers={"Authorization": f"Bearer {CLASSIC}"}
    ) as client:
        yield client


async def test_a_list_leaves_out_sso_organizations_and_names_them(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    listed = await gh.get("/user/repos", params={"per_page": 2})
    assert listed.status_code == 200
    assert all(r["owner"]["login"] == "octocat" for r in listed.json())
    initech = github.account("initech").id
    assert listed.headers["X-GitHub-SSO"] == f"partial-results; organizations={initech}"
    again = await gh.get(
        "/user/repos", params={"per_page": 2}, headers={"If-None-Match": listed.headers["etag"]}
    )
    assert again.status_code == 304 and "X-GitHub-SSO" not in again.headers
    one = await gh.get("/repos/initech/secret")
    assert one.status_code == 403
    assert one.headers["X-GitHub-SSO"].startswith("required; url=http://github.test/orgs/initech/sso?")
    github.authorize_sso(CLASSIC, "initech")
    assert "X-GitHub-SSO" not in (await gh.get("/user/repos")).headers
    assert (await gh.get("/repos/initech/secret")).status_code == 200


async def test_push_order_puts_the_latest_first_and_breaks_ties_by_descending_id(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    first, second = github.repository("octocat/repo-0001"), github.repository("octocat/repo-0002")
    second.pushed_at = first.pushed_at
    listed = (await gh.get("/user/repos", params={"sort": "pushed"})).json()
    assert [r["name"] for r in listed[:2]] == ["repo-0002", "repo-0001"]


async def test_matching_refs_answers_every_ref_with_the_prefix_in_one_page(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.authorize_sso(CLASSIC, "initech")
    refs = await gh.get("/repos/initech/secret/git/matching-refs/heads/release", params={"per_page": 1})
    assert [r["ref"] for r in refs.json()] == ["refs/heads/release/1", "refs/heads/release/2"]
    assert "Link" not in refs.headers and refs.json()[0]["object"]["type"] == "commit"
    every = await gh.get("/repos/initech/secret/git/matching-refs/heads")
    assert len(every.json()) == 3
    empty = await gh.get("/repos/octocat/empty/git/matching-refs/heads")
    assert empty.status_code == 409 and empty.json()["message"] == "Git Repository is empty."


async def test_protected_true_lists_only_protected_branches(
    gh: httpx.AsyncClient, github: FakeGitHub
) -> None:
    github.add_branch("octocat/repo-0002", "release", protected=True)
    protected = await gh.get("/repos/octocat/repo-0002/branches", params={"protected": "true"})
    assert {b["name"] for b in protected.json()} == {"release"}


@pytest.fixture
def gitlab() -> FakeGitLab:
    fake = FakeGitLab()
    fake.add_user("alice")
    fake.add_group("acme")
    fake.add_group("payments", parent="acme")
    fake.add_member("alice", "acme", 40)
    fake.add_projects("acme/payments", 30, name_prefix="api")
    fake.add_project("acme", "web", branches=["main", "release-v1", "v1-notes", "Rel-2"])
    fake.add_personal_token(GITLAB, "alice", ["api"])
    fake.max_offset = 20  # as gitlab.com's 50,000, scaled down
    return fake


@pytest.fixture
async def gl(gitlab: FakeGitLab) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gitlab.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gitlab.test/api/v4", headers={"PRIVATE-TOKEN": GITLAB}
    ) as client:
        yield client


async def test_offset_pages_past_the_limit_answer_400_and_keyset_goes_on(gl: httpx.AsyncClient) -> None:
    params = {"membership": "true", "order_by": "id", "sort": "asc", "per_page": 10}
    assert (await gl.get("/projects", params={**params, "page": 2})).status_code == 200
    refused = await gl.get("/projects", params={**params, "page": 3})
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("Offset pagination has a maximum allowed offset of 20")
    keyset = await gl.get("/projects", params={**params, "pagination": "keyset"})
    seen = [p["id"] for p in keyset.json()]
    while "next" in keyset.links:
        assert "x-total" not in keyset.headers
        keyset = await gl.get(keyset.links["next"]["url"])
        seen += [p["id"] for p in keyset.json()]
    assert len(seen) == len(set(seen)) == 31 and seen == sorted(seen)


async def test_a_project_search_matches_group_paths_only_when_asked(gl: httpx.AsyncClient) -> None:
    names = await gl.get("/projects", params={"membership": "true", "search": "payments"})
    assert names.json() == []
    paths = await gl.get(
        "/projects", params={"membership": "true", "search": "payments", "search_namespaces": "true"}
    )
    assert len(paths.json()) == 20  # GitLab's default page


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ("v1", ["release-v1", "v1-notes"]),
        ("^v1", ["v1-notes"]),
        ("v1$", ["release-v1"]),
        ("REL", ["Rel-2", "release-v1"]),
    ],
)
async def test_a_branch_search_reads_caret_and_dollar_as_operators_and_ignores_case(
    gl: httpx.AsyncClient, gitlab: FakeGitLab, search: str, found: list[str]
) -> None:
    project = gitlab.project("acme/web").id
    answer = await gl.get(f"/projects/{project}/repository/branches", params={"search": search})
    assert [b["name"] for b in answer.json()] == found
