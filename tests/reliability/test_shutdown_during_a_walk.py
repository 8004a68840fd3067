"""SIGTERM while a worker walks a slow host ends the process promptly (issue 11, item 2).

With a host announcing 20 pages of 4 s each, a worker ignored SIGTERM for ten minutes: uvicorn waited
for every request in flight, without a bound. Here the fake GitLab runs in its own process and takes
10 s a page, so a listing of 20 pages (three rounds of at most ten pages) takes 30 s; ``serve`` must
still exit soon after the grace it gives requests in flight (``SHUTDOWN_GRACE_SECONDS``), and exit 0.
"""

from __future__ import annotations

import base64
import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.__main__ import SHUTDOWN_GRACE_SECONDS
from app.security.auth import issue_development_token
from app.settings import Secret, Settings
from tests.fakes import scenarios
from tests.harness import fake_host_process, serve, service_environment

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


def test_sigterm_while_a_slow_host_is_walked_ends_the_worker_promptly(tmp_path: Path) -> None:
    with fake_host_process("gitlab", gitlab_world(), tmp_path) as (gitlab_url, _):
        env = service_environment(
            DATA_DIR=str(tmp_path / "data"),
            AUTH_JWT_SECRET=JWT_SECRET,
            ENCRYPTION_KEYS="k:" + base64.b64encode(b"k" * 32).decode(),
            GITLAB_URL=gitlab_url,
            HTTP_TIMEOUT_SECONDS=str(PAGE_SECONDS * 3),
            LOG_LEVEL="WARNING",
        )
        with serve(env) as served:
            connected = graphql(
                served.url,
                "mutation($t: String!) { connectGitToken(input: {provider: GITLAB, token: $t}) { ... on Integration { id } } }",
                {"t": TOKEN},
            )
            integration = connected["data"]["connectGitToken"]["id"]
            httpx.post(f"{gitlab_url}/_fake/config", json={"delay": PAGE_SECONDS})
            asked_before = httpx.get(f"{gitlab_url}/_fake/state").json()["requests"]
            listing = threading.Thread(
                target=lambda: _ignore_errors(
                    graphql,
                    served.url,
                    "query($id: ID!) { integration(id: $id) { repositories(first: 5) { totalCount } } }",
                    {"id": integration},
                ),
                daemon=True,
            )
            listing.start()
            while httpx.get(f"{gitlab_url}/_fake/state").json()["requests"] == asked_before:
                time.sleep(0.05)  # the walk has reached the host

            started = time.monotonic()
            served.process.send_signal(signal.SIGTERM)
            status = served.process.wait(timeout=3 * PAGE_SECONDS + 30)
            took = time.monotonic() - started

    # uvicorn raises the signal again once it has shut down (its exit status says what stopped it).
    assert status in (0, -signal.SIGTERM), status
    # Well before the walk's 30 s: the grace for requests in flight, then the rest is cancelled.
    assert took < SHUTDOWN_GRACE_SECONDS + 8, f"SIGTERM took {took:.1f} s"


def _ignore_errors(call: Any, *args: Any) -> None:
    # The server goes away mid-request, as it should: no answer, or uvicorn's plain-text 500.
    with contextlib.suppress(httpx.HTTPError, ValueError):
        call(*args)
