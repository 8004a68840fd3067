"""Fuzzing the GraphQL endpoint with documents hypothesis-graphql generates from ``schema.graphql``.

Queries and mutations, valid for the schema and (``Mode.NEGATIVE``) invalid ones, with and without a
valid caller JWT, through the ASGI app. The Git hosts are the in-process fakes (``HostRouter``: no
sockets), user-entered hosts resolve through a table, and ``jail_connections`` fails the test if any
connection were opened at all. The caller owns an integration; ``ID`` and ``String`` arguments are
drawn half the time from values that mean something (its ids, its tokens, a live OAuth state, hosts),
so the fuzzer gets past "not found" into the resolvers, the hosts and the SSRF guard.

Whatever the document: never an HTTP 500, never an ``INTERNAL`` error (the masked kind means a bug the
fuzzer found), and never a response naming a token or a secret, a stack frame (``Traceback``,
``File "``) or a source path (``/app/``, ``.py``) — unless the request itself carried that text.

The budget is bounded for CI: ``MAX_EXAMPLES`` documents per strategy, derandomized (the same documents
every run, so a failure reproduces), no deadline and no example database. The longer run of
docs/reliability.md sets ``FUZZ_EXAMPLES`` (documents per strategy) instead.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries

from app.settings.model import Settings
from app.settings.values import EncryptionKey, OAuthClient, Secret
from tests.conftest import JWT_SECRET, KEY_A, GraphQLTestClient, running_app, token_for
from tests.fakes import scenarios
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.oauth_support import RETURN_TO
from tests.picker_support import app_services, picker_settings, upstream
from tests.reliability.operations import SCHEMA_FILE
from tests.reliability.support import CLASSIC, jail_connections

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
OUTCOMES_FILE = os.environ.get("FUZZ_OUTCOMES")  # a file to append each answer's outcome to
DATABASE = f"test_fuzzing_{uuid.uuid4().hex[:12]}"
SCHEMA = SCHEMA_FILE.read_text(encoding="utf-8")

TOKEN_LIKE = re.compile(
    r"gh[pousr]_[A-Za-z0-9_]{8,}|github_pat_[A-Za-z0-9_]{8,}|gl[a-z]{2,5}-[A-Za-z0-9_\-]{8,}"
)
LEAKS = ("Traceback", 'File "', "/app/", ".py", "Internal error", "pymongo", "httpx", "strawberry/")


async def table_resolver(host: str, port: int) -> Sequence[str]:
    if host == "gitlab.fuzz.example":
        return ["93.184.216.34"]  # then HostRouter, which knows no such host, refuses to connect
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@dataclass
class Fuzzed:
    """The service under fuzzing, and values that lead its resolvers past "not found"."""

    client: GraphQLTestClient
    ids: list[str]  # the fuzzer's integration and one of its repositories, as global ids
    strings: list[str]  # its tokens, a live OAuth state, a frontend address, hosts good and bad


@pytest.fixture(scope="module")
async def fuzzed(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> AsyncIterator[Fuzzed]:
    github = scenarios.default_github(FakeGitHub(), repositories=5)
    gitlab = scenarios.default_gitlab(FakeGitLab(), repositories=5)
    configured = picker_settings(
        Settings(
            mongodb_uri=Secret(mongo_uri),
            mongodb_database=DATABASE,
            data_dir=tmp_path_factory.mktemp("fuzz"),
            encryption_keys=(EncryptionKey("a", Secret(KEY_A)),),
            auth_jwt_secret=Secret(JWT_SECRET),
            frontend_origins=("https://app.example.com",),
        ),
        github_oauth=OAuthClient(github.client_id, Secret(github.client_secret)),
        gitlab_oauth=OAuthClient(gitlab.client_id, Secret(gitlab.client_secret)),
        public_url="http://service.test",
    )
    async with (
        upstream(github, gitlab) as up,
        running_app(configured, up, resolver=table_resolver) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service.test") as http,
    ):
        client = GraphQLTestClient(http, configured)
        connected = await client.execute(
            "mutation($t: String!) { connectGitToken(input: {provider: GITHUB, token: $t}) {"
            " ... on Integration { id repositories(first: 1) { edges { node { id } } } } } }",
            {"t": CLASSIC},
            user="fuzzer",
        )
        integration = connected["data"]["connectGitToken"]
        started = await client.execute(
            "mutation($r: String) { connectGitOAuth(input: {provider: GITHUB, returnTo: $r}) {"
            " ... on GitOAuthAuthorization { state } } }",
            {"r": RETURN_TO},
            user="fuzzer",
        )
        strings = [
            CLASSIC,
            scenarios.GITLAB_PERSONAL_TOKEN,
            started["data"]["connectGitOAuth"]["state"],
            RETURN_TO,
            "gitlab.fuzz.example",
            "https://gitlab.fuzz.example/gitlab",
            "127.1",
            "http://169.254.169.254/latest/meta-data/",
        ]
        ids = [integration["id"], integration["repositories"]["edges"][0]["node"]["id"]]
        yield Fuzzed(client, ids, strings)
        await app_services(app).database.client.drop_database(DATABASE)


def inputs_of(document: str) -> list[str]:
    """Every string the document carries (arguments, aliases, names): what an answer may echo."""
    try:
        ast = graphql.parse(document, no_location=True)
    except graphql.GraphQLError:
        return [document]
    found: list[str] = []

    class Strings(graphql.Visitor):
        def enter_string_value(self, node: graphql.StringValueNode, *args: Any) -> None:
            found.append(node.value)

        def enter_name(self, node: graphql.NameNode, *args: Any) -> None:
            found.append(node.value)

    graphql.visit(ast, Strings())
    return found


def assert_safe(response: httpx.Response, document: str, secrets: Sequence[str]) -> None:
    assert response.status_code != 500, response.text[:500]
    assert response.status_code in (200, 400), response.text[:500]
    text = response.text
    for secret in secrets:
        assert secret not in text
    # What the request itself carried may come back (a host name in a message); anything else may not.
    echoed = text
    for value in sorted(inputs_of(document), key=len, reverse=True):
        if value:
            echoed = re.sub(re.escape(value), "", echoed, flags=re.IGNORECASE)
            echoed = echoed.replace(json.dumps(value)[1:-1], "")
    assert not TOKEN_LIKE.search(echoed), text[:500]
    for leak in LEAKS:
        assert leak not in echoed, (leak, text[:500])
    if response.status_code == 200:
        body = response.json()
        codes = {str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []}
        assert "INTERNAL" not in codes, text[:500]


def outcome_of(response: httpx.Response) -> str:
    """HTTP status, or the sorted error codes of a 200 (``ok`` without errors)."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    codes = {str((e.get("extensions") or {}).get("code")) for e in response.json().get("errors") or []}
    return ",".join(sorted(codes)) or "ok"


def string_nodes(pool: list[str]) -> st.SearchStrategy[graphql.StringValueNode]:
    """Half the time a value that means something to the service, else any text."""
    values = st.one_of(st.sampled_from(pool), st.text(max_size=40))
    return values.map(lambda value: graphql.StringValueNode(value=value))


@functools.cache
def strategy(name: str, ids: tuple[str, ...], strings: tuple[str, ...]) -> st.SearchStrategy[Any]:
    scalars = {"ID": string_nodes(list(ids)), "String": string_nodes(list(strings))}
    build = queries if "queries" in name else mutations
    mode = Mode.NEGATIVE if name.startswith("invalid") else Mode.POSITIVE
    return build(SCHEMA, custom_scalars=scalars, mode=mode)


# Invalid documents are refused by validation before anyone asks who is calling: once is enough.
CASES = [
    pytest.param("queries", "fuzzer", id="queries, valid JWT"),
    pytest.param("mutations", "fuzzer", id="mutations, valid JWT"),
    pytest.param("queries", None, id="queries, no JWT"),
    pytest.param("mutations", None, id="mutations, no JWT"),
    pytest.param("invalid queries", "fuzzer", id="invalid queries"),
    pytest.param("invalid mutations", "fuzzer", id="invalid mutations"),
]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return jail_connections(monkeypatch)


@pytest.mark.parametrize(("kind", "caller"), CASES)
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_generated_documents_never_break_or_leak(
    fuzzed: Fuzzed, kind: str, caller: str | None, data: st.DataObject
) -> None:
    document = data.draw(strategy(kind, tuple(fuzzed.ids), tuple(fuzzed.strings)), label="document")
    text = document if isinstance(document, str) else str(document)
    api = fuzzed.client
    headers = {"Authorization": f"Bearer {token_for(api.settings, caller)}"} if caller else {}
    # Never in an answer, even when the request carried it (a token pasted into the wrong field).
    secrets = [CLASSIC, scenarios.GITLAB_PERSONAL_TOKEN, JWT_SECRET, KEY_A, *headers.values()]

    response = await api.http.post("/graphql", json={"query": text}, headers=headers)

    assert_safe(response, text, secrets)
    if OUTCOMES_FILE:  # the longer run's tally (docs/reliability.md)
        with open(OUTCOMES_FILE, "a", encoding="utf-8") as outcomes:
            outcomes.write(
                json.dumps({"case": kind, "caller": caller is not None, "outcome": outcome_of(response)})
                + "\n"
            )
