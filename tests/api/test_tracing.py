"""Traces (the `otel` extra): one picker request's spans, in memory, as an exporter would receive them.

The request searches the repositories of an integration on a self-hosted GitLab the user typed
(``code.acme-corp.test``), carrying a caller's ``traceparent``. Its spans must make one tree under the
caller's trace — HTTP request → GraphQL operation → repository listing → GET to the host, with the
MongoDB commands inside — and no span may carry the token, the host the user typed, a repository's
name, the search text or the caller's JWT, in its name, attributes or events.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk", reason="tracing needs the `otel` extra (make test installs it)")

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.composition import Seams
from app.domain.models import TokenKind
from app.graphql.types.node import to_global_id
from app.observability import JsonFormatter
from app.settings.model import Settings
from tests.conftest import running_app, token_for
from tests.fakes.gitlab import FakeGitLab
from tests.picker_support import connect, gitlab_endpoint, picker_settings, services_for, upstream

USER_HOST = "code.acme-corp.test"
TOKEN = "glpat-" + "t" * 20
SEARCH = "zephyr-secret"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
LIST = """query PickRepository($id: ID!, $search: String) {
  integration(id: $id) { repositories(first: 5, search: $search) { totalCount edges { node { name fullName } } } }
}"""


def self_hosted_gitlab() -> FakeGitLab:
    fake = FakeGitLab()
    fake.add_user("alice")
    fake.add_group("skunkworks")
    fake.add_member("alice", "skunkworks", 40)
    fake.add_projects("skunkworks", 3, name_prefix=SEARCH)
    fake.add_projects("skunkworks", 2, name_prefix="other")
    fake.add_personal_token(TOKEN, "alice", ["api", "read_repository", "write_repository"])
    return fake


@pytest.fixture
def request_log() -> Iterator[io.StringIO]:
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("app.request")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield written
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_picker_request_is_one_private_trace_under_the_callers(
    settings: Settings, request_log: io.StringIO
) -> None:
    fake = self_hosted_gitlab()
    settings = replace(picker_settings(settings), git_host_allowlist=(USER_HOST,))
    spans = InMemorySpanExporter()
    async with upstream() as up:
        up._transport._transports[USER_HOST] = httpx.ASGITransport(app=fake.app)  # type: ignore[attr-defined]
        async with services_for(settings, up) as services:
            integration = await connect(
                services,
                token=TOKEN,
                kind=TokenKind.GITLAB_PERSONAL,
                endpoint=gitlab_endpoint(f"http://{USER_HOST}"),
                login="alice",
            )
        async with (
            running_app(settings, seams=Seams(http=up, span_exporter=spans)) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            jwt = token_for(settings, "alice")
            response = await http.post(
                "/graphql",
                json={
                    "query": LIST,
                    "variables": {"id": to_global_id("Integration", integration.id), "search": SEARCH},
                },
                headers={"Authorization": f"Bearer {jwt}", "traceparent": TRACEPARENT},
            )
            await app.services.catalog.drain()  # the listing's save is part of the trace

    found = response.json()["data"]["integration"]["repositories"]
    assert found["totalCount"] == 3
    # The request's spans: the caller's trace (the start-up's index builds are traces of their own).
    finished = tuple(s for s in spans.get_finished_spans() if s.context.trace_id == int(CALLER_TRACE, 16))
    server = one(finished, "POST /graphql")
    assert server.kind is SpanKind.SERVER and server.parent is not None and server.parent.is_remote
    operation = one(finished, "GraphQL Query: PickRepository")
    listing = one(finished, "repository listing")
    gets = [s for s in finished if s.kind is SpanKind.CLIENT and s.name == "GET"]
    commands = [s for s in finished if s.attributes and s.attributes.get("db.system") == "mongodb"]
    assert gets and commands
    assert ancestors(operation, finished)[0] is server
    assert operation in ancestors(listing, finished)
    for get in gets:
        assert listing in ancestors(get, finished)
        assert get.attributes is not None
        assert (get.attributes["upstream.host"], get.attributes["upstream.endpoint"]) == (
            "user-entered",
            "projects",
        )
    for command in commands:
        assert operation in ancestors(command, finished)
    # The listing's save is inside the listing.
    assert any(listing in ancestors(c, finished) for c in commands if c.name.endswith(".update"))
    assert listing.attributes == {"git.provider": "GITLAB", "listing.search": True, "listing.cache": "miss"}

    # Nothing private in any span.
    private = [TOKEN, USER_HOST, "acme-corp", SEARCH, "skunkworks", jwt, "alice"]
    exported = "\n".join(everything_in(span) for span in finished)
    for value in private:
        assert value not in exported, f"{value!r} is in a span"

    # The request's log line names the trace.
    lines = [json.loads(line) for line in request_log.getvalue().splitlines()]
    assert [line["trace_id"] for line in lines if line["message"] == "request"] == [CALLER_TRACE]


def one(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    named = [span for span in spans if span.name == name]
    assert len(named) == 1, (name, sorted(span.name for span in spans))
    return named[0]


def ancestors(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    """The span's parent, its parent's parent, ... (within ``spans``)."""
    by_id = {s.context.span_id: s for s in spans}
    found = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found.append(by_id[parent.span_id])
        parent = found[-1].parent
    return found


def everything_in(span: ReadableSpan) -> str:
    parts: list[Any] = [span.name, dict(span.attributes or {}), span.status.description]
    parts += [(event.name, dict(event.attributes or {})) for event in span.events]
    return repr(parts)
