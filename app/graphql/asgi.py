"""The GraphQL endpoint as an ASGI app: Strawberry's, with the context built from the lifespan state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from app.graphql.context import Context
from app.graphql.cost_limit import TOO_COMPLEX
from app.graphql.schema import schema
from app.observability import current_request_id
from app.security.token_shapes import redact

# Only this origin; inline styles because GraphiQL's dialogs inject a <style> element (never scripts).
GRAPHIQL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class GraphQLApp(GraphQL[Context, None]):
    """``POST /graphql`` (and GraphiQL on ``GET`` when ``graphiql_dir`` holds its page)."""

    def __init__(self, graphiql_dir: Path | None, traced_schema: strawberry.Schema | None = None) -> None:
        super().__init__(
            traced_schema or schema,
            graphql_ide="graphiql" if graphiql_dir else None,
            allow_queries_via_get=False,
        )
        self._graphiql_dir = graphiql_dir

    def decode_json(self, data: str | bytes) -> object:
        # json.loads recurses once per level of nesting: a small body of 100,000 "[" would end the
        # request in a RecursionError (a 500). Strawberry answers a JSONDecodeError with a 400.
        try:
            return json.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "", 0) from None

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """The answer, without ``data`` when the query was refused as too complex before execution
        (GraphQL over HTTP), and with anything shaped like a token blanked in error messages:
        graphql-core's validation errors quote the document's values (``connectGitToken(input: {token:
        "ghp_…"})`` without a provider), and a token must not come back even to whoever sent it."""
        answer = await super().process_result(request, result)
        refused = any((e.extensions or {}).get("code") == TOO_COMPLEX for e in result.errors or ())
        if refused and result.data is None:
            answer.pop("data", None)
        errors = answer.get("errors")
        if isinstance(errors, list):
            for error in errors:
                if isinstance(error, dict) and isinstance(error.get("message"), str):
                    error["message"] = redact(error["message"])
        return answer

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(
            request=request,
            response=response,
            services=request.state.services,  # the lifespan state (app.main)
            request_id=current_request_id() or "",
        )

    @property
    def graphql_ide_html(self) -> str:
        assert self._graphiql_dir is not None
        return (self._graphiql_dir / "index.html").read_text(encoding="utf-8")

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self.graphql_ide_html, headers={"Content-Security-Policy": GRAPHIQL_CSP})
