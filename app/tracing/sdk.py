"""The tracing of ``app.tracing`` with the OpenTelemetry SDK (the ``otel`` extra): one ``TracerProvider``
per app, its spans exported through ``privacy.PrivateSpanExporter``.

- Incoming requests: the ASGI instrumentation, a server span named by the route template
  (``POST /graphql``), ``traceparent`` read (W3C trace context only: ``baggage`` from a caller is
  neither read nor passed on to Git hosts, which may be hosts a user typed).
- GraphQL: Strawberry's OpenTelemetry extension (``app.graphql.schema.build_schema``), without
  argument values.
- Git hosts: the httpx instrumentation on the service's client; each span says which host
  (``upstream.host``: a configured host's name, else ``user-entered``) and which endpoint family
  (``upstream.endpoint``, as the metrics name them), never the URL.
- MongoDB: the PyMongo instrumentation's command listener on the service's client, without statements.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor, RequestInfo
from opentelemetry.instrumentation.pymongo import CommandTracer
from opentelemetry.propagate import set_global_textmap
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from app.metrics import endpoint_family
from app.tracing import AttributeValue, SpanHandle, Tracing
from app.tracing.privacy import USER_ENTERED_HOST, PrivateSpanExporter

SERVICE = "git-integrations"
# Probes and scrapes every few seconds would drown the traces that matter.
UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class OpenTelemetryTracing(Tracing):
    def __init__(
        self,
        exporter_names: Sequence[str],
        exporter: SpanExporter | None,
        *,
        configured_hosts: Iterable[str],
    ) -> None:
        self.provider = TracerProvider(resource=_resource())  # the sampler from OTEL_TRACES_SAMPLER
        if exporter is not None:  # tests: each span handed over as it ends
            self.provider.add_span_processor(SimpleSpanProcessor(PrivateSpanExporter(exporter)))
        for name in exporter_names:
            self.provider.add_span_processor(BatchSpanProcessor(PrivateSpanExporter(_exporter(name))))
        # traceparent in (ASGI) and out (httpx); never baggage (see the module docstring).
        set_global_textmap(TraceContextTextMapPropagator())
        self._tracer = self.provider.get_tracer("app")
        self._configured_hosts = frozenset(host.lower() for host in configured_hosts)

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, AttributeValue] | None = None) -> Iterator[SpanHandle]:
        with self._tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span

    def middleware(self) -> list[Middleware]:
        def span_details(scope: Scope) -> tuple[str, dict[str, AttributeValue]]:
            method = str(scope.get("method", ""))
            method = method if method in HTTP_METHODS else "_OTHER"
            # Starlette puts itself in the scope before its middleware runs.
            app = scope.get("app")
            route = route_of(app.routes if app is not None else (), scope)
            return f"{method} {route}", {"http.route": route}

        return [
            Middleware(
                OpenTelemetryMiddleware,
                tracer_provider=self.provider,
                default_span_details=span_details,
                excluded_urls=",".join(UNTRACED_PATHS),
                exclude_spans=["receive", "send"],
            )
        ]

    def instrument_http(self, client: httpx.AsyncClient) -> Callable[[], None]:
        configured = self._configured_hosts

        async def name_the_host(span: Span, request: RequestInfo) -> None:
            url = httpx.URL(request.url) if isinstance(request.url, httpx.URL) else _url_of(request.url)
            host = (url.host or "").lower()
            span.set_attribute("upstream.host", host if host in configured else USER_ENTERED_HOST)
            span.set_attribute("upstream.endpoint", endpoint_family(str(url)))

        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self.provider, request_hook=name_the_host
        )
        return lambda: HTTPXClientInstrumentor.uninstrument_client(client)

    def mongo_listeners(self) -> list[Any]:
        tracer = self.provider.get_tracer("opentelemetry.instrumentation.pymongo")
        return [CommandTracer(tracer, capture_statement=False)]

    def shutdown(self) -> None:
        self.provider.shutdown()


def route_of(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The template of the route ``scope`` goes to (``/webhooks/github/{link_id}``), or ``other``:
    never the path itself, which holds what the client wrote."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "other")) or "other"
    return "other"


def _url_of(url: tuple[bytes, bytes, int | None, bytes]) -> httpx.URL:
    scheme, host, port, path = url
    return httpx.URL(scheme=scheme.decode(), host=host.decode(), port=port, raw_path=path)


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    assert name == "otlp", name  # Settings allows nothing else
    return OTLPSpanExporter()  # endpoint, headers, timeout, TLS: the OTEL_EXPORTER_OTLP_* variables


def _resource() -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with this service's name when neither names one."""
    detected = Resource.create()
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    return detected if named else detected.merge(Resource({SERVICE_NAME: SERVICE}))
