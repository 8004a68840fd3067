"""A refresh happens once across replicas: two `python -m app serve` processes share one MongoDB and
the fake hosts on loopback; twenty concurrent requests need the expiring token at the same moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings.model import Settings
from app.settings.values import Secret
from tests.conftest import JWT_SECRET, KEY_A, token_for
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.fakes.server import run_in_thread
from tests.harness import free_port, serve
from tests.oauth_support import (
    APP_SLUG,
    COMPLETE_OAUTH,
    CONNECT_OAUTH,
    RETURN_TO,
    VERIFY,
    handed_on,
    new_github,
    new_gitlab,
    query_of,
)

pytestmark = pytest.mark.uvicorn


@contextlib.contextmanager
def served(env: dict[str, str], port: int, log_path: Path) -> Iterator[str]:
    """``python -m app serve`` on ``port`` with its log in ``log_path``, stopped on exit."""
    with log_path.open("wb") as log, serve(env, port=port, stdout=log, stderr=subprocess.STDOUT) as process:
        yield process.url


async def graphql(http: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any]) -> Any:
    bearer = token_for(Settings(auth_jwt_secret=Secret(JWT_SECRET)), "alice")
    response = await http.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.mark.parametrize("provider", ["GITHUB", "GITLAB"])
async def test_twenty_concurrent_requests_on_two_processes_refresh_the_token_once(
    provider: str, mongo_uri: str, tmp_path: Path
) -> None:
    github, gitlab = new_github(APP_SLUG), new_gitlab()
    fake: FakeGitHub | FakeGitLab = github if provider == "GITHUB" else gitlab
    fake.code_token_lifetime = 30  # due at once: the service renews tokens a minute before expiry
    port_a, port_b = free_port(), free_port()
    callback = f"http://127.0.0.1:{port_a}/oauth/callback"
    github.callback_urls, github.setup_url, gitlab.redirect_uris = [callback], callback, [callback]
    with run_in_thread(github.app) as github_url, run_in_thread(gitlab.app) as gitlab_url:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MONGODB_", "AUTH_", "ENCRYPTION_", "GIT"))
        }
        env |= {
            "DATA_DIR": str(tmp_path), "MONGODB_URI": mongo_uri, "MONGODB_DATABASE": f"refresh_{provider.lower()}",
            "ENCRYPTION_KEYS": f"a:{KEY_A}", "AUTH_JWT_SECRET": JWT_SECRET,
            "PUBLIC_URL": f"http://127.0.0.1:{port_a}", "FRONTEND_ORIGINS": "https://app.example.com",
            "GITHUB_URL": github_url, "GITHUB_API_URL": github_url, "GITHUB_APP_SLUG": APP_SLUG,
            "GITHUB_CLIENT_ID": github.client_id, "GITHUB_CLIENT_SECRET": github.client_secret,
            "GITLAB_URL": gitlab_url, "GITLAB_CLIENT_ID": gitlab.client_id,
            "GITLAB_CLIENT_SECRET": gitlab.client_secret, "GIT_HOST_ALLOWLIST": "127.0.0.1",
        }  # fmt: skip
        with (
            served(env, port_a, tmp_path / "a.log") as replica_a,
            served(env, port_b, tmp_path / "b.log") as replica_b,
        ):
            async with httpx.AsyncClient(timeout=60) as http:
                # Started on one replica, finished on the other: the state lives in MongoDB.
                started = await graphql(
                    http, replica_a, CONNECT_OAUTH, {"input": {"provider": provider, "returnTo": RETURN_TO}}
                )
                authorization = started["connectGitOAuth"]
                # The browser; its visits to the callback land on one replica, then the other.
                url, codes, callbacks = authorization["authorizationUrl"], [], [replica_b, replica_a]
                while not url.startswith(RETURN_TO.split("?")[0]):
                    if url.startswith(replica_a):
                        url = url.replace(replica_a, callbacks[0])
                        callbacks.reverse()
                    response = await http.get(url)
                    assert response.status_code == 302, response.text
                    url = response.headers["location"]
                    codes += [query_of(url)["code"]] if "code" in query_of(url) else []
                completed = await graphql(http, replica_a, COMPLETE_OAUTH, {"input": handed_on(response)})
                integration_id = completed["completeGitOAuth"]["id"]

                # The holder's refresh takes a while, so the other requests really have to wait for it.
                fake.hang_next(
                    0.5, path_prefix="/login/oauth/access_token" if provider == "GITHUB" else "/oauth/token"
                )
                replicas = [replica_a, replica_b]
                results = await asyncio.gather(
                    *(graphql(http, replicas[i % 2], VERIFY, {"id": integration_id}) for i in range(20))
                )
    logs = (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()

    verified = [result["verifyGitIntegration"] for result in results]
    assert fake.refresh_count == 1
    assert all(v["__typename"] == "Integration" and v["status"] == "ACTIVE" for v in verified), verified
    assert len({v["expiresAt"] for v in verified}) == 1, "every request used the one renewed token"
    secrets = [*fake.tokens, *fake.refresh_tokens, *codes, authorization["state"], fake.client_secret]
    assert not [secret for secret in secrets if secret in logs], (
        "no token, code, state or secret in a log line"
    )
    assert logs.count('"operation": "Verify"') == 20
