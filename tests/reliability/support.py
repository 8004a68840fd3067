"""What the reliability tests share.

- ``loopback_hosts()``: the fake GitHub and GitLab of ``tests.oauth_support`` on 127.0.0.1, with the tokens
  the tests paste (``octocat``'s and ``hubot``'s classic tokens, ``alice``'s GitLab personal token).
- ``jail_connections(monkeypatch)``: every TCP connection the service opens is recorded, and one to
  anything but 127.0.0.1 fails the test instead of leaving the machine.
- ``documents(db, ...)``: the raw collections, to check that nothing is stored half; ``no_data(body)``.
- ``link_with_an_event(service, hosts, repository)``: alice links a repository and the host delivers a push.
- ``module_settings(...)``: the ``settings`` fixture's values, for a service shared by a whole module.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpcore
import pytest

from app.graphql.types.node import from_global_id
from app.settings.model import Settings
from app.settings.values import EncryptionKey, Secret
from tests.conftest import JWT_SECRET, KEY_A
from tests.fakes import scenarios
from tests.oauth_support import FakeHosts, Service, fake_hosts

CLASSIC = scenarios.GITHUB_CLASSIC_TOKEN  # octocat: repo, admin:repo_hook
HUBOT_CLASSIC = "ghp_" + "HubotClassicToken".ljust(36, "0")  # hubot: repo, admin:repo_hook
GITLAB_TOKEN = scenarios.GITLAB_PERSONAL_TOKEN  # alice on the fake GitLab: api, read/write_repository
LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def loopback_hosts(*, github_repositories: int = 0) -> Iterator[FakeHosts]:
    """The fake hosts on loopback; ``octocat`` gets ``github_repositories`` more repositories (100 a page)."""
    with fake_hosts() as hosts:
        hosts.github.add_classic_token(CLASSIC, "octocat", ["repo", "admin:repo_hook"])
        hosts.github.add_classic_token(HUBOT_CLASSIC, "hubot", ["repo", "admin:repo_hook"])
        if github_repositories:
            hosts.github.add_repositories("octocat", github_repositories)
        yield hosts


def jail_connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the address of every TCP connection httpx opens; refuse (and fail on) any but loopback.

    The service's guarded network backend connects through ``httpcore.AnyIOBackend``, so this sits
    below the SSRF guard: whatever the guard lets through is seen here before a packet is sent.
    """
    original = httpcore.AnyIOBackend.connect_tcp
    addresses: list[str] = []

    async def connect_tcp(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        addresses.append(host)
        if host != LOOPBACK:
            raise AssertionError(f"a connection to {host}:{port} would leave the machine")
        return await original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    return addresses


def no_data(body: dict[str, Any]) -> bool:
    """The answer carries no data: ``data`` is null, or every (nullable) root field is, like ``node``."""
    data = body.get("data")
    return data is None or all(value is None for value in data.values())


def module_settings(mongo_uri: str, data_dir: Path) -> Settings:
    """What the ``settings`` fixture gives a test, for a fixture shared by a whole module."""
    return Settings(
        mongodb_uri=Secret(mongo_uri),
        mongodb_database=f"test_{uuid.uuid4().hex[:12]}",
        data_dir=data_dir,
        encryption_keys=(EncryptionKey("a", Secret(KEY_A)),),
        auth_jwt_secret=Secret(JWT_SECRET),
        frontend_origins=("https://app.example.com",),
    )


async def documents(db: Any, collection: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every document of ``collection`` matching ``query``, in insertion order."""
    return [doc async for doc in db[collection].find(query or {}).sort("_id", 1)]


async def link_with_an_event(service: Service, hosts: FakeHosts, repository: str) -> tuple[str, str, str]:
    """alice links the repository and the host delivers one push: (link id, event id, the commit).

    Hooks left at the (shared) fake host by earlier tests, whose databases are gone, are removed first.
    """
    decoded = from_global_id(repository)
    assert decoded is not None
    full_name = decoded[1].partition(":")[2]
    hosts.github.repository(full_name).hooks.clear()
    hosts.github.repository(full_name).deploy_keys.clear()
    data = await service.execute(
        "mutation($i: LinkRepositoryInput!) { linkRepository(input: $i) { ... on RepositoryLink { id } } }",
        {"i": {"repositoryId": repository}},
    )
    link = data["linkRepository"]["id"]
    [delivery] = hosts.github.push(full_name)
    await hosts.github.outbox.flush(service.http)
    events = await service.execute(
        "query($id: ID!) { node(id: $id) { ... on RepositoryLink { events { edges { node { id deliveryId after } } } } } }",
        {"id": link},
    )
    [edge] = events["node"]["events"]["edges"]
    assert edge["node"]["deliveryId"] == delivery
    return link, edge["node"]["id"], edge["node"]["after"]
