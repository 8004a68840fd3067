"""The GraphQL endpoint as an ASGI app: Strawberry's, with the context built from the lifespan state."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET

from app.domain.errors import PublicError
from app.graphql.answer_cache import AnswerCache, AnswerRecorder
from app.graphql.context import Context
from app.graphql.cost_limit import TOO_COMPLEX
from app.graphql.media_types import (
    GRAPHQL_RESPONSE_JSON,
    graphql_response_status,
    is_request_error,
    wants_graphql_response,
)
from app.graphql.schema import schema
from app.observability import current_request_id, note
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

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's answer, labelled ``application/graphql-response+json`` with the status code
        ``process_result`` chose when the client asked for that media type (``app.graphql.media_types``)."""
        response = await super().run(request, context, root_value)
        status = (
            getattr(request.state, "graphql_response_status", None) if isinstance(request, Request) else None
        )
        if isinstance(response, Response) and status is not None:
            response.status_code = status
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        return response

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """The answer, without ``data`` when nothing was executed — always for a query refused as too
        complex, and for every request error when the client accepts ``application/graphql-response+json``
        (GraphQL over HTTP) — and with anything shaped like a token blanked in error messages:
        graphql-core's validation errors quote the document's values (``connectGitToken(input: {token:
        "ghp_…"})`` without a provider), and a token must not come back even to whoever sent it."""
        answer = await super().process_result(request, result)
        errors_raised = result.errors or []
        refused = any((e.extensions or {}).get("code") == TOO_COMPLEX for e in errors_raised)
        if wants_graphql_response(request.headers.get("accept")):
            request.state.graphql_response_status = graphql_response_status(
                result.data is not None, errors_raised
            )
            if is_request_error(result.data is not None, errors_raised):
                answer.pop("data", None)
        if refused and result.data is None:
            answer.pop("data", None)
        errors = answer.get("errors")
        if isinstance(errors, list):
            for error in errors:
                if isinstance(error, dict) and isinstance(error.get("message"), str):
                    error["message"] = redact(error["message"])
        return answer

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,  # Strawberry's AsyncHTTPRequestAdapter (from its cross_web dependency)
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """A kept answer when one fits and is still true (``app.graphql.answer_cache``); else the
        document is executed, and its answer kept when it may be."""
        answers: AnswerCache | None = getattr(request.state, "answers", None)
        key = None
        if answers is not None and request_adapter.method == "POST":
            try:
                caller = await context.caller()
            except PublicError:
                caller = None  # executed as usual: the answer says UNAUTHENTICATED
            if caller is not None:
                key = answers.key(
                    caller.user_id, request_data.query, request_data.operation_name, request_data.variables
                )
        if answers is None or key is None or caller is None:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        started = time.perf_counter()
        kept = answers.get(key)
        if kept is not None and await kept.still_true(context.services, caller.user_id):
            answers.hits += 1
            for provider in kept.providers():  # each listing was served from the cache, as a warm read is
                context.services.metrics.repository_cache(provider, "hit")
            operation = request_data.operation_name
            note(operation=operation or "anonymous", outcome="ok", answer="kept")
            context.services.metrics.graphql_request(operation, "ok", time.perf_counter() - started)
            return ExecutionResult(data=kept.data, errors=None)
        answers.misses += 1
        answers.forget(key)
        context.answer = AnswerRecorder()
        result = await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )
        if not result.errors and isinstance(result.data, dict):
            answers.keep(key, result.data, context.answer)
        return result

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
