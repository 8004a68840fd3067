"""The demo page: a stand-in for the platform's frontend, served by the demo process on its own origin.

- ``/``: the cheat sheet, "Connect with GitHub/GitLab" (``connectGitOAuth`` with ``returnTo`` here), a
  push button, GraphiQL.
- ``/oauth/return``: the frontend's ``returnTo`` page: it takes ``state`` and ``code`` out of the address
  bar first (``history.replaceState``), then finishes with ``completeGitOAuth`` as the user who started.
- ``/graphiql``: GraphiQL (the service's own vendored assets) posting to the service, its Authorization
  header filled from ``/config.json`` — the page's configuration, never the URL.

The service allows this origin (``FRONTEND_ORIGINS``) for CORS and as ``returnTo``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
# The service's vendored GraphiQL, read as files (the demo imports nothing of app/ to serve it).
GRAPHIQL_ASSETS = Path(__file__).resolve().parents[1] / "app" / "static" / "graphiql"
# The page may talk to the service and nothing else; no inline script.
CSP = (
    "default-src 'self'; connect-src 'self' {service}; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
)


def build_page(config: dict[str, Any], index: Callable[[], str], push: Callable[[], int]) -> Starlette:
    """``config``: what ``/config.json`` answers (filled once the service runs); ``index``: the page;
    ``push``: push to every linked repository, answering how many."""

    def secured(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP.format(service=config.get("serviceUrl", ""))
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def home(request: Request) -> Response:
        return secured(HTMLResponse(index()))

    async def configuration(request: Request) -> Response:
        return secured(JSONResponse(config))

    async def oauth_return(request: Request) -> Response:
        return secured(FileResponse(STATIC / "return.html"))

    async def graphiql(request: Request) -> Response:
        return secured(FileResponse(STATIC / "graphiql.html"))

    async def push_all(request: Request) -> Response:
        return secured(JSONResponse({"pushes": push()}))

    return Starlette(
        routes=[
            Route("/", home),
            Route("/config.json", configuration),
            Route("/oauth/return", oauth_return),
            Route("/graphiql", graphiql),
            Route("/push", push_all, methods=["POST"]),
            Mount("/static/demo", StaticFiles(directory=STATIC)),
            Mount("/static/graphiql", StaticFiles(directory=GRAPHIQL_ASSETS)),
        ]
    )
