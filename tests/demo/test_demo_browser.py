"""``make demo`` in a real browser (Debian's Chromium, driven by Playwright): "Connect with GitHub" on the
demo page, the fake GitHub's install page, back through the service's /oauth/callback to the page's
returnTo, which finishes with completeGitOAuth; then GraphiQL opened from the page with the header filled.
The screenshot of the last page lands in tests/artifacts/demo-login.png.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, sync_playwright

from demo import world
from tests.demo.conftest import RunningDemo

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "tests" / "artifacts" / "demo-login.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.uvicorn


def headers_text(page: Page) -> str:
    """What GraphiQL's Headers editor holds (CodeMirror 5 keeps its instance on the element)."""
    editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
    page.get_by_role("button", name="Headers", exact=True).click()
    text: str = page.locator(editor).evaluate("element => element.CodeMirror.getValue()")
    return text


def test_a_frontend_developer_connects_with_github_in_the_browser(running_demo: RunningDemo) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed: apt-get install -y chromium")
    visited: list[str] = []
    problems: list[str] = []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        try:
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "framenavigated",
                lambda frame: visited.append(frame.url) if frame == page.main_frame else None,
            )
            page.goto(f"{running_demo.page}/")
            page.select_option("#user", "alice")
            page.click("#connect-github")

            # The fake GitHub's installation page: octocat installs the app on some repositories only.
            page.wait_for_selector("#approve")
            assert urlsplit(page.url).netloc == urlsplit(running_demo.config["githubUrl"]).netloc
            page.select_option("#login", "octocat")
            page.check("#selected")
            page.fill("#repositories", world.MONOREPO)
            page.click("#approve")

            # Back on the frontend's returnTo page, which finished the login as alice.
            page.wait_for_selector("body[data-outcome]", timeout=30_000)
            status = page.inner_text("#status")
            assert page.get_attribute("body", "data-outcome") == "Integration", page.inner_text("#result")
            assert status == "Connected GITHUB account octocat for alice"
            assert '"repositoryAccess": "SELECTED"' in page.inner_text("#result")
            assert urlsplit(page.url).query == "", "state and code left the address bar"

            # GraphiQL from the demo page: the header comes from the page's configuration, not the URL.
            page.goto(f"{running_demo.page}/")
            page.click("#graphiql")
            page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=30_000)
            assert "Bearer" not in page.url and urlsplit(page.url).query == ""
            assert f"Bearer {running_demo.jwt('alice')}" in headers_text(page)
            page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
            page.wait_for_function(
                "() => document.querySelector('.graphiql-response .CodeMirror-code')?.innerText.includes('octocat')",
                timeout=30_000,
            )
        finally:
            page.screenshot(path=str(SCREENSHOT))
            browser.close()

    assert problems == []
    github = urlsplit(running_demo.config["githubUrl"]).netloc
    service = urlsplit(running_demo.service).netloc
    hosts = [urlsplit(url).netloc for url in visited]
    assert github in hosts and running_demo.page.removeprefix("http://") in hosts
    # The callback only passes through (redirects): the browser never rests on the service.
    assert service not in hosts or all(
        "/oauth/callback" in url for url in visited if urlsplit(url).netloc == service
    )
