"""What a span may carry out of the service (app/tracing/privacy.py), whatever an instrumentation recorded."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk", reason="tracing needs the `otel` extra (make test installs it)")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from app.tracing.privacy import KEPT_ATTRIBUTES, PrivateSpanExporter

TOKEN = "ghp_" + "s" * 36
HOST = "gitlab.user-typed.test"


def test_only_known_harmless_attributes_leave_and_errors_keep_only_their_type() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PrivateSpanExporter(exported)))
    tracer = provider.get_tracer("test")

    with tracer.start_as_current_span(f"GET https://{HOST}/api/v4/projects") as span:
        span.set_attributes(
            {
                "http.request.method": "GET",
                "http.response.status_code": 500,
                "url.full": f"https://{HOST}/oauth/callback?code=abc&state=def",
                "url.query": "search=secret-project",
                "server.address": HOST,
                "client.address": "203.0.113.7",
                "user_agent.original": "curl/8",
                "http.request.header.authorization": (f"Bearer {TOKEN}",),
                "query": f'mutation {{ connectGitToken(input: {{token: "{TOKEN}"}}) {{ __typename }} }}',
                "graphql.param.search": "secret-project",
                "db.statement": "find {'owner': 'alice', 'host': '" + HOST + "'}",
                "upstream.host": "user-entered",
                "git.provider": "GITLAB",
            }
        )
        span.record_exception(RuntimeError(f"{HOST} refused {TOKEN}"))
        span.set_status(Status(StatusCode.ERROR, f"E11000 duplicate key: {{ host: {HOST!r} }}"))
    provider.shutdown()

    (sent,) = exported.get_finished_spans()
    assert dict(sent.attributes or {}) == {
        "http.request.method": "GET",
        "http.response.status_code": 500,
        "upstream.host": "user-entered",
        "git.provider": "GITLAB",
    }
    assert set(sent.attributes or {}) <= KEPT_ATTRIBUTES
    (event,) = sent.events
    assert event.name == "exception"
    assert (event.attributes or {}).get("exception.type") == "RuntimeError"
    assert set(event.attributes or {}) <= {"exception.type", "exception.escaped"}
    assert sent.status.status_code is StatusCode.ERROR and not sent.status.description
    assert TOKEN not in sent.name


def test_a_mongodb_statement_is_kept_only_as_a_bare_command_name() -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PrivateSpanExporter(exported)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("db.find", attributes={"db.statement": "find"}):
        pass
    with tracer.start_as_current_span("db.find", attributes={"db.statement": "find {'owner': 'alice'}"}):
        pass
    provider.shutdown()
    assert [dict(span.attributes or {}) for span in exported.get_finished_spans()] == [
        {"db.statement": "find"},
        {},
    ]
