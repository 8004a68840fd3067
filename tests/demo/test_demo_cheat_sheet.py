"""``make demo`` walked through the API: every line of the cheat sheet shows what the sheet says.

The demo runs as ``make demo`` runs it (``python -m demo``: the fakes and the page in one process, the
service as ``python -m app serve``); this test is one more client of the service, with the JWTs the demo
page's configuration hands out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from demo import operations as ops
from demo import world
from demo.seeding import sign_in
from tests.demo.conftest import RunningDemo
from tests.harness import ROOT

pytestmark = pytest.mark.uvicorn

Check = Callable[["Walk"], Awaitable[None]]


class Walk:
    """One client of the demo's service, acting as the cheat sheet's users."""

    def __init__(self, demo: RunningDemo, http: httpx.AsyncClient) -> None:
        self.demo = demo
        self.http = http

    async def run(self, user: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await ops.execute(self.http, self.demo.service, self.demo.jwt(user), query, variables)

    async def connect(self, token: str, provider: str = "GITHUB", user: str = "alice") -> dict[str, Any]:
        data = await self.run(user, ops.CONNECT_TOKEN, {"input": {"provider": provider, "token": token}})
        result: dict[str, Any] = data["connectGitToken"]
        return result

    async def integration(self, token: str, provider: str = "GITHUB") -> dict[str, Any]:
        result = await self.connect(token, provider)
        assert result["__typename"] == "Integration", result
        return result

    async def repositories(self, integration: str, **arguments: Any) -> dict[str, Any]:
        data = await self.run("alice", ops.REPOSITORIES, {"id": integration, **arguments})
        listing: dict[str, Any] = data["integration"]["repositories"]
        return listing

    async def login(self, provider: str, choices: dict[str, str]) -> dict[str, Any]:
        started = await self.run(
            "alice",
            ops.CONNECT_OAUTH,
            {"input": {"provider": provider, "returnTo": self.demo.config["returnTo"]}},
        )
        async with httpx.AsyncClient(timeout=30) as browser:
            handed = await sign_in(
                browser, started["connectGitOAuth"]["authorizationUrl"], self.demo.config["returnTo"], choices
            )
        keys = ("state", "code", "installationId")
        done = await self.run(
            "alice", ops.COMPLETE_OAUTH, {"input": {k: handed[k] for k in keys if k in handed}}
        )
        result: dict[str, Any] = done["completeGitOAuth"]
        return result


def within(value: str, days: float) -> bool:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    expected = datetime.now(UTC) + timedelta(days=days)
    return abs(moment - expected) < timedelta(hours=2)


async def thousands(walk: Walk) -> None:
    integration = await walk.integration(world.GH_EVERYTHING)
    listing = await walk.repositories(integration["id"], first=100)
    assert listing["totalCount"] == world.GITHUB_REPOSITORIES + world.ACME_REPOSITORIES
    assert listing["edges"][0]["node"]["fullName"] == world.MONOREPO
    assert listing["pageInfo"]["hasNextPage"]
    following = await walk.repositories(integration["id"], first=100, after=listing["pageInfo"]["endCursor"])
    assert {e["node"]["fullName"] for e in following["edges"]}.isdisjoint(
        e["node"]["fullName"] for e in listing["edges"]
    )


async def sso(walk: Walk) -> None:
    integration = await walk.integration(world.GH_EVERYTHING)
    listing = await walk.repositories(integration["id"], first=5)
    notices = {n["reason"]: n for n in listing["notices"]}
    notice = notices["SSO_AUTHORIZATION_REQUIRED"]
    # GitHub names the organisations by id (X-GitHub-SSO: partial-results; organizations=…).
    assert len(notice["organizations"]) == 1 and notice["organizations"][0].isdigit(), notice
    assert notice["url"] and notice["message"]
    hidden = await walk.repositories(integration["id"], search="sso-corp/", first=5)
    assert hidden["totalCount"] == 0


async def no_admin(walk: Walk) -> None:
    integration = await walk.integration(world.GH_EVERYTHING)
    listing = await walk.repositories(integration["id"], search="acme/", first=100)
    assert listing["totalCount"] == world.ACME_REPOSITORIES
    assert {e["node"]["viewerCanAdminister"] for e in listing["edges"]} == {False}
    own = await walk.repositories(integration["id"], first=3)
    assert {e["node"]["viewerCanAdminister"] for e in own["edges"]} == {True}


async def branches(walk: Walk) -> None:
    integration = await walk.integration(world.GH_EVERYTHING)
    listing = await walk.repositories(integration["id"], search="monorepo", first=1)
    repository = listing["edges"][0]["node"]["id"]
    first = (await walk.run("alice", ops.BRANCHES, {"id": repository, "first": 100}))["node"]["branches"]
    assert first["totalCount"] == world.MONOREPO_BRANCHES + 1
    assert first["edges"][0]["node"] == {"name": "main", "protected": True}
    assert first["pageInfo"]["hasNextPage"]
    after = first["pageInfo"]["endCursor"]
    second = (await walk.run("alice", ops.BRANCHES, {"id": repository, "first": 100, "after": after}))["node"]
    assert len(second["branches"]["edges"]) == 100


async def selected(walk: Walk) -> None:
    integration = await walk.integration(world.GH_SELECTED)
    assert integration["repositoryAccess"] == "SELECTED"
    assert integration["manageAccessUrl"]
    listing = await walk.repositories(integration["id"], first=10)
    assert sorted(e["node"]["fullName"] for e in listing["edges"]) == sorted(world.SELECTED)


async def missing_scope(walk: Walk) -> None:
    result = await walk.connect(world.GH_MISSING_SCOPE)
    assert result["__typename"] == "MissingPermissionsError", result
    assert result["missing"] == ["admin:repo_hook"]


async def revoked_token(walk: Walk) -> None:
    result = await walk.connect(world.GH_REVOKED)
    assert result["__typename"] == "InvalidTokenError", result


async def expiring_token(walk: Walk) -> None:
    integration = await walk.integration(world.GH_EXPIRING)
    assert within(integration["expiresAt"], world.EXPIRING_DAYS), integration["expiresAt"]


async def expiring_login(walk: Walk) -> None:
    (integration,) = (await walk.run("erin", ops.INTEGRATIONS))["integrations"]
    assert integration["authMethod"] == "OAUTH"
    assert integration["account"]["login"] == "erin"
    assert within(integration["reconnectBy"], 2), integration["reconnectBy"]


async def revoked_later(walk: Walk) -> None:
    (integration,) = (await walk.run("rita", ops.INTEGRATIONS))["integrations"]
    assert integration["status"] == "NEEDS_RECONNECT"


async def linked_push(walk: Walk) -> None:
    (link,) = (await walk.run("lena", ops.LINKS))["repositoryLinks"]
    assert (link["repository"]["fullName"], link["status"]) == (world.LINKED, "ACTIVE")
    assert link["id"] == walk.demo.config["lenaLink"]

    async def pushes() -> list[dict[str, Any]]:
        node = (await walk.run("deployer", ops.EVENTS, {"id": link["id"]}))["node"]
        return [e["node"] for e in node["events"]["edges"] if e["node"]["kind"] == "PUSH"]

    before = await pushes()
    assert before, "the push after linking arrived"
    assert before[0]["headCommitMessage"] == f"Pushed by make demo to {world.LINKED}"
    # The demo page's button pushes again; the delivery reaches the service within moments.
    assert (await walk.http.post(f"{walk.demo.page}/push")).json()["pushes"] >= 1
    for _ in range(100):
        if len(await pushes()) > len(before):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the push from the demo page did not arrive")


async def gitlab_maintainer(walk: Walk) -> None:
    integration = await walk.integration(world.GL_MAINTAINER, "GITLAB")
    listing = await walk.repositories(integration["id"], first=100)
    assert listing["totalCount"] == world.GITLAB_PROJECTS
    assert {e["node"]["viewerCanAdminister"] for e in listing["edges"]} == {True}


async def gitlab_developer(walk: Walk) -> None:
    result = await walk.connect(world.GL_DEVELOPER, "GITLAB")
    assert result["__typename"] == "InsufficientRoleError", result
    assert (result["required"], result["actual"]) == ("Maintainer", "Developer")


async def gitlab_missing_scope(walk: Walk) -> None:
    result = await walk.connect(world.GL_MISSING_SCOPE, "GITLAB")
    assert result["__typename"] == "MissingPermissionsError", result
    assert sorted(result["missing"]) == sorted(world.REQUIRED_GITLAB_SCOPES)


async def github_login(walk: Walk) -> None:
    result = await walk.login(
        "GITHUB", {"login": "octocat", "repository_selection": "selected", "repositories": world.MONOREPO}
    )
    assert result["__typename"] == "Integration", result
    assert (result["authMethod"], result["account"]["login"]) == ("OAUTH", "octocat")
    assert result["repositoryAccess"] == "SELECTED"


async def gitlab_login(walk: Walk) -> None:
    result = await walk.login("GITLAB", {"login": "alice"})
    assert result["__typename"] == "Integration", result
    assert (result["authMethod"], result["account"]["login"]) == ("OAUTH", "alice")


CHECKS: dict[str, Check] = {
    "thousands": thousands,
    "sso": sso,
    "no-admin": no_admin,
    "branches": branches,
    "selected": selected,
    "missing-scope": missing_scope,
    "revoked-token": revoked_token,
    "expiring-token": expiring_token,
    "expiring-login": expiring_login,
    "revoked-later": revoked_later,
    "linked-push": linked_push,
    "gitlab-maintainer": gitlab_maintainer,
    "gitlab-developer": gitlab_developer,
    "gitlab-missing-scope": gitlab_missing_scope,
    "github-login": github_login,
    "gitlab-login": gitlab_login,
}


def test_every_case_of_the_sheet_has_a_check() -> None:
    assert list(CHECKS) == [case.key for case in world.CASES]


async def test_each_line_of_the_cheat_sheet_shows_what_it_says(running_demo: RunningDemo) -> None:
    printed = running_demo.printed
    for case in world.CASES:
        assert case.shows in printed and (case.token is None or case.token in printed), case.key
    for user, jwt in running_demo.config["jwts"].items():
        assert f"{user}" in printed and jwt in printed
    failures = []
    async with httpx.AsyncClient(timeout=60) as http:
        walk = Walk(running_demo, http)
        for case in world.CASES:  # in order: a token connected for octocat replaces the one before
            try:
                await CHECKS[case.key](walk)
            except (AssertionError, KeyError, ops.GraphQLError) as exc:
                failures.append(f"{case.key}: {exc!r}")
    assert failures == [], "\n".join(failures)


def test_the_demo_page_shows_the_sheet_and_hands_out_the_jwts_from_its_configuration(
    running_demo: RunningDemo,
) -> None:
    page = httpx.get(f"{running_demo.page}/")
    assert page.status_code == 200
    for case in world.CASES:
        assert case.key in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "<script>" not in page.text, "no inline script"
    graphiql = httpx.get(f"{running_demo.page}/graphiql")
    assert graphiql.status_code == 200
    assert "/config.json" in httpx.get(f"{running_demo.page}/static/demo/common.js").text
    # The service lets the page's origin call it (CORS), as the platform's frontend would.
    preflight = httpx.options(
        running_demo.config["graphqlUrl"],
        headers={
            "Origin": running_demo.page,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.headers["access-control-allow-origin"] == running_demo.page


def test_make_demo_runs_what_these_tests_start() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndemo: ", 1)[1].split("\n\n", 1)[0]
    assert recipe.startswith("install-run\n"), "the same set-up as make run"
    assert recipe.splitlines()[1].strip() == "$(BIN)/python -m demo"
