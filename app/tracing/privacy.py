"""What a span may carry out of the service: the metrics' privacy rule (``app.metrics``), for traces.

Instrumentations record more than this service may export: the ASGI one the full URL (the OAuth
callback's ``code`` and ``state``), the client's address and user agent; the httpx one every URL (owner
and repository names, the search text, a user-typed host); Strawberry's the query text (a token written
inline) and argument values (the search text); PyMongo's, on failure, the server's message (a duplicate
key names the values). Exception events carry messages that may hold any of these.

``PrivateSpanExporter`` wraps every exporter the service configures and passes on a copy of each span
with only the attributes of ``KEPT_ATTRIBUTES`` (string values run through the token redaction of the
logs, as a last line of defence), exception events reduced to the exception's type, and no status
message. New attributes of a new instrumentation release are dropped until they are added here.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status
from opentelemetry.util.types import Attributes

from app.security.token_shapes import redact

USER_ENTERED_HOST = "user-entered"
KEPT_ATTRIBUTES = frozenset(
    {
        # HTTP, server and client side (old and new semantic conventions).
        "http.method",
        "http.request.method",
        "http.request.method_original",
        "http.status_code",
        "http.response.status_code",
        "http.route",  # the route's template (app.tracing.sdk.route_of), never the path
        "http.scheme",
        "url.scheme",
        "http.flavor",
        "network.protocol.version",
        "error.type",
        # Requests to Git hosts (app.tracing.sdk): a configured host's name or "user-entered", and the
        # endpoint family of the metrics.
        "upstream.host",
        "upstream.endpoint",
        # MongoDB: the database, collection and command name (statements are never captured).
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.mongodb.collection",
        "db.collection.name",
        "db.statement",
        "db.query.text",
        # GraphQL (Strawberry): where in the query a resolver ran; never the query or its arguments.
        "component",
        "graphql.parentType",
        "graphql.path",
        # Ours (app.services.catalog).
        "git.provider",
        "listing.cache",
        "listing.search",
    }
)
# A MongoDB "statement" kept is a bare command name: with capture_statement it would hold the filter.
_COMMAND_NAME_ATTRIBUTES = frozenset({"db.statement", "db.query.text"})
_EXCEPTION_EVENT_ATTRIBUTES = frozenset({"exception.type", "exception.escaped"})


def private_attributes(attributes: Attributes, kept: frozenset[str] = KEPT_ATTRIBUTES) -> dict[str, object]:
    """The attributes a span may export (see the module docstring)."""
    result: dict[str, object] = {}
    for key, value in (attributes or {}).items():
        if key not in kept:
            continue
        if key in _COMMAND_NAME_ATTRIBUTES and not (isinstance(value, str) and value.isalpha()):
            continue
        result[key] = redact(value) if isinstance(value, str) else value
    return result


def private_copy(span: ReadableSpan) -> ReadableSpan:
    """``span`` with only what may leave the service."""
    events = [
        Event(
            event.name,
            private_attributes(event.attributes, _EXCEPTION_EVENT_ATTRIBUTES),  # type: ignore[arg-type]
            event.timestamp,
        )
        for event in span.events
        if event.name == "exception"
    ]
    # Built directly (the SDK's docs discourage it): a finished span cannot be changed, and an exporter
    # receives finished spans; every field an exporter reads is copied.
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=private_attributes(span.attributes),  # type: ignore[arg-type]
        events=events,
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class PrivateSpanExporter(SpanExporter):
    """Hands ``inner`` a private copy of every span (``private_copy``)."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([private_copy(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)
