"""An acknowledged webhook delivery is never lost: real processes killed with SIGKILL, again and again.

Issue 17's rule, for deliveries: signed pushes go to ``POST /webhooks/github/{link id}`` of ``python -m app
serve``, three at a time, and the embedded database (or the service with its database) is killed while
they are in flight, five times per test. After each restart every delivery that was answered 200 must
be among the link's events, read through the API as the deployer reads them. The processes and the kill
loop are ``tests.processes``; docs/reliability.md ("Durability") has the figures (``pytest -s`` prints them).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.graphql.types.node import from_global_id
from app.graphql.types.repository import repository_global_id
from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import Secret
from tests.conftest import JWT_SECRET
from tests.fakes import scenarios
from tests.fakes._github_deploy import sign
from tests.fakes.github import FakeGitHub
from tests.fakes.server import run_in_thread
from tests.harness import free_port
from tests.processes import (
    DatabaseProcess,
    GraphQLCaller,
    ServiceProcess,
    acknowledged_writes_survive,
    service_env,
)

pytestmark = pytest.mark.uvicorn

REPOSITORY = "octocat/repo-0002"
EVENTS = """
query($id: ID!, $after: String) { node(id: $id) { ... on RepositoryLink {
  events(first: 100, after: $after) { edges { node { deliveryId } } pageInfo { hasNextPage endCursor } } } } }
"""


@pytest.fixture(scope="module")
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = scenarios.default_github(FakeGitHub(), repositories=4)
    with run_in_thread(fake.app) as url:
        yield fake, url


class Deliveries:
    """Signs pushes for one link and reads back which were stored, through the deployer's API."""

    def __init__(self, http: httpx.AsyncClient, service_url: str, fake: FakeGitHub) -> None:
        self.http = http
        self.service_url = service_url
        self.fake = fake
        self.person = GraphQLCaller(http, service_url)
        self.deployer = {
            "Authorization": "Bearer "
            + issue_development_token(
                Settings(auth_jwt_secret=Secret(JWT_SECRET)), "deployer", scope="git:deploy", act_for="alice"
            )
        }
        self.link = ""
        self.url = ""
        self.secret = ""
        self.run = uuid.uuid4().hex[:8]

    async def set_up(self) -> None:
        connected = await self.person.execute(
            "mutation($t: String!) { connectGitToken(input: {provider: GITHUB, token: $t}) { ... on Integration { id } } }",
            {"t": scenarios.GITHUB_CLASSIC_TOKEN},
        )
        integration = from_global_id(connected["data"]["connectGitToken"]["id"])
        assert integration is not None
        linked = await self.person.execute(
            "mutation($r: ID!) { linkRepository(input: {repositoryId: $r}) { ... on RepositoryLink { id webhookUrl } } }",
            {"r": repository_global_id(integration[1], REPOSITORY)},
        )
        self.link, self.url = (
            linked["data"]["linkRepository"]["id"],
            linked["data"]["linkRepository"]["webhookUrl"],
        )
        found = self.fake.hook_posting_to(self.url)
        assert found is not None and found[1].secret
        self.secret = found[1].secret
        self.fake.outbox.take_all()  # the ping is not what this test is about

    async def deliver(self, n: int) -> str | None:
        """The n-th push; its delivery id once the service answered 200, else None."""
        delivery = f"kill-{self.run}-{n}"
        body = json.dumps(
            {
                "ref": "refs/heads/main",
                "before": "0" * 40,
                "after": f"{n + 1:040x}",
                "head_commit": {"message": f"push {n}"},
            }
        ).encode()
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "Content-Type": "application/json",
        }
        try:
            response = await self.http.post(self.url, content=body, headers=headers | sign(self.secret, body))
        except httpx.TransportError:
            return None  # the service died while answering: not acknowledged
        return delivery if response.status_code == 200 else None

    async def stored(self) -> set[str]:
        found: set[str] = set()
        after: str | None = None
        while True:
            response = await self.http.post(
                f"{self.service_url}/graphql",
                json={"query": EVENTS, "variables": {"id": self.link, "after": after}},
                headers=self.deployer,
            )
            body: dict[str, Any] = response.json()
            assert "errors" not in body, body
            page = body["data"]["node"]["events"]
            found |= {edge["node"]["deliveryId"] for edge in page["edges"]}
            if not page["pageInfo"]["hasNextPage"]:
                return found
            after = page["pageInfo"]["endCursor"]


def environment(data_dir: Path, github_url: str, port: int, **variables: str) -> dict[str, str]:
    return service_env(
        data_dir,
        GITHUB_URL=github_url,
        GITHUB_API_URL=github_url,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        **variables,
    )


async def test_acknowledged_deliveries_survive_sigkill_of_the_embedded_database(
    github: tuple[FakeGitHub, str], tmp_path: Path
) -> None:
    fake, url = github
    port = free_port()
    with DatabaseProcess(tmp_path / "db") as database:
        env = environment(tmp_path / "data", url, port, MONGODB_URI=database.uri)
        with ServiceProcess(env, tmp_path / "serve.log", port=port) as service:
            async with httpx.AsyncClient(timeout=30) as http:
                deliveries = Deliveries(http, service.url, fake)
                await deliveries.set_up()

                def restart() -> None:
                    database.restart()  # same files, same port: the service reconnects by itself
                    service.wait_ready()

                report = await acknowledged_writes_survive(
                    write=deliveries.deliver, stored=deliveries.stored, kill=database.kill, recover=restart
                )
            assert service.process is not None and service.process.poll() is None, "serve outlived it"
    print(report.line("deliveries, SIGKILL of the embedded database"))
    assert report.kills == 5 and len(report.acknowledged) >= 30
    assert report.lost == [], report


async def test_acknowledged_deliveries_survive_sigkill_of_the_service(
    github: tuple[FakeGitHub, str], tmp_path: Path
) -> None:
    fake, url = github
    port = free_port()
    env = environment(tmp_path / "data", url, port)
    with ServiceProcess(env, tmp_path / "serve.log", port=port) as service:
        kills = itertools.cycle([service.kill, service.kill_with_database])
        async with httpx.AsyncClient(timeout=30) as http:
            deliveries = Deliveries(http, service.url, fake)
            await deliveries.set_up()
            report = await acknowledged_writes_survive(
                write=deliveries.deliver,
                stored=deliveries.stored,
                kill=lambda: next(kills)(),
                recover=service.restart,
            )
    print(report.line("deliveries, SIGKILL of the service"))
    assert report.kills == 5 and len(report.acknowledged) >= 30
    assert report.lost == [], report
