"""Traces: OpenTelemetry spans of each request, its GraphQL operation, repository listings, the requests
to Git hosts and the MongoDB commands — with the optional ``otel`` extra, when an exporter is named.

Off unless ``OTEL_TRACES_EXPORTER`` names one (``otlp``: OTLP over HTTP/protobuf; ``console``) and
``OTEL_SDK_DISABLED`` is not true; everything else is the OpenTelemetry SDK's own standard variables
(``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_TRACES_SAMPLER``, ...). Unlike the SDK's
default (``otlp``), an unset ``OTEL_TRACES_EXPORTER`` means no traces: installing the extra must not
make the service start sending to localhost:4318.

Spans follow the metrics' privacy rule (``app.metrics``): every exported span passes through
``app.tracing.privacy``, which keeps only the attributes it knows to be harmless — never a token, a
user id, a user-typed host name, a repository name, a path below the API or the search text.

Without the extra (the production image's default) ``start_tracing`` answers ``NO_TRACING``, whose
methods do nothing; only the modules of this package import ``opentelemetry``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.middleware import Middleware

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace.export import SpanExporter as SpanExporter

    from app.settings.model import Settings

try:  # the API alone: cheap, and what the log lines read their trace id from
    from opentelemetry import trace as _otel_trace
except ImportError:  # the production image without the `otel` extra
    _otel_trace = None  # type: ignore[assignment]

AttributeValue = str | bool | int | float


class SpanHandle(Protocol):
    def set_attribute(self, key: str, value: AttributeValue) -> None: ...


class _NoSpan:
    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass


class Tracing:
    """No tracing: what every part asks of the tracing, answered by doing nothing."""

    provider: Any = None

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[SpanHandle]:
        """A span of our own around a piece of work (the current span's child)."""
        yield _NoSpan()

    def middleware(self) -> list[Middleware]:
        """The server span of every HTTP request (named by its route), with ``traceparent`` read."""
        return []

    def instrument_http(self, client: httpx.AsyncClient) -> Callable[[], None]:
        """A client span for every request ``client`` sends; returns what undoes it."""
        return lambda: None

    def mongo_listeners(self) -> list[Any]:
        """PyMongo command listeners that make a span of every command."""
        return []

    def shutdown(self) -> None:
        """Export what is still buffered, then stop."""


NO_TRACING = Tracing()


def start_tracing(
    settings: Settings, exporter: SpanExporter | None = None, *, configured_hosts: Iterable[str] = ()
) -> Tracing:
    """The tracing ``settings`` ask for; ``exporter`` (tests) replaces the configured ones.

    ``configured_hosts``: the hosts the operator configured, the only ones a span may name.
    """
    if exporter is None and not settings.traces_exporters:
        return NO_TRACING
    from app.tracing.sdk import OpenTelemetryTracing

    return OpenTelemetryTracing(settings.traces_exporters, exporter, configured_hosts=configured_hosts)


def current_trace_id() -> str | None:
    """The trace id of the span being recorded now (32 hex digits), for log lines."""
    if _otel_trace is None:
        return None
    context = _otel_trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
