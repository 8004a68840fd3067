"""What the deploy-from-a-repository tests share: the service in process with both fake hosts, and callers.

``deploy_world(settings)`` runs the service (ASGI, its lifespan) with GitHub at ``http://github.test`` and
GitLab at ``http://gitlab.test`` served by the fakes in process (``tests.picker_support.HostRouter``), and
``PUBLIC_URL`` at ``https://deploy.example.com``. Tokens are connected through the real API.
``world.deliver(fake)`` sends what the fake host queued (pushes, pings, redeliveries) to the service's
receivers. ``world.deployer`` and ``world.builder`` are the platform's services: JWTs with the scopes
``git:deploy`` and ``git:clone`` acting for alice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx

from app.graphql.types.node import from_global_id
from app.graphql.types.repository import repository_global_id
from app.security.auth import issue_development_token
from app.settings.model import Settings
from tests.conftest import running_app
from tests.fakes import scenarios
from tests.fakes._webhooks import Attempt
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.harness import ServedApp
from tests.picker_support import picker_settings, upstream

PUBLIC_URL = "https://deploy.example.com"
GITHUB_TOKEN = scenarios.GITHUB_CLASSIC_TOKEN  # octocat: repo, admin:repo_hook
GITLAB_TOKEN = scenarios.GITLAB_PERSONAL_TOKEN  # alice: api, read_repository, write_repository
GITHUB_REPOSITORY = "octocat/repo-0002"  # private (every second one is)
GITLAB_PROJECT = "acme/api"  # private, added by deploy_world

ERROR_FIELDS = "... on Error { __typename code message }"
LINK_FIELDS = """
    id branch status statusMessage webhookUrl lastEventAt createdAt
    repository { id fullName defaultBranch cloneUrl }
    integration { id host }
"""
LINK = f"""
mutation Link($input: LinkRepositoryInput!) {{
  linkRepository(input: $input) {{
    __typename
    ... on RepositoryLink {{ {LINK_FIELDS} }}
    {ERROR_FIELDS}
    ... on MissingPermissionsError {{ missing granted }}
  }}
}}
"""
UNLINK = f"""
mutation Unlink($id: ID!) {{
  unlinkRepository(input: {{id: $id}}) {{
    __typename
    ... on UnlinkedRepository {{ id hostCleanedUp stayed: message }}
    {ERROR_FIELDS}
  }}
}}
"""
EVENTS = """
query Events($id: ID!, $first: Int, $after: String) {
  node(id: $id) {
    ... on RepositoryLink {
      lastEventAt
      events(first: $first, after: $after) {
        edges { cursor node { id kind ref before after headCommitMessage pusher deliveryId receivedAt sequence } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""
SET_STATUS = f"""
mutation Status($input: SetCommitStatusInput!) {{
  setCommitStatus(input: $input) {{
    __typename
    ... on CommitStatus {{ sha state context }}
    {ERROR_FIELDS}
    ... on MissingPermissionsError {{ missing }}
  }}
}}
"""
CLONE = f"""
mutation Clone($id: ID!) {{
  cloneCredentials(input: {{linkId: $id}}) {{
    __typename
    ... on CloneCredentials {{ url username password sshPrivateKey sshKnownHosts expiresAt }}
    {ERROR_FIELDS}
  }}
}}
"""


def deploy_settings(settings: Settings, **overrides: Any) -> Settings:
    return picker_settings(replace(settings, public_url=PUBLIC_URL), **overrides)


class Caller:
    """Posts GraphQL documents as one JWT: a person's, or a platform service's acting for alice."""

    def __init__(self, http: httpx.AsyncClient, bearer: str) -> None:
        self.http = http
        self.bearer = bearer

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.bearer}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = await self.raw(query, variables)
        assert "errors" not in body, body
        return body["data"]


@dataclass
class World:
    app: ServedApp
    http: httpx.AsyncClient  # reaches the service (GraphQL and the webhook receivers)
    settings: Settings
    github: FakeGitHub
    gitlab: FakeGitLab
    alice: Caller
    bob: Caller
    deployer: Caller  # git:deploy, acting for alice
    builder: Caller  # git:clone, acting for alice

    def caller(self, user: str, *, scope: str | None = None, act_for: str | None = None) -> Caller:
        return Caller(self.http, issue_development_token(self.settings, user, scope=scope, act_for=act_for))

    async def connect(self, provider: str, token: str, *, user: Caller | None = None) -> str:
        data = await (user or self.alice).data(
            "mutation($i: ConnectGitTokenInput!) { connectGitToken(input: $i) { __typename "
            "... on Integration { id } ... on Error { message } } }",
            {"i": {"provider": provider, "token": token}},
        )
        result = data["connectGitToken"]
        assert result["__typename"] == "Integration", result
        return str(result["id"])

    async def link(
        self, integration: str, repository: str, branch: str | None = None, *, user: Caller | None = None
    ) -> dict[str, Any]:
        local = from_global_id(integration)
        assert local is not None
        variables = {"input": {"repositoryId": repository_global_id(local[1], repository), "branch": branch}}
        data = await (user or self.alice).data(LINK, variables)
        result: dict[str, Any] = data["linkRepository"]
        return result

    async def deliver(self, fake: FakeGitHub | FakeGitLab) -> list[Attempt]:
        """Send what ``fake`` queued to the service (and what that queues), one after another."""
        return await fake.outbox.flush(self.http)

    async def events(
        self, link_id: str, *, first: int | None = None, after: str | None = None
    ) -> dict[str, Any]:
        data = await self.deployer.data(EVENTS, {"id": link_id, "first": first, "after": after})
        node: dict[str, Any] = data["node"]
        return node


@contextlib.asynccontextmanager
async def deploy_world(
    settings: Settings,
    *,
    github: FakeGitHub | None = None,
    gitlab: FakeGitLab | None = None,
    **overrides: Any,
) -> AsyncIterator[World]:
    """The service with both fakes in process (see the module docstring); ``github`` and ``gitlab``: the
    fakes of an earlier world (a service started again)."""
    if github is None:
        github = scenarios.default_github(FakeGitHub(), repositories=4)
    if gitlab is None:
        gitlab = scenarios.default_gitlab(FakeGitLab(), repositories=3)
        gitlab.add_project("acme", "api", visibility="private")
    configured = deploy_settings(settings, **overrides)
    async with upstream(github, gitlab) as hosts, running_app(configured, hosts) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:

            def token(user: str, **claims: str) -> str:
                return issue_development_token(configured, user, **claims)  # type: ignore[arg-type]

            yield World(
                app=app,
                http=http,
                settings=configured,
                github=github,
                gitlab=gitlab,
                alice=Caller(http, token("alice")),
                bob=Caller(http, token("bob")),
                deployer=Caller(http, token("deployer", scope="git:deploy", act_for="alice")),
                builder=Caller(http, token("builder", scope="git:clone", act_for="alice")),
            )


def gitlab_project_id(world: World, path: str) -> str:
    return str(world.gitlab.project(path).id)
