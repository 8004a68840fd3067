"""``create_app(settings)``: the ASGI app — routes, middleware, and the lifespan.

The lifespan opens everything through the composition root (``app.composition.open_services``) and
hands the ``Services`` to every handler in Starlette's lifespan state: handlers read
``request.state.services``, and nothing is kept in a module or a closure. On shutdown it is closed in
reverse order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypedDict

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.composition import Seams, Services, open_services
from app.disconnect import CancelOnDisconnect
from app.graphql.answer_cache import AnswerCache
from app.graphql.asgi import GraphQLApp
from app.graphql.schema import build_schema, schema
from app.hosts.registry import configured_origins
from app.oauth_callback import oauth_callback
from app.observability import RequestLogMiddleware
from app.settings.model import Settings
from app.tracing import start_tracing
from app.webhooks import MAX_DELIVERY_BYTES, BytesInFlight, receive_webhook

log = logging.getLogger(__name__)
# GraphiQL's page and assets, served by the service itself (no CDN): app/static/graphiql/README.md.
GRAPHIQL_DIR = Path(__file__).parent / "static" / "graphiql"
# Request bodies: far above any real GraphQL document of this API. Starlette's own limit (since 1.6),
# outside every middleware: a declared Content-Length over it is refused before the body is read, a
# streamed body as soon as it passes it, both with a plain-text "413 Content Too Large" (Starlette
# replaces whatever the app would answer). A route that takes larger bodies (webhook deliveries:
# 25 MiB) says so with Route(..., max_body_size=...), which overrides this one.
MAX_BODY_BYTES = 256 * 1024


class State(TypedDict):
    """The lifespan state: every request's ``request.state`` starts as a copy of it."""

    services: Services
    answers: AnswerCache  # warm picker answers kept for this process (app.graphql.answer_cache)


def services_of(request: Request) -> Services:
    """The ``Services`` the lifespan built (an ``AttributeError`` if it has not run)."""
    services: Services = request.state.services
    return services


def create_app(settings: Settings, seams: Seams | None = None) -> Starlette:
    """The ASGI app. ``seams`` replaces parts of it (tests and benchmarks only; see ``Seams``)."""
    tracing = start_tracing(
        settings,
        seams.span_exporter if seams else None,
        configured_hosts=sorted({origin.name for origin in configured_origins(settings)}),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        try:
            async with open_services(settings, seams, tracing) as services:
                log.info("service ready", extra={"generated_secrets": list(settings.generated_secrets)})
                yield {"services": services, "answers": AnswerCache(schema._schema)}
        finally:
            tracing.shutdown()  # the spans still buffered go out

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def oauth_callback_endpoint(request: Request) -> Response:
        return await oauth_callback(request, services_of(request).connect_login)

    in_flight = BytesInFlight()

    async def webhook(request: Request) -> Response:
        return await receive_webhook(request, services_of(request).intake, in_flight)

    async def metrics(request: Request) -> Response:
        body, content_type = services_of(request).metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    async def readyz(request: Request) -> Response:
        services: Services | None = getattr(request.state, "services", None)
        if services is not None and await services.database.ping():
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            {"status": "not ready", "reason": "the database does not answer"}, status_code=503
        )

    graphql_app = GraphQLApp(
        GRAPHIQL_DIR if settings.graphiql else None,
        build_schema(tracer_provider=tracing.provider) if tracing.provider is not None else None,
    )
    middleware = [
        # Outermost: the request's log line is written inside its span, and carries its trace id.
        *tracing.middleware(),
        Middleware(RequestLogMiddleware),
        Middleware(CancelOnDisconnect),
    ]
    if settings.frontend_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.frontend_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                max_age=600,
            )
        )
    return Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            # Production: only on METRICS_PORT (app.metrics_listener), never next to the API.
            *([] if settings.production else [Route("/metrics", metrics)]),
            Route("/oauth/callback", oauth_callback_endpoint, methods=["GET"]),
            Route(
                "/webhooks/{provider}/{link_id}", webhook, methods=["POST"], max_body_size=MAX_DELIVERY_BYTES
            ),
            *([Mount("/static/graphiql", StaticFiles(directory=GRAPHIQL_DIR))] if settings.graphiql else []),
        ],
        middleware=middleware,
        lifespan=lifespan,
        max_body_size=MAX_BODY_BYTES,
    )


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (several workers): settings from the environment."""
    from app.observability import configure_logging
    from app.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    if settings.prometheus_multiproc_dir is not None:
        # Each worker writes its metrics there (app.metrics); emptying it is for whoever starts them all.
        settings.prometheus_multiproc_dir.mkdir(parents=True, exist_ok=True)
    return create_app(settings)
