"""GraphiQL in a real browser: Debian's Chromium, driven by Playwright, against the app in a real uvicorn.

The page must work with nothing but the service itself (its assets are vendored: no CDN), under the
Content-Security-Policy the service sends; a developer pastes the Authorization header into the Headers
tab, runs a query and reads the answer. The screenshot lands in tests/artifacts/graphiql.png.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page, sync_playwright

from app.main import GRAPHIQL_DIR, create_app
from app.settings.model import Settings
from tests.conftest import running_app, token_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "tests" / "artifacts" / "graphiql.png"
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
QUERY = "{ integrations { id provider } }"
# Collects what the Content-Security-Policy blocks, from before the page's first script.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The app (GraphiQL on, as in development) in a real uvicorn on a free loopback port."""
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed: apt-get install -y chromium")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        assert httpx.get(f"{url}/readyz").status_code == 200
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def editor_value(page: Page, selector: str) -> str:
    """The text of a GraphiQL editor (CodeMirror 5 keeps its instance on the element)."""
    value: str = page.locator(selector).evaluate("element => element.CodeMirror.getValue()")
    return value


@pytest.mark.uvicorn
def test_a_developer_runs_a_query_with_the_authorization_header_in_graphiql(
    served: str, settings: Settings
) -> None:
    origin = urlsplit(served).netloc
    requested: list[str] = []
    problems: list[str] = []
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.add_init_script(RECORD_CSP_VIOLATIONS)
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console: {message.text}") if message.type == "error" else None
                ),
            )

            response = page.goto(f"{served}/graphql")
            assert response is not None
            assert response.status == 200
            assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
            page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=30_000)

            # The Headers tab, then paste the header as the README tells a developer to.
            page.get_by_role("button", name="Headers", exact=True).click()
            headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
            page.locator(headers_editor).click()
            token = token_for(settings, "alice")
            page.keyboard.insert_text(json.dumps({"Authorization": f"Bearer {token}"}))
            assert json.loads(editor_value(page, headers_editor)) == {"Authorization": f"Bearer {token}"}

            # Replace the welcome text with the query and run it with the play button.
            page.locator(".graphiql-query-editor .CodeMirror").click()
            page.keyboard.press("Control+A")
            page.keyboard.insert_text(QUERY)
            assert editor_value(page, ".graphiql-query-editor .CodeMirror") == QUERY
            page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()

            # What the result pane shows (CodeMirror renders indentation as no-break spaces).
            result = page.locator(".graphiql-response .CodeMirror-code")
            page.wait_for_function(
                "() => document.querySelector('.graphiql-response .CodeMirror-code')?.innerText.includes('}')",
                timeout=30_000,
            )
            shown = result.inner_text().replace("\xa0", " ").replace("\u200b", "")
            assert json.loads(shown) == {"data": {"integrations": []}}, shown

            violations = page.evaluate("window.__cspViolations")
        finally:
            page.screenshot(path=str(SCREENSHOT))  # passed or not: what the page showed
            browser.close()

    assert violations == [], "the Content-Security-Policy blocked part of the page"
    assert problems == []
    assert SCREENSHOT.stat().st_size > 10_000
    # Everything came from the service itself: no CDN, nothing remote.
    foreign = [url for url in requested if urlsplit(url).netloc != origin and not url.startswith("data:")]
    assert foreign == []
    assert any("/static/graphiql/graphiql/graphiql.min.js" in url for url in requested)


async def test_without_graphiql_there_is_no_page_and_no_assets(settings: Settings) -> None:
    async with running_app(replace(settings, graphiql=False)) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/static/graphiql/graphiql/graphiql.min.js")).status_code == 404
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            assert "graphiql" not in page.text.lower()


def test_the_page_loads_only_vendored_files_whose_digests_it_pins() -> None:
    """Without a browser too: every asset is a local file that exists, and its `integrity` is right."""
    html = (GRAPHIQL_DIR / "index.html").read_text()
    assert "://" not in html, "a remote URL"
    assert "<script>" not in html
    assert "<style" not in html
    references = re.findall(r'(?:src|href)="([^"]+)"(?:\s+type="[^"]*")?(?:\s+integrity="([^"]*)")?', html)
    assert len(references) == 10  # the icon, 3 style sheets, 6 scripts
    assert sum(1 for _, integrity in references if integrity) == 7  # every vendored file is pinned
    for path, integrity in references:
        assert path.startswith("static/graphiql/"), path
        file = GRAPHIQL_DIR / path.removeprefix("static/graphiql/")
        assert file.is_file(), path
        if integrity:
            digest = base64.b64encode(hashlib.sha384(file.read_bytes()).digest()).decode()
            assert integrity == f"sha384-{digest}", path
    for package in ("react", "react-dom", "js-cookie", "graphiql", "plugin-explorer"):
        assert (GRAPHIQL_DIR / package / "LICENSE").is_file(), package


@pytest.mark.uvicorn
def test_graphiql_neither_reads_headers_from_its_url_nor_writes_variables_into_it(
    served: str, settings: Settings
) -> None:
    """Issue 11, item 7. Strawberry's page took ``?headers=`` from the address bar (a link could put
    someone else's JWT into a developer's GraphiQL, so that what they connect lands on that account)
    and wrote every edit of the variables into it (a pasted token in the URL, the history, a Referer).
    """
    planted = token_for(settings, "mallory")
    link = f"{served}/graphql?" + urlencode(
        {
            "headers": json.dumps({"Authorization": f"Bearer {planted}"}),
            "variables": json.dumps({"planted": True}),
            "q": "{ integrations { id } }",
        }
    )
    secret = "ghp_" + "S" * 36
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(link)
            page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=30_000)
            entries = page.evaluate("window.history.length")
            page.get_by_role("button", name="Headers", exact=True).click()
            headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
            shown_headers = editor_value(page, headers_editor)
            page.get_by_role("button", name="Variables", exact=True).click()
            variables_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
            shown_variables = editor_value(page, variables_editor)

            page.locator(variables_editor).click()
            page.keyboard.insert_text(json.dumps({"input": {"provider": "GITHUB", "token": secret}}))
            page.locator(".graphiql-query-editor .CodeMirror").click()
            page.keyboard.press("Control+A")
            page.keyboard.insert_text(
                "mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) { __typename } }"
            )
            address = page.url
            entries_after = page.evaluate("window.history.length")
        finally:
            browser.close()

    assert planted not in shown_headers and "Authorization" not in shown_headers
    assert "planted" not in shown_variables
    assert address == link, "the address bar was left as it was"
    assert secret not in address
    assert entries_after == entries, "no entry was added to the history either"
