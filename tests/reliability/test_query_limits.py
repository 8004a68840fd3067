"""Requests built to exhaust the server: deep nesting, 1,000 aliases, huge documents, batches, 10 MB bodies.

Each is refused with a clear error before it costs anything, and a served process's peak memory stays
where it was. Already in tests/api/test_graphql_foundation.py (not repeated here): 12 levels of nesting,
100 aliases, 5,000 fields, an 11 MB body announced in ``Content-Length``.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import MAX_BODY_BYTES
from app.settings.model import Settings
from app.settings.values import Secret
from tests.conftest import JWT_SECRET, KEY_A, GraphQLTestClient, token_for
from tests.harness import free_port, serve, service_environment

DEEP = 10_000
MB = 1024 * 1024


def nested(levels: int) -> str:
    return "{ " + "integrations { " * levels + "id" + " }" * levels + " }"


def deep_json(levels: int) -> bytes:
    return b'{"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": ' + (
        b"[" * levels + b"1" + b"]" * levels + b"}}"
    )


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def async_chunks(body: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks(body):
        yield chunk


# Each: (name, request keywords for POST /graphql, expected status, words the error must contain).
HOSTILE: list[tuple[str, dict[str, Any], int, str]] = [
    ("10,000 levels of selections", {"json": {"query": nested(DEEP)}}, 200, "nested too deeply"),
    (
        "10,000 nested list literals",
        {"json": {"query": "{ node(id: " + "[" * DEEP + '"x"' + "]" * DEEP + ") { id } }"}},
        200,
        "nested too deeply",
    ),
    (
        "10,000 nested input objects",
        {
            "json": {
                "query": "mutation { connectGitToken(input: "
                + "{a: " * DEEP
                + "1"
                + "}" * DEEP
                + ") { __typename } }"
            }
        },
        200,
        "nested too deeply",
    ),
    (
        "1,000 aliases",
        {"json": {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }"}},
        200,
        "aliases",
    ),
    (
        "1,000 aliased listings",
        {"json": {"query": "{ " + " ".join(f"a{i}: integrations {{ id }}" for i in range(1000)) + " }"}},
        200,
        "more than 4000 tokens",
    ),
    (
        "a document just under the body limit, all tokens",
        {"json": {"query": "{ " + "__typename " * (MAX_BODY_BYTES // 12) + "}"}},
        200,
        "more than 4000 tokens",
    ),
    (
        "a batch of 1,000 operations",
        {"json": [{"query": "{ integrations { id } }"}] * 1000},
        400,
        "Batching is not enabled",
    ),
    (
        "variables nested 100,000 levels deep",
        {"content": deep_json(100_000), "headers": {"content-type": "application/json"}},
        400,
        "Unable to parse request body as JSON",
    ),
    (
        "a 10 MB body without Content-Length",
        {
            "content": b'{"query": "' + b"a" * (10 * MB) + b'"}',
            "headers": {"content-type": "application/json"},
            "chunked": True,
        },
        413,
        "Content Too Large",
    ),
    (
        "a 10 MB batch",
        {"content": b"[" + b'{"query": "{ integrations { id } }"},' * (10 * MB // 38) + b"{}]"},
        413,
        "Content Too Large",
    ),
]


def request_options(options: dict[str, Any], *, asynchronous: bool) -> dict[str, Any]:
    """Keywords for ``post``: a ``chunked`` body is streamed (no ``Content-Length``)."""
    options = dict(options)
    if options.pop("chunked", False):
        body = options["content"]
        options["content"] = async_chunks(body) if asynchronous else chunks(body)
    options["headers"] = {"content-type": "application/json", **options.get("headers", {})}
    return options


@pytest.mark.parametrize(("name", "options", "status", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_requests_are_refused_with_a_clear_error(
    client: GraphQLTestClient, name: str, options: dict[str, Any], status: int, words: str
) -> None:
    headers = {"Authorization": f"Bearer {token_for(client.settings, 'alice')}"}
    prepared = request_options(options, asynchronous=True)
    prepared["headers"] |= headers

    response = await client.http.post("/graphql", **prepared)

    assert response.status_code == status, response.text[:300]
    assert words in response.text
    assert len(response.content) < 2000, "the refusal does not echo the request"
    if status == 200:
        assert response.json()["data"] is None


async def test_a_document_with_many_operations_runs_only_the_one_named(client: GraphQLTestClient) -> None:
    document = " ".join(f"query q{i} {{ integrations {{ id }} }}" for i in range(500))
    response = await client.http.post(
        "/graphql",
        json={"query": document, "operationName": "q7"},
        headers={"Authorization": f"Bearer {token_for(client.settings, 'alice')}"},
    )

    assert response.json() == {"data": {"integrations": []}}


async def test_a_fragment_that_spreads_itself_is_refused(client: GraphQLTestClient) -> None:
    body = await client.execute(
        "{ integrations { ...A } } fragment A on Integration { ...B } fragment B on Integration { ...A }"
    )

    assert "Cannot spread fragment" in body["errors"][0]["message"]


# --- the same against a served process, watching its memory ------------------------------------


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``) so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture
def served(mongo_uri: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = service_environment(
        DATA_DIR=str(tmp_path), MONGODB_URI=mongo_uri, MONGODB_DATABASE=f"limits_{port}",
        ENCRYPTION_KEYS=f"a:{KEY_A}", AUTH_JWT_SECRET=JWT_SECRET,
    )  # fmt: skip
    with serve(env, port=port, stderr=subprocess.DEVNULL) as process:
        yield process.url, process.process


@pytest.mark.uvicorn
def test_a_served_process_refuses_all_of_them_without_its_peak_memory_growing(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = served
    bearer = token_for(Settings(auth_jwt_secret=Secret(JWT_SECRET)), "alice")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {bearer}"}, timeout=30) as http:
        for _ in range(3):  # warm up: the first requests build caches that are not a leak
            assert http.post("/graphql", json={"query": "{ integrations { id } }"}).status_code == 200
        before = peak_rss_kib(process.pid)

        for _ in range(2):
            for name, options, status, words in HOSTILE:
                response = http.post("/graphql", **request_options(options, asynchronous=False))
                assert response.status_code == status, (name, response.text[:300])
                assert words in response.text, name
        after = peak_rss_kib(process.pid)

        assert http.post("/graphql", json={"query": "{ integrations { id } }"}).json() == {
            "data": {"integrations": []}
        }
    assert process.poll() is None
    # A 10 MB body read whole, or a 100,000-level JSON document parsed, would each add tens of MB.
    assert after - before < 16 * 1024, f"peak RSS grew by {(after - before) // 1024} MB"
