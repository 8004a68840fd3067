"""Refuse an operation whose upstream work is over budget, before any resolver runs.

``UpstreamCostLimit`` runs when the document is parsed and validated and execution is about to
start. It estimates the operation's work (``app.graphql.cost``); when that could exceed the budget of
a caller without integrations, it reads how many integrations the caller has (one count in the
database), and when the estimate is over ``MAX_UPSTREAM_WORK_PER_REQUEST`` plus that count, the result is a single
``QUERY_TOO_COMPLEX`` error: nothing is executed, so nothing is sent to any host, and the answer
carries no ``data`` (``app.graphql.asgi`` leaves it out, as GraphQL over HTTP does for a request
that never executed).

An anonymous caller is not estimated: every field refuses it (``UNAUTHENTICATED``) before any work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from app.domain.errors import PublicError, QueryTooComplexError, UnauthenticatedError
from app.graphql.cost import estimate
from app.observability import note

TOO_COMPLEX = QueryTooComplexError.code
# As many integrations as anyone could have: an estimate that fits the smallest budget even then needs
# no count from the database (a search, a page, a repository's branches).
ANY_NUMBER = 10**9


class UpstreamCostLimit(SchemaExtension):
    """``QUERY_TOO_COMPLEX`` for an operation over its upstream budget (see the module docstring)."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        services = getattr(context.context, "services", None)  # absent when executed without a request
        if context.graphql_document is not None and context.result is None and services is not None:
            refusal: PublicError | None
            try:
                refusal = await self._refusal()
            except PublicError as exc:  # the database cannot say how many integrations there are
                refusal = exc
            if refusal is not None:
                context.result = GraphQLExecutionResult(
                    data=None, errors=[GraphQLError(refusal.message, original_error=refusal)]
                )
        yield

    async def _refusal(self) -> QueryTooComplexError | None:
        context = self.execution_context
        assert context.graphql_document is not None
        schema = context.schema._schema

        def work_for(integrations: int) -> int | None:
            assert context.graphql_document is not None
            work = estimate(
                schema, context.graphql_document, context.operation_name, context.variables, integrations
            )
            return None if work is None or work.empty else work.total(integrations)

        services = context.context.services
        least = services.settings.max_upstream_work_per_request  # the budget of a caller with none
        most = work_for(ANY_NUMBER)
        if most is None or most <= least:
            return None  # nothing in it reaches a host, or it fits however many integrations there are
        try:
            caller = await context.context.caller()
        except UnauthenticatedError:
            return None
        integrations = await services.integrations.count_for_owner(caller.user_id)
        cost = work_for(integrations) or 0
        budget = least + integrations
        note(upstream_cost=cost)
        if cost <= budget:
            return None
        return QueryTooComplexError(
            f"This request would ask the Git hosts for too much at once: about {cost} listings, branch "
            f"reads and checks, where {budget} are allowed. Ask for fewer aliases, searches or "
            "repositories' branches in one request, or split it into several.",
            cost=cost,
            budget=budget,
        )
