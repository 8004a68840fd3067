"""When the database cannot answer: the embedded server stopped mid-run, and commands failed on purpose with
SecantusDB's ``configureFailPoint``.

What a user must see: every operation fails with a GraphQL error ``SERVICE_UNAVAILABLE`` (never a masked
``INTERNAL`` error, never an HTTP 500), within the client's server selection timeout rather than after
a long hang; ``/readyz`` answers 503 while ``/healthz`` still answers; no process dies; and once the
database is back, everything works again without restarting the service — in process and in a real
``python -m app serve``.

The failpoints are scoped to the service's client (``appName`` ``git-integrations``) so the test's own
client keeps working. Operations come from ``tests.reliability.operations`` (every root field).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    CursorNotFound,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
    WriteConcernError,
)

from app.security.auth import issue_development_token
from app.settings.model import Settings
from app.settings.values import Secret
from app.storage.mongo import EmbeddedMongo, is_transient
from tests.conftest import JWT_SECRET, KEY_A, token_for
from tests.harness import serve, service_environment
from tests.oauth_support import COMPLETE_OAUTH, FakeHosts, Service, handed_on, login_settings, open_service
from tests.picker_support import settle
from tests.reliability.operations import OPERATIONS, Operation, Targets
from tests.reliability.support import CLASSIC, documents, link_with_an_event, loopback_hosts, no_data

APP_NAME = "git-integrations"  # the service's client, as it names itself to the server
QUICK = 5.0  # seconds: the 2 s server selection timeout with room for a slow CI machine

LIST = "query($id: ID!) { integration(id: $id) { repositories(first: 5) { totalCount } } }"


# --- which failures are "not now" -----------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("connection closed"),
        NotPrimaryError("not primary", {"code": 10107}),
        ServerSelectionTimeoutError("no servers"),
        NetworkTimeout("timed out"),
        WaitQueueTimeoutError("pool exhausted"),
        ExecutionTimeout("operation exceeded time limit", 50),
        WriteConcernError("waiting for replication timed out", 64),
        CursorNotFound("cursor id not found", 43),
        OperationFailure("interrupted at shutdown", 11600),
        OperationFailure("primary stepped down", 189),
        OperationFailure("host unreachable", 6),
        OperationFailure("socket exception", 9001),
        OperationFailure("read concern majority not available yet", 134),
        OperationFailure("legacy not primary", 10058),
        OperationFailure("transaction aborted", 251, {"errorLabels": ["TransientTransactionError"]}),
        BulkWriteError({"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "timeout"}]}),
        BulkWriteError({"writeErrors": [{"index": 0, "code": 91, "errmsg": "shutting down"}]}),
    ],
    ids=lambda error: f"{type(error).__name__}-{getattr(error, 'code', None)}",
)
def test_failures_that_may_pass_are_transient(error: Exception) -> None:
    assert is_transient(error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        DuplicateKeyError("E11000 duplicate key", 11000),
        OperationFailure("bad value", 2),
        OperationFailure("unauthorized", 13),
        BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "errmsg": "duplicate key"}]}),
    ],
    ids=lambda error: f"{type(error).__name__}-{getattr(error, 'code', None)}",
)
def test_failures_that_are_bugs_stay_internal(error: Exception) -> None:
    assert not is_transient(error)  # type: ignore[arg-type]


# --- shared set-up ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hosts() -> Iterator[FakeHosts]:
    with loopback_hosts() as found:
        yield found


async def prepare(service: Service, hosts: FakeHosts) -> Targets:
    """alice connects octocat's classic token, lists its repositories, starts a login, links a repository
    and receives a push for it."""
    connected = await service.execute(
        "mutation($t: String!) { connectGitToken(input: {provider: GITHUB, token: $t}) { ... on Integration { id } } }",
        {"t": CLASSIC},
    )
    integration_id = connected["connectGitToken"]["id"]
    listed = await service.execute(
        "query($id: ID!) { integration(id: $id) { repositories(first: 1) { edges { node { id } } } } }",
        {"id": integration_id},
    )
    repository_id = listed["integration"]["repositories"]["edges"][0]["node"]["id"]
    authorization = await service.start("GITHUB")
    link, event, commit = await link_with_an_event(service, hosts, repository_id)
    await settle(service.app)  # the listing is saved
    return Targets(integration_id, repository_id, authorization["state"], CLASSIC, link, event, commit)


async def run(service: Service, operation: Operation, targets: Targets) -> tuple[dict[str, Any], float]:
    """``operation`` as alice, or as the platform's service with the scope it needs acting for her."""
    headers, user = None, "alice"
    if operation.scope is not None:
        bearer = issue_development_token(service.settings, "platform", scope=operation.scope, act_for="alice")
        headers, user = {"Authorization": f"Bearer {bearer}"}, None
    started = time.monotonic()
    body = await service.graphql.execute(
        operation.document, operation.variables(targets), user=user, headers=headers
    )
    return body, time.monotonic() - started


def assert_service_unavailable(body: dict[str, Any], what: str) -> None:
    assert no_data(body), (what, body)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", (what, error)
    assert "database" in error["message"], (what, error)
    assert "Internal" not in str(body) and "Traceback" not in str(body), (what, body)


# --- the embedded server stopped and started again -----------------------------------------------


def discard(embedded: EmbeddedMongo) -> None:
    """End a test's database at once (``stop()`` is graceful and can take seconds)."""
    if embedded.process is not None:
        embedded.process.kill()
        embedded.process.wait()
    embedded.stop()


@contextlib.contextmanager
def database_on_disk(path: Path) -> Iterator[EmbeddedMongo]:
    embedded = EmbeddedMongo(path)
    embedded.start()
    try:
        yield embedded
    finally:
        discard(embedded)


async def wait_until_ready(http: httpx.AsyncClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (await http.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "the service did not become ready again"
        await asyncio.sleep(0.1)


async def test_every_operation_fails_clearly_while_the_database_is_down_and_works_once_it_is_back(
    settings: Settings, hosts: FakeHosts, tmp_path: Path
) -> None:
    with database_on_disk(tmp_path / "db") as embedded:
        configured = login_settings(replace(settings, mongodb_uri=Secret(embedded.uri)), hosts)
        async with open_service(configured) as service:
            targets = await prepare(service, hosts)
            port = embedded.port
            embedded.stop()

            # All at once: each waits for the server selection timeout.
            outcomes, (callback, ready, alive) = await asyncio.gather(
                asyncio.gather(*(run(service, op, targets) for op in OPERATIONS)),
                asyncio.gather(
                    service.http.get(f"/oauth/callback?state={targets.state}&code=abc"),
                    service.http.get("/readyz"),
                    service.http.get("/healthz"),
                ),
            )

            for operation, (body, seconds) in zip(OPERATIONS, outcomes, strict=True):
                assert_service_unavailable(body, operation.name)
                assert seconds < QUICK, f"{operation.name} took {seconds:.1f} s to fail"
            assert all(r.status_code == 200 for r in service.graphql.responses)  # never an HTTP 500
            assert callback.status_code == 503 and "database" in callback.text
            assert ready.status_code == 503
            assert alive.status_code == 200

            embedded.start(port=port)
            await wait_until_ready(service.http)

            [integration] = await service.integrations()
            assert integration["id"] == targets.integration
            again = await service.execute(LIST, {"id": targets.integration})
            assert again["integration"]["repositories"]["totalCount"] == 3
            started = await service.start("GITHUB")
            assert started["state"] != targets.state


async def test_a_served_process_survives_a_database_restart_without_being_restarted(
    hosts: FakeHosts, tmp_path: Path
) -> None:
    log_path = tmp_path / "server.log"
    with database_on_disk(tmp_path / "db") as embedded:
        env = service_environment(
            DATA_DIR=str(tmp_path / "data"), MONGODB_URI=embedded.uri,
            ENCRYPTION_KEYS=f"a:{KEY_A}", AUTH_JWT_SECRET=JWT_SECRET,
            GITHUB_URL=hosts.github_url, GITHUB_API_URL=hosts.github_url, GITLAB_URL=hosts.gitlab_url,
        )  # fmt: skip
        bearer = token_for(Settings(auth_jwt_secret=Secret(JWT_SECRET)), "alice")
        connect = next(op for op in OPERATIONS if op.name == "connectGitToken")
        integrations = next(op for op in OPERATIONS if op.name == "integrations")
        targets = Targets("", "", "", CLASSIC)
        with log_path.open("wb") as log, serve(env, stderr=log) as served:
            async with httpx.AsyncClient(
                base_url=served.url, headers={"Authorization": f"Bearer {bearer}"}, timeout=30
            ) as http:

                async def post(operation: Operation) -> httpx.Response:
                    payload = {"query": operation.document, "variables": operation.variables(targets)}
                    return await http.post("/graphql", json=payload)

                first = (await post(connect)).json()["data"]["connectGitToken"]
                assert first["__typename"] == "Integration"
                embedded.stop()

                *down, ready = await asyncio.gather(post(integrations), post(connect), http.get("/readyz"))

                for response in down:
                    assert response.status_code == 200
                    assert_service_unavailable(response.json(), "served")
                assert ready.status_code == 503
                assert served.process.poll() is None, "the service process must not die with its database"

                embedded.start(port=embedded.port)
                await wait_until_ready(http)
                listed = (await post(integrations)).json()
                again = (await post(connect)).json()
    stderr = log_path.read_text()

    assert listed["data"]["integrations"][0]["id"] == first["id"]
    assert again["data"]["connectGitToken"]["id"] == first["id"]
    assert CLASSIC not in stderr
    assert "Traceback" not in stderr, "a database outage is logged as a warning, not as a crash"


# --- commands failed on purpose ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def failpoint_server() -> Iterator[EmbeddedMongo]:
    embedded = EmbeddedMongo(":memory:")
    embedded.start(test_commands=True)
    try:
        yield embedded
    finally:
        discard(embedded)


@pytest.fixture
async def service(
    settings: Settings, hosts: FakeHosts, failpoint_server: EmbeddedMongo
) -> AsyncIterator[Service]:
    configured = login_settings(replace(settings, mongodb_uri=Secret(failpoint_server.uri)), hosts)
    async with open_service(configured) as opened:
        yield opened


@contextlib.asynccontextmanager
async def failing(
    server: EmbeddedMongo, commands: list[str], *, mode: Any = "alwaysOn", **data: Any
) -> AsyncIterator[None]:
    """While the block runs, the service's ``commands`` fail as ``data`` says; by default with code 6
    (HostUnreachable), which pymongo retries once at once. Code 91 (ShutdownInProgress) is slower to
    go through: pymongo marks the server Unknown and waits for its monitor to look again."""
    if not data:
        data = {"errorCode": 6}
    admin: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.uri)
    try:
        await admin.admin.command(
            {
                "configureFailPoint": "failCommand",
                "mode": mode,
                "data": {"failCommands": commands, "appName": APP_NAME, **data},
            }
        )
        yield
    finally:
        await admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        await admin.close()


# Which command each operation reaches storage with first (after the fake host has answered).
FIRST_COMMAND = {
    "integrations": "find",
    "integration": "find",
    "node(Integration)": "find",
    "node(Repository)": "find",
    "connectGitToken": "insert",  # the account is new: the look-up finds nothing, the insert fails
    "updateGitToken": "find",
    "verifyGitIntegration": "find",
    "disconnectGitIntegration": "findAndModify",
    "connectGitOAuth": "insert",  # the OAuth state
    "completeGitOAuth": "findAndModify",  # using the OAuth state up
    "repositoryLinks": "find",
    "node(RepositoryLink)": "find",
    "node(RepositoryEvent)": "find",
    "linkRepository": "find",  # the integration
    "unlinkRepository": "find",  # the link
    "setCommitStatus": "find",  # the link
    "cloneCredentials": "find",  # the link and its secrets
}


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
async def test_each_operation_answers_service_unavailable_when_its_command_fails(
    service: Service, failpoint_server: EmbeddedMongo, hosts: FakeHosts, operation: Operation
) -> None:
    targets = await prepare(service, hosts)
    if operation.name == "connectGitToken":
        await service.db["integrations"].delete_many({})  # connect anew: the path that inserts
    before = await documents(service.db, "integrations")

    async with failing(failpoint_server, [FIRST_COMMAND[operation.name]]):
        body, seconds = await run(service, operation, targets)

    assert_service_unavailable(body, operation.name)
    assert seconds < QUICK
    assert await documents(service.db, "integrations") == before
    after, _ = await run(service, operation, targets)
    assert "errors" not in after, after


@pytest.mark.parametrize(
    "failure",
    [
        {"errorCode": 91},
        {"errorCode": 11600},
        {"errorCode": 189},
        {"errorCode": 9001},
        {"errorCode": 262},
        {"closeConnection": True},
    ],
    ids=[
        "ShutdownInProgress",
        "InterruptedAtShutdown",
        "PrimarySteppedDown",
        "SocketException",
        "ExceededTimeLimit",
        "closeConnection",
    ],
)
async def test_other_failures_that_may_pass_are_service_unavailable_too(
    service: Service, failpoint_server: EmbeddedMongo, failure: dict[str, Any]
) -> None:
    async with failing(failpoint_server, ["find"], **failure):
        body = await service.graphql.execute("{ integrations { id } }")

    assert_service_unavailable(body, str(failure))
    assert (await service.graphql.execute("{ integrations { id } }")) == {"data": {"integrations": []}}


async def test_a_failure_that_is_a_bug_stays_masked(
    service: Service, failpoint_server: EmbeddedMongo
) -> None:
    async with failing(failpoint_server, ["find"], errorCode=2):  # BadValue: retrying will not help
        body = await service.graphql.execute("{ integrations { id } }")

    assert body["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "BadValue" not in str(body) and "failpoint" not in str(body)


async def test_the_oauth_callback_says_try_again_when_the_state_cannot_be_read(
    service: Service, failpoint_server: EmbeddedMongo
) -> None:
    authorization = await service.start("GITHUB")
    location = await service.visit_host(authorization["authorizationUrl"])

    async with failing(failpoint_server, ["find"], errorCode=91):
        response = await service.callback(location)

    assert response.status_code == 503
    assert "database" in response.text
    [state] = await documents(service.db, "oauth_states")
    assert state["usedAt"] is None, "a state that could not be read is not used up"
    assert (await service.callback(location)).status_code == 302


async def test_a_login_whose_integration_cannot_be_stored_answers_service_unavailable(
    service: Service, failpoint_server: EmbeddedMongo
) -> None:
    authorization = await service.start("GITHUB")
    location = await service.visit_host(authorization["authorizationUrl"])
    values = handed_on(await service.callback(location))

    async with failing(failpoint_server, ["insert"]):  # the state is used up, the integration not stored
        body = await service.graphql.execute(COMPLETE_OAUTH, {"input": values})

    assert_service_unavailable(body, "completeGitOAuth")
    assert await documents(service.db, "integrations") == []


async def test_a_listing_whose_cache_cannot_be_read_is_service_unavailable(
    service: Service, failpoint_server: EmbeddedMongo, hosts: FakeHosts
) -> None:
    targets = await prepare(service, hosts)
    await service.db["repository_cache"].delete_many({})

    # The first find looks the integration up; the next ones read the cached listing.
    async with failing(failpoint_server, ["find"], mode={"skip": 1}):
        body = await service.graphql.execute(LIST, {"id": targets.integration})

    assert_service_unavailable(body, "repositories")


async def test_a_listing_whose_cache_cannot_be_written_is_answered_and_nothing_half_is_kept(
    service: Service, failpoint_server: EmbeddedMongo, hosts: FakeHosts
) -> None:
    targets = await prepare(service, hosts)
    await service.db["repository_cache"].delete_many({})

    async with failing(failpoint_server, ["update"]):  # the page and head upserts of the cache
        body = await service.graphql.execute(LIST, {"id": targets.integration})
        await settle(service.app)

    assert body["data"]["integration"]["repositories"]["totalCount"] == 3
    assert await documents(service.db, "repository_cache") == []
    hosts.github.clear_requests()
    again = await service.execute(LIST, {"id": targets.integration})
    assert again["integration"]["repositories"]["totalCount"] == 3
    await settle(service.app)  # a first page may have answered while the whole list was walked
    walked = [r for r in hosts.github.requests if r.path == "/user/repos" and "sort=full_name" in r.query]
    assert len(walked) == 1, "nothing was cached, so the whole list is walked again"


async def test_a_write_whose_acknowledgement_fails_can_simply_be_sent_again(
    service: Service, failpoint_server: EmbeddedMongo
) -> None:
    connect = next(op for op in OPERATIONS if op.name == "connectGitToken")
    targets = Targets("", "", "", CLASSIC)

    # The insert happens, but the server cannot confirm it was replicated.
    write_concern_error = {"code": 64, "errmsg": "waiting for replication timed out"}
    async with failing(failpoint_server, ["insert"], writeConcernError=write_concern_error):
        body, _ = await run(service, connect, targets)
    assert_service_unavailable(body, "connectGitToken")

    again, _ = await run(service, connect, targets)
    assert again["data"]["connectGitToken"]["__typename"] == "Integration"
    assert len(await documents(service.db, "integrations")) == 1, "sending it again does not duplicate it"
