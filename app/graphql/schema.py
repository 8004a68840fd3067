"""The Strawberry schema: queries, mutations, limits, error members and masking in one place."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.graphql.cost_limit import UpstreamCostLimit
from app.graphql.document_cache import DocumentCache
from app.graphql.errors import MaskInternalErrors, OperationLog
from app.graphql.mutations.links import LinkMutations
from app.graphql.mutations.oauth import OAuthMutations
from app.graphql.mutations.tokens import TokenMutations
from app.graphql.queries import Query
from app.graphql.types.errors import EXCEPTION_HANDLERS
from app.graphql.types.integration import IntegrationType
from app.graphql.types.links import RepositoryEventType, RepositoryLinkType

MAX_DEPTH = 10
MAX_TOKENS = 4000
MAX_ALIASES = 30


@strawberry.type(
    description="What the caller can change. Each mutation takes one `input` object and answers a union: "
    "the result, or a failure member implementing Error (check `__typename`). Anything the union has no "
    "member for (UNAUTHENTICATED, FORBIDDEN, QUERY_TOO_COMPLEX, SERVICE_UNAVAILABLE, INTERNAL) is a GraphQL "
    "error with `extensions.code`."
)
class Mutation(TokenMutations, OAuthMutations, LinkMutations):
    pass


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log nothing here. Strawberry would log every error with the lines of the query around it,
        and a query may carry a token inline (``connectGitToken(input: {token: "..."})``). The
        request's log line has the errors' codes (``OperationLog``); internal errors are logged, without
        the query, by ``MaskInternalErrors``.
        """


def build_schema(*, tracer_provider: Any = None) -> strawberry.Schema:
    """The schema; with ``tracer_provider`` (app.tracing), a span for the operation and its resolvers."""
    traced: list[Any] = []
    if tracer_provider is not None:
        from strawberry.extensions.tracing import OpenTelemetryExtension

        # First: its operation span covers the others. No argument values (the search text); the query
        # text it records is dropped before export (app.tracing.privacy).
        traced.append(
            partial(OpenTelemetryExtension, tracer_provider=tracer_provider, arg_filter=_no_arguments)
        )
    return Schema(
        query=Query,
        mutation=Mutation,
        types=[IntegrationType, RepositoryLinkType, RepositoryEventType],
        config=StrawberryConfig(auto_camel_case=True),
        exception_handlers=EXCEPTION_HANDLERS,  # domain errors → mutation union members
        extensions=[
            *traced,
            partial(QueryDepthLimiter, max_depth=MAX_DEPTH),
            partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
            partial(MaxAliasesLimiter, max_alias_count=MAX_ALIASES),
            DocumentCache,  # after the limits: it parses and validates with them, once per document
            UpstreamCostLimit,  # after validation, before execution: QUERY_TOO_COMPLEX before any host call
            OperationLog,
            MaskInternalErrors,
        ],
    )


def _no_arguments(arguments: dict[str, Any], info: Any) -> dict[str, Any]:
    return {}


schema = build_schema()
