"""The fakes' consent pages (``make demo``): a page instead of an instant redirect, the user's choice,
cancel, and no page again for a user who authorized the app before (tests.fakes._consent)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fakes._consent import session_cookie
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab

CALLBACK = "http://service.test/oauth/callback"


def query(response: httpx.Response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response.headers["location"]).query)


async def test_github_asks_then_remembers_who_authorized() -> None:
    github = FakeGitHub()
    github.add_user("octocat")
    github.add_user("erin")
    github.consent_page = True
    params = {"client_id": github.client_id, "redirect_uri": CALLBACK, "state": "s1", "scope": "<b>repo</b>"}
    transport = httpx.ASGITransport(app=github.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://github.test") as browser:
        page = await browser.get("/login/oauth/authorize", params=params)
        assert page.status_code == 200 and "<form" in page.text
        assert "<b>repo</b>" not in page.text, "what came with the request is escaped"
        cancelled = await browser.post(
            "/login/oauth/authorize", data={**params, "login": "erin", "decision": "cancel"}
        )
        assert query(cancelled)["error"] == ["access_denied"]
        assert github.codes == {}
        approved = await browser.post(
            "/login/oauth/authorize", data={**params, "login": "erin", "decision": "approve"}
        )
        (code,) = query(approved)["code"]
        assert github.codes[code].user == "erin"
        assert browser.cookies[session_cookie("github")] == "erin"
        again = await browser.get("/login/oauth/authorize", params={**params, "state": "s2"})
        assert again.status_code == 302 and query(again)["state"] == ["s2"], (
            "no page for erin the second time"
        )


async def test_github_installs_on_the_repositories_the_user_picked() -> None:
    github = FakeGitHub(app_slug="demo-app")
    github.add_user("octocat")
    github.add_repositories("octocat", 3)
    github.consent_page, github.callback_urls = True, [CALLBACK]
    transport = httpx.ASGITransport(app=github.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://github.test") as browser:
        page = await browser.get("/apps/demo-app/installations/new", params={"state": "s"})
        assert 'name="repository_selection"' in page.text
        assert github.installations == {}
        answer = await browser.post(
            "/apps/demo-app/installations/new",
            data={
                "state": "s",
                "login": "octocat",
                "decision": "approve",
                "repository_selection": "selected",
                "repositories": "octocat/repo-0002",
            },
        )
    (installation,) = github.installations.values()
    assert (installation.repository_selection, installation.repositories) == (
        "selected",
        ["octocat/repo-0002"],
    )
    assert query(answer)["installation_id"] == [str(installation.id)]
    assert "octocat" in github.authorized_users


async def test_gitlab_asks_and_signs_in_the_user_who_approved() -> None:
    gitlab = FakeGitLab(redirect_uris=[CALLBACK])
    gitlab.add_user("alice")
    gitlab.add_user("dave")
    gitlab.consent_page = True
    params = {"client_id": gitlab.client_id, "redirect_uri": CALLBACK, "response_type": "code", "state": "s"}
    transport = httpx.ASGITransport(app=gitlab.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gitlab.test") as browser:
        page = await browser.get("/oauth/authorize", params=params)
        assert page.status_code == 200 and 'value="dave"' in page.text
        approved = await browser.post(
            "/oauth/authorize", data={**params, "login": "dave", "decision": "approve"}
        )
    (code,) = query(approved)["code"]
    assert gitlab.codes[code].user_id == gitlab.user("dave").id


async def test_without_consent_pages_the_fakes_answer_at_once_as_before() -> None:
    github = FakeGitHub()
    github.add_user("octocat")
    params = {"client_id": github.client_id, "redirect_uri": CALLBACK, "state": "s"}
    transport = httpx.ASGITransport(app=github.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://github.test") as browser:
        answer = await browser.get("/login/oauth/authorize", params=params)
    assert answer.status_code == 302 and "code" in query(answer)
