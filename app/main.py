"""``create_app(settings)``: the one place that wires the service together.

The lifespan opens the database (starting the embedded server when ``MONGODB_URI`` is unset),
the shared HTTP client (guarded against SSRF, never following redirects) and the host clients,
and closes them in reverse order on shutdown.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from strawberry.asgi import GraphQL

from app.graphql.context import Context
from app.graphql.schema import schema
from app.limits import BodySizeLimitMiddleware
from app.metrics import allow_hosts, exposition
from app.oauth_callback import oauth_callback
from app.observability import RequestLogMiddleware, current_request_id
from app.providers.hosts import HostGuard, Resolver
from app.providers.registry import GitHosts, trusted_hostnames
from app.security.auth import Authenticator
from app.security.crypto import TokenCipher
from app.services.wiring import Services
from app.settings import Settings
from app.storage.integrations import IntegrationRepository
from app.storage.mongo import Database, EmbeddedMongo, embedded_storage_path

log = logging.getLogger(__name__)

USER_AGENT = "git-integrations/0.1 (+https://github.com)"
# GraphiQL's page and assets, served by the service itself (no CDN): app/static/graphiql/README.md.
GRAPHIQL_DIR = Path(__file__).parent / "static" / "graphiql"
# Only this origin; inline styles because GraphiQL's dialogs inject a <style> element (never scripts).
GRAPHIQL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class GraphQLApp(GraphQL[Context, None]):
    def __init__(self, services_ref: dict[str, Services], *, graphiql: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=False)
        self._services_ref = services_ref

    def decode_json(self, data: str | bytes) -> object:
        # json.loads recurses once per level of nesting: a small body of 100,000 "[" would end the
        # request in a RecursionError (a 500). Strawberry answers a JSONDecodeError with a 400.
        try:
            return json.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "", 0) from None

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(
            request=request,
            response=response,
            services=self._services_ref["services"],
            request_id=current_request_id() or "",
        )

    @property
    def graphql_ide_html(self) -> str:
        return (GRAPHIQL_DIR / "index.html").read_text(encoding="utf-8")

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self.graphql_ide_html, headers={"Content-Security-Policy": GRAPHIQL_CSP})


def build_http_client(settings: Settings, guard: HostGuard) -> httpx.AsyncClient:
    timeout = httpx.Timeout(settings.http_timeout_seconds, connect=min(5.0, settings.http_timeout_seconds))
    return httpx.AsyncClient(
        transport=guard.transport(
            retries=0, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
        ),
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, http: httpx.AsyncClient | None = None, resolver: Resolver | None = None
) -> AsyncIterator[Services]:
    """Everything the use cases need, opened for the lifetime of the process (or of a test)."""
    async with contextlib.AsyncExitStack() as stack:
        if settings.mongodb_uri is None:
            embedded = EmbeddedMongo(embedded_storage_path(settings.data_dir))
            uri = embedded.start()
            stack.callback(embedded.stop)
        else:
            uri = settings.mongodb_uri.reveal()
        database = Database(uri, settings.mongodb_database)
        stack.push_async_callback(database.close)
        await database.ensure_indexes()
        guard = HostGuard(
            allowlist=settings.git_host_allowlist, trusted=trusted_hostnames(settings), resolver=resolver
        )
        if http is None:
            http = build_http_client(settings, guard)
            stack.push_async_callback(http.aclose)
        cipher = TokenCipher(settings.encryption_keys)
        services = Services(
            settings=settings,
            database=database,
            integrations=IntegrationRepository(database, cipher),
            hosts=GitHosts(settings, http, guard),
            authenticator=Authenticator(settings, http),
        )
        allow_hosts([services.hosts.github.host, services.hosts.gitlab.host])  # operator-configured
        # Before the database closes: let listings that are still being saved finish.
        stack.push_async_callback(services.listing_flights.drain)
        yield services


def create_app(
    settings: Settings, *, http: httpx.AsyncClient | None = None, resolver: Resolver | None = None
) -> Starlette:
    """The ASGI app. ``http`` and ``resolver`` replace the upstream client and DNS (tests only)."""
    services_ref: dict[str, Services] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings, http=http, resolver=resolver) as services:
            services_ref["services"] = services
            log.info("service ready", extra={"generated_secrets": list(settings.generated_secrets)})
            yield
        services_ref.clear()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def oauth_callback_endpoint(request: Request) -> Response:
        return await oauth_callback(request, services_ref["services"])

    async def metrics(request: Request) -> Response:
        body, content_type = exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    async def readyz(request: Request) -> Response:
        services = services_ref.get("services")
        if services is not None and await services.database.ping():
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            {"status": "not ready", "reason": "the database does not answer"}, status_code=503
        )

    graphql_app = GraphQLApp(services_ref, graphiql=settings.graphiql)
    middleware = [
        Middleware(RequestLogMiddleware),
        Middleware(BodySizeLimitMiddleware),
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
            Route("/metrics", metrics),
            Route("/oauth/callback", oauth_callback_endpoint, methods=["GET"]),
            *([Mount("/static/graphiql", StaticFiles(directory=GRAPHIQL_DIR))] if settings.graphiql else []),
        ],
        middleware=middleware,
        lifespan=lifespan,
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
