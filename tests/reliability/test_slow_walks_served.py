"""A served process walking a slow host: a client that leaves stops the walk, SIGTERM ends it promptly.

Issue 11, item 2. With a host announcing 20 pages of 4 s each, a worker ignored SIGTERM for ten
minutes: uvicorn waited for every request in flight, without a bound, and a request whose client had
gone kept walking the host. Here ``python -m app serve`` runs in its own process, the fake GitLab in
another (20 pages of 100 projects), and the pages are slow (``/_fake/config`` delay).
"""

from __future__ import annotations

import base64
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.__main__ import SHUTDOWN_GRACE_SECONDS
from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import Secret
from tests.fakes import scenarios
from tests.harness import ServedProcess, fake_host_process, serve, service_environment

pytestmark = pytest.mark.uvicorn

PAGE_SECONDS = 10.0
JWT_SECRET = "shutdown-test-" + "s" * 40
TOKEN = scenarios.GITLAB_PERSONAL_TOKEN


def gitlab_world() -> dict[str, Any]:
    return {
        "users": ["alice"],
        "projects": [{"namespace": "alice", "count": 2000}],  # 20 pages of 100
        "personal_tokens": [{"token": TOKEN, "user": "alice", "scopes": scenarios.GITLAB_REQUIRED_SCOPES}],
    }


def graphql(url: str, query: str, variables: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    jwt = issue_development_token(Settings(auth_jwt_secret=Secret(JWT_SECRET)), "alice")
    response = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {jwt}"},
        timeout=timeout,
    )
    body: dict[str, Any] = response.json()
    return body


LIST = "query($id: ID!) { integration(id: $id) { repositories(first: 5) { totalCount } } }"


@contextlib.contextmanager
def walking(tmp_path: Path, page_seconds: float) -> Iterator[tuple[ServedProcess, str, str]]:
    """The service and the fake GitLab, the integration connected; pages then take ``page_seconds``."""
    with fake_host_process("gitlab", gitlab_world(), tmp_path) as (gitlab_url, _):
        env = service_environment(
            DATA_DIR=str(tmp_path / "data"),
            AUTH_JWT_SECRET=JWT_SECRET,
            ENCRYPTION_KEYS="k:" + base64.b64encode(b"k" * 32).decode(),
            GITLAB_URL=gitlab_url,
            HTTP_TIMEOUT_SECONDS=str(page_seconds * 3),
            LOG_LEVEL="WARNING",
        )
        with serve(env) as served:
            connected = graphql(
                served.url,
                "mutation($t: String!) { connectGitToken(input: {provider: GITLAB, token: $t}) { ... on Integration { id } } }",
                {"t": TOKEN},
            )
            httpx.post(f"{gitlab_url}/_fake/config", json={"delay": page_seconds})
            yield served, gitlab_url, connected["data"]["connectGitToken"]["id"]


def asked(gitlab_url: str) -> int:
    count: int = httpx.get(f"{gitlab_url}/_fake/state").json()["requests"]
    return count


def test_a_client_that_leaves_stops_the_walk_of_the_served_process(tmp_path: Path) -> None:
    with walking(tmp_path, page_seconds=1.0) as (served, gitlab_url, integration):
        before = asked(gitlab_url)
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
            graphql(served.url, LIST, {"id": integration}, timeout=0.5)
        time.sleep(4)  # the walk would be done by now: three rounds of 1 s

        assert 0 < asked(gitlab_url) - before < 20  # it stopped; it did not go on to page 20
        assert served.process.poll() is None


def test_sigterm_while_a_slow_host_is_walked_ends_the_worker_promptly(tmp_path: Path) -> None:
    with walking(tmp_path, PAGE_SECONDS) as (served, gitlab_url, integration):
        before = asked(gitlab_url)
        listing = threading.Thread(
            target=lambda: _ignore_errors(graphql, served.url, LIST, {"id": integration}), daemon=True
        )
        listing.start()
        while asked(gitlab_url) == before:
            time.sleep(0.05)  # the walk has reached the host

        started = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        status = served.process.wait(timeout=3 * PAGE_SECONDS + 30)
        took = time.monotonic() - started

    assert status == 0, status
    # Well before the walk's 30 s: the grace for requests in flight, then the rest is cancelled.
    assert took < SHUTDOWN_GRACE_SECONDS + 8, f"SIGTERM took {took:.1f} s"


def _ignore_errors(call: Any, *args: Any) -> None:
    # The server goes away mid-request, as it should: no answer, or uvicorn's plain-text 500.
    with contextlib.suppress(httpx.HTTPError, ValueError):
        call(*args)
