"""Error masking: public errors pass with their ``extensions.code``; everything else is hidden.

A ``PublicError`` raised in a resolver reaches the client with its message and extensions
(graphql-core copies the exception's ``extensions``). Errors without an original exception are
the client's own (syntax, validation, limits) and pass too. Anything else is a bug: the client
sees "Internal error" and the request id, the log gets the details.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from app.domain.errors import PublicError
from app.observability import current_request_id, note

log = logging.getLogger(__name__)


def is_internal(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, PublicError | GraphQLError)


class MaskInternalErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=is_internal, error_message="Internal error")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = current_request_id()
        log.error(
            "unexpected error in a resolver",
            exc_info=(type(error.original_error), error.original_error, error.original_error.__traceback__)
            if error.original_error
            else None,
            extra={"path": error.path},
        )
        return GraphQLError(
            message=f"Internal error (request id {request_id})" if request_id else "Internal error",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": "INTERNAL", "requestId": request_id},
        )


class OperationLog(SchemaExtension):
    """Puts the operation name and its outcome on the request's log line, and counts it in the metrics."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        result = context.result
        errors = getattr(result, "errors", None) or []
        codes = sorted({str((e.extensions or {}).get("code", "GRAPHQL_ERROR")) for e in errors})
        outcome = ",".join(codes) if codes else "ok"
        note(operation=context.operation_name or "anonymous", outcome=outcome)
        services = getattr(context.context, "services", None)  # absent when executed without a request
        if services is not None:
            services.metrics.graphql_request(context.operation_name, outcome, time.perf_counter() - started)
