"""The authorization matrix: every query and mutation (``OPERATIONS``, checked against ``schema.graphql``)
aimed at alice's integration, repository, sign-in state, repository link and its event, by bob (with
the scope the operation needs: ``git:deploy``, ``git:clone``), and with no token, an expired token, a
token signed with another key or one whose claims were changed after signing; and every operation with
a token of the wrong kind (a person's where a scope is needed, a service's where it is not, a service
acting for alice without a scope): ``FORBIDDEN``, touching nothing.

Nothing of alice's may be read, changed or revealed — not even whether it exists: bob's answer for
alice's id must be byte for byte the answer for a random id of the same shape. Every attempt is also
checked not to reach the Git hosts (a request there would act with alice's token) and not to change the
database. Afterwards alice's integration and her unfinished sign-in still work.

Related: tests/api/test_connect_token.py (update, verify, disconnect with another user's id),
test_oauth_github.py (another user's state), tests/unit/test_auth.py (how caller JWTs are checked).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from bson import ObjectId

from app.graphql.types.node import from_global_id, to_global_id
from app.graphql.types.repository import repository_global_id
from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import Secret
from app.storage.links import new_link_id
from tests.oauth_support import FakeHosts, Service, login_settings, open_service
from tests.picker_support import settle
from tests.reliability.operations import OPERATIONS, Operation, Targets, allowed, root_fields
from tests.reliability.support import (
    CLASSIC,
    GITLAB_TOKEN,
    HUBOT_CLASSIC,
    documents,
    link_with_an_event,
    loopback_hosts,
    module_settings,
    no_data,
)

COLLECTIONS = ("integrations", "oauth_states", "repository_cache", "repository_links", "repository_events")


@dataclass
class World:
    service: Service
    hosts: FakeHosts
    alice: Targets
    bobs_integration: str


@pytest.fixture(scope="module")
def hosts() -> Iterator[FakeHosts]:
    with loopback_hosts() as found:
        yield found


@pytest.fixture(scope="module")
async def world(
    mongo_uri: str, tmp_path_factory: pytest.TempPathFactory, hosts: FakeHosts
) -> AsyncIterator[World]:
    """One world for the module: no test may change it (each checks that), so they can share it."""
    settings = module_settings(mongo_uri, tmp_path_factory.mktemp("authorization"))
    async with open_service(login_settings(settings, hosts)) as service:
        alice = await connect(service, "GITHUB", CLASSIC, "alice")
        await connect(service, "GITLAB", GITLAB_TOKEN, "alice")
        listed = await service.execute(
            "query($id: ID!) { integration(id: $id) { repositories(first: 1) { edges { node { id } } } } }",
            {"id": alice},
        )
        repository = listed["integration"]["repositories"]["edges"][0]["node"]["id"]
        state = (await service.start("GITHUB", user="alice"))["state"]
        link, event, commit = await link_with_an_event(service, hosts, repository)
        bobs = await connect(service, "GITHUB", HUBOT_CLASSIC, "bob")
        await settle(service.app)  # listings are saved
        yield World(service, hosts, Targets(alice, repository, state, CLASSIC, link, event, commit), bobs)
        await service.db.client.drop_database(settings.mongodb_database)


async def connect(service: Service, provider: str, token: str, user: str) -> str:
    data = await service.execute(
        "mutation($i: ConnectGitTokenInput!) { connectGitToken(input: $i) { ... on Integration { id } } }",
        {"i": {"provider": provider, "token": token}},
        user=user,
    )
    integration_id: str = data["connectGitToken"]["id"]
    return integration_id


def random_targets(theirs: Targets) -> Targets:
    """Ids of the same shape as ``theirs`` that name nothing."""
    decoded = from_global_id(theirs.repository)
    assert decoded is not None
    repository = decoded[1].partition(":")[2]
    link = new_link_id()
    return Targets(
        integration=to_global_id("Integration", str(ObjectId())),
        repository=repository_global_id(str(ObjectId()), repository),
        state=secrets.token_urlsafe(32),
        token=theirs.token,
        link=to_global_id("RepositoryLink", link),
        event=to_global_id("RepositoryEvent", f"{link}:1"),
        commit=theirs.commit,
    )


def bearer(
    settings: Settings, user: str, *, scope: str | None = None, act_for: str | None = None
) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {issue_development_token(settings, user, scope=scope, act_for=act_for)}"
    }


async def snapshot(service: Service) -> dict[str, list[dict[str, Any]]]:
    # A listing answered by an earlier test (bob looking through his own integration) may still be
    # saving its cache entries: let it land first, or it would look like a change made by this test.
    await settle(service.app)
    return {name: await documents(service.db, name) for name in COLLECTIONS}


def upstream_requests(hosts: FakeHosts) -> int:
    return len(hosts.github.requests) + len(hosts.gitlab.requests)


def test_every_operation_of_the_schema_is_in_the_matrix() -> None:
    assert {operation.root_field for operation in OPERATIONS} == root_fields()


# --- another user's ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("operation", [op for op in OPERATIONS if op.takes_an_id], ids=lambda op: op.name)
async def test_another_users_object_is_answered_exactly_like_one_that_does_not_exist(
    world: World, operation: Operation
) -> None:
    service = world.service
    before, requests = await snapshot(service), upstream_requests(world.hosts)
    bobs = bearer(service.settings, "bob", scope=operation.scope)

    theirs = await service.graphql.execute(
        operation.document, operation.variables(world.alice), user=None, headers=bobs
    )
    nobodys = await service.graphql.execute(
        operation.document, operation.variables(random_targets(world.alice)), user=None, headers=bobs
    )

    assert theirs == nobodys
    assert "Internal" not in str(theirs)
    assert await snapshot(service) == before, "nothing of alice's changed"
    assert upstream_requests(world.hosts) == requests, "alice's tokens were not used"
    await still_alices(world)


async def still_alices(world: World) -> None:
    """alice's integration answers for her, and her sign-in can still be finished."""
    service = world.service
    [verified] = [
        (await service.execute(op.document, op.variables(world.alice)))["verifyGitIntegration"]
        for op in OPERATIONS
        if op.name == "verifyGitIntegration"
    ]
    assert verified["__typename"] == "Integration" and verified["status"] == "ACTIVE"
    [state] = await documents(service.db, "oauth_states", {"owner": "alice"})
    assert state["usedAt"] is None


async def test_a_repository_id_of_alice_through_bobs_own_integration_finds_nothing(world: World) -> None:
    decoded = from_global_id(world.alice.repository)
    assert decoded is not None
    repository = decoded[1].partition(":")[2]  # "octocat/repo-0001"
    bobs_door = repository_global_id(from_global_id(world.bobs_integration)[1], repository)  # type: ignore[index]
    node = next(op for op in OPERATIONS if op.name == "node(Repository)")

    body = await world.service.graphql.execute(node.document, {"id": bobs_door}, user="bob")

    assert body == {"data": {"node": None}}


async def test_bob_lists_only_his_own_integrations(world: World) -> None:
    integrations = next(op for op in OPERATIONS if op.name == "integrations")

    body = await world.service.graphql.execute(integrations.document, user="bob")

    assert [i["id"] for i in body["data"]["integrations"]] == [world.bobs_integration]
    assert "octocat" not in str(body) and world.alice.integration not in str(body)


# --- no caller, or a caller token that must not be believed ---------------------------------------


def tampered(settings: Settings) -> str:
    """bob's valid token with its ``sub`` changed to alice afterwards (the signature no longer fits)."""
    header, payload, signature = issue_development_token(settings, "bob").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps(claims | {"sub": "alice"}).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


CREDENTIALS = {
    "no token": lambda settings: None,
    "expired token": lambda settings: issue_development_token(settings, "alice", lifetime_seconds=-3600),
    "token signed by another key": lambda settings: issue_development_token(
        replace(settings, auth_jwt_secret=Secret("another-secret-" + "y" * 40)), "alice"
    ),
    "token whose sub was changed": tampered,
    "unsigned token": lambda settings: (
        base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
        + "."
        + base64.urlsafe_b64encode(b'{"sub":"alice","exp":9999999999}').decode().rstrip("=")
        + "."
    ),
}


@pytest.mark.parametrize("credential", CREDENTIALS)
async def test_without_a_valid_caller_token_every_operation_is_unauthenticated_and_touches_nothing(
    world: World, credential: str
) -> None:
    service = world.service
    token = CREDENTIALS[credential](service.settings)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    before, requests = await snapshot(service), upstream_requests(world.hosts)

    for operation in OPERATIONS:
        body = await service.graphql.execute(
            operation.document, operation.variables(world.alice), user=None, headers=headers
        )
        assert no_data(body), (operation.name, body)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED", (operation.name, error)
        assert "octocat" not in str(body) and world.alice.state not in str(body)

    assert await snapshot(service) == before
    assert upstream_requests(world.hosts) == requests


# --- a valid token of the wrong kind ---------------------------------------------------------------


KINDS = {
    "a person's token": {"scope": None},
    "the deployer's token (git:deploy)": {"scope": "git:deploy"},
    "the builder's token (git:clone)": {"scope": "git:clone"},
    "a service acting for alice without a scope": {"scope": None, "act_for": "alice"},
}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_token_without_the_scope_an_operation_needs_is_forbidden_and_touches_nothing(
    world: World, kind: str
) -> None:
    service = world.service
    claims = KINDS[kind]
    headers = bearer(service.settings, "platform-service", **claims)  # acts for alice where it says so
    if claims.get("scope") is not None:
        headers = bearer(service.settings, "platform-service", scope=claims["scope"], act_for="alice")
    refused = [op for op in OPERATIONS if not allowed(op, claims.get("scope")) or "act_for" in claims]
    assert refused, kind
    before, requests = await snapshot(service), upstream_requests(world.hosts)

    for operation in refused:
        body = await service.graphql.execute(
            operation.document, operation.variables(world.alice), user=None, headers=headers
        )
        assert no_data(body), (operation.name, body)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], (operation.name, body)
        assert "octocat" not in str(body) and world.alice.state not in str(body)

    assert await snapshot(service) == before
    assert upstream_requests(world.hosts) == requests


async def test_the_deployer_reads_alices_links_and_events_and_the_builder_clones(world: World) -> None:
    service, alice = world.service, world.alice
    deployer = bearer(service.settings, "deployer", scope="git:deploy", act_for="alice")
    builder = bearer(service.settings, "builder", scope="git:clone", act_for="alice")
    read = next(op for op in OPERATIONS if op.name == "node(RepositoryLink)")
    clone = next(op for op in OPERATIONS if op.name == "cloneCredentials")

    links = await service.graphql.execute(read.document, read.variables(alice), user=None, headers=deployer)
    credentials = await service.graphql.execute(
        clone.document, clone.variables(alice), user=None, headers=builder
    )

    assert links["data"]["node"]["id"] == alice.link
    assert len(links["data"]["node"]["events"]["edges"]) == 1
    issued = credentials["data"]["cloneCredentials"]
    assert issued["__typename"] == "CloneCredentials" and issued["sshPrivateKey"].startswith("-----BEGIN")
    assert alice.token not in str(credentials), "never the user's own token"
