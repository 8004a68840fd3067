"""When a Git host fails: HTTP 500 or 502, a hang past ``HTTP_TIMEOUT_SECONDS``, a reset connection, invalid
JSON or a truncated body — while connecting a token (GitHub and GitLab), listing repositories and
completing a login.

The fakes run on 127.0.0.1 behind real sockets (a reset is a TCP RST, a truncated body a connection
dropped halfway) and the service uses the HTTP client it builds in production (SSRF guard, timeouts,
no redirects). Each fault is queued for every request the service sends for that step (a GET is tried
``RetryPolicy.attempts`` times), so the failure reaches the caller. What a user must see: a typed
error, nothing stored (checked in the raw collections), and the same request working right after.

Covered elsewhere: a host that answers 503 during verification (tests/api/test_connect_token.py), an
expired list served while the host is down (test_repository_picker.py), refresh and revocation
failures (test_oauth_github.py / test_oauth_gitlab.py), rate limits (tests/hosts/).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

import pytest
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.composition import Seams
from app.net.client import RetryPolicy
from app.settings.model import Settings
from tests.fakes._host import FakeHost
from tests.fakes.server import run_in_thread
from tests.oauth_support import (
    COMPLETE_OAUTH,
    FakeHosts,
    Service,
    handed_on,
    login_settings,
    open_service,
    query_of,
)
from tests.reliability.support import CLASSIC, GITLAB_TOKEN, documents, jail_connections, loopback_hosts

TIMEOUT = 0.4  # HTTP_TIMEOUT_SECONDS for the tests of a hanging host
RELAXED = 10.0  # HTTP_TIMEOUT_SECONDS for every other fault: no answer comes near it
HANG = 1.0  # how long a hanging host waits before it answers: well past the timeout
ATTEMPTS = RetryPolicy().attempts
FAULTS = ["500", "502", "hang", "reset", "invalid_json", "truncate"]

CONNECT = """mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) {
  __typename ... on Integration { id account { login } } ... on Error { code message }
  ... on ProviderUnavailableError { retryAfterSeconds } } }"""
# A search: it waits for the whole list, so what the walk's faults do shows in the answer (a first page
# without one may come from the host's own first page, tested in tests/api/test_first_page.py).
LIST = """query($id: ID!) { integration(id: $id) { repositories(first: 100, search: "/") {
  totalCount edges { node { fullName } } } } }"""


def inject(fake: FakeHost, fault: str, path: str, *, retried: bool) -> None:
    """Queue ``fault`` for every request the service will send to ``path`` for one step.

    GETs are retried unless the answer was a 200 (invalid JSON is a 200); POSTs are never retried.
    """
    count = ATTEMPTS if retried and fault != "invalid_json" else 1
    if fault in ("500", "502"):
        fake.fail_next(int(fault), count, path_prefix=path)
    elif fault == "hang":
        fake.hang_next(HANG, count, path_prefix=path)
    elif fault == "reset":
        fake.reset_next_connection(count, path_prefix=path)
    elif fault == "invalid_json":
        fake.invalid_json_next(count, path_prefix=path)
    else:
        fake.truncate_next(count, path_prefix=path)


# Retry without the backoff pauses: their length is not what is tested.
QUICK_RETRIES = Seams(retry=RetryPolicy(base_delay=0, max_delay=0))


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return jail_connections(monkeypatch)


@pytest.fixture(scope="module")
def module_hosts() -> Iterator[FakeHosts]:
    with loopback_hosts(github_repositories=247) as found:  # 250 in all: three pages of 100
        yield found


@pytest.fixture
def hosts(module_hosts: FakeHosts) -> FakeHosts:
    """The module's fakes (started once), without faults or requests left over from another test."""
    for fake in (module_hosts.github, module_hosts.gitlab):
        fake.clear_faults()
        fake.clear_requests()
    return module_hosts


@pytest.fixture
async def service(
    settings: Settings, hosts: FakeHosts, request: pytest.FixtureRequest
) -> AsyncIterator[Service]:
    configured = login_settings(settings, hosts, http_timeout_seconds=deadline_for(request))
    async with open_service(configured, own_http_client=True, seams=QUICK_RETRIES) as opened:
        yield opened


def deadline_for(request: pytest.FixtureRequest) -> float:
    """The short deadline only where a hang is the fault under test: every other step of a test (the good
    connect before a fault, the one after it) keeps the default, so a stalled process on a loaded machine
    cannot turn a good answer into a timeout (the fakes run in a thread of this process)."""
    callspec = getattr(request.node, "callspec", None)
    return TIMEOUT if callspec is not None and callspec.params.get("fault") == "hang" else RELAXED


def assert_unavailable(result: dict[str, Any], names: tuple[str, ...], *secrets: str) -> None:
    """A ``ProviderUnavailableError`` whose message names the host (or, for logins, the provider)."""
    assert result["__typename"] == "ProviderUnavailableError", result
    assert result["code"] == "PROVIDER_UNAVAILABLE"
    assert any(name in result["message"] for name in names), result["message"]
    for secret in secrets:
        assert secret not in str(result)


def host_of(url: str) -> str:
    return url.removeprefix("http://")


async def connect(service: Service, **values: str) -> dict[str, Any]:
    body = await service.graphql.execute(CONNECT, {"input": values})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["connectGitToken"]
    return result


# --- connectGitToken ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
async def test_github_failing_while_a_token_is_checked_stores_nothing_and_the_next_connect_works(
    service: Service, hosts: FakeHosts, fault: str
) -> None:
    inject(hosts.github, fault, "/user", retried=True)

    failed = await connect(service, provider="GITHUB", token=CLASSIC)

    assert_unavailable(failed, (host_of(hosts.github_url),), CLASSIC)
    assert await documents(service.db, "integrations") == []
    hosts.github.clear_faults()
    again = await connect(service, provider="GITHUB", token=CLASSIC)
    assert again["__typename"] == "Integration"
    assert again["account"]["login"] == "octocat"
    assert len(await documents(service.db, "integrations")) == 1


@pytest.mark.parametrize("fault", FAULTS)
async def test_gitlab_failing_while_a_token_is_checked_stores_nothing_and_the_next_connect_works(
    service: Service, hosts: FakeHosts, fault: str
) -> None:
    inject(hosts.gitlab, fault, "/api/v4/personal_access_tokens/self", retried=True)

    failed = await connect(service, provider="GITLAB", token=GITLAB_TOKEN)

    assert_unavailable(failed, (host_of(hosts.gitlab_url),), GITLAB_TOKEN)
    assert await documents(service.db, "integrations") == []
    hosts.gitlab.clear_faults()
    again = await connect(service, provider="GITLAB", token=GITLAB_TOKEN)
    assert again["__typename"] == "Integration"
    assert again["account"]["login"] == "alice"


# --- the repository listing -----------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
async def test_github_failing_while_repositories_are_listed_caches_nothing_and_the_next_listing_works(
    service: Service, hosts: FakeHosts, fault: str
) -> None:
    integration_id = (await connect(service, provider="GITHUB", token=CLASSIC))["id"]
    inject(hosts.github, fault, "/user/repos", retried=True)

    failed = await service.graphql.execute(LIST, {"id": integration_id})

    assert failed["data"] == {"integration": None}
    [error] = failed["errors"]
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE", error
    assert host_of(hosts.github_url) in error["message"]
    assert await documents(service.db, "repository_cache") == []
    hosts.github.clear_faults()
    again = await service.graphql.execute(LIST, {"id": integration_id})
    assert again["data"]["integration"]["repositories"]["totalCount"] == 250


class FailingPage:
    """Answers 502 to every request for one page of ``/user/repos`` while ``failing``; the rest passes."""

    def __init__(self, app: ASGIApp, page: str) -> None:
        self.app = app
        self.page = page
        self.failing = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listing = scope["type"] == "http" and scope["path"].endswith("/user/repos")
        if self.failing and listing and parse_qs(scope["query_string"].decode()).get("page") == [self.page]:
            await HTMLResponse("<h1>502 Bad Gateway</h1>", 502)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def test_a_listing_that_breaks_on_its_last_page_caches_no_part_of_it(
    settings: Settings, hosts: FakeHosts
) -> None:
    failing = FailingPage(hosts.github.app, page="3")
    with run_in_thread(failing) as github_url:
        moved = replace(hosts, github_url=github_url)
        configured = login_settings(settings, moved, http_timeout_seconds=RELAXED)
        async with open_service(configured, own_http_client=True, seams=QUICK_RETRIES) as service:
            integration_id = (await connect(service, provider="GITHUB", token=CLASSIC))["id"]

            failed = await service.graphql.execute(LIST, {"id": integration_id})

            assert failed["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
            assert hosts.github.count("GET", "/user/repos") >= 2, "pages 1 and 2 were fetched"
            assert await documents(service.db, "repository_cache") == []
            failing.failing = False
            again = await service.graphql.execute(LIST, {"id": integration_id})
            assert again["data"]["integration"]["repositories"]["totalCount"] == 250


# --- completing a login ---------------------------------------------------------------------------

STEPS = {
    # step: (path, retried) — the code exchange is a POST (never retried), the check of the token a GET.
    "code exchange": ("/login/oauth/access_token", False),
    "token check": ("/user", True),
}


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("fault", FAULTS)
async def test_github_failing_while_a_login_completes_stores_nothing_and_a_new_login_works(
    service: Service, hosts: FakeHosts, fault: str, step: str
) -> None:
    authorization = await service.start("GITHUB")
    location = await service.visit_host(authorization["authorizationUrl"])
    path, retried = STEPS[step]
    inject(hosts.github, fault, path, retried=retried)

    body = await service.graphql.execute(
        COMPLETE_OAUTH, {"input": {"state": authorization["state"], "code": query_of(location)["code"]}}
    )

    assert "errors" not in body, body
    assert_unavailable(
        body["data"]["completeGitOAuth"], (host_of(hosts.github_url), "GitHub"), query_of(location)["code"]
    )
    assert await documents(service.db, "integrations") == []
    [state] = await documents(service.db, "oauth_states")
    assert state["usedAt"] is not None, "a state is single use, even when the host failed"
    hosts.github.clear_faults()
    assert (await service.login("GITHUB"))["__typename"] == "Integration"
    [integration] = await documents(service.db, "integrations")
    assert integration["account"]["login"] == "octocat"


@pytest.mark.parametrize("fault", FAULTS)
async def test_gitlab_failing_while_a_login_is_exchanged_answers_the_error_and_stores_nothing(
    service: Service, hosts: FakeHosts, fault: str
) -> None:
    authorization = await service.start("GITLAB")
    location = await service.visit_host(authorization["authorizationUrl"])
    inject(hosts.gitlab, fault, "/oauth/token", retried=False)

    result = await service.complete(handed_on(await service.callback(location)))

    assert result["__typename"] == "ProviderUnavailableError"
    assert await documents(service.db, "integrations") == []
    hosts.gitlab.clear_faults()
    assert (await service.login("GITLAB"))["__typename"] == "Integration"
