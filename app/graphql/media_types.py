"""GraphQL over HTTP: which media type a response has, and which status code goes with it.

The GraphQL-over-HTTP specification (https://graphql.github.io/graphql-over-http/draft/) knows two
response media types:

- ``application/json``, the one every client understands: every well-formed request is answered 200,
  whatever errors the answer holds (a client cannot tell a proxy's 400 from the server's). This is what
  the service has always answered, and still answers when the client asks for it, sends ``*/*`` or sends
  no ``Accept`` at all (the specification's rule for legacy clients).
- ``application/graphql-response+json``, for clients that ask for it (``Accept``): the status code then
  says whether anything was executed. A *request error* — the document does not parse or validate, a
  variable cannot be coerced, the operation was refused as too complex — is answered without ``data``
  and with 400; an answer with ``data`` (even ``null`` after a field error) is 200.

A request error is recognised by its result: no ``data`` was produced and no error has a ``path`` (every
error raised while executing a field has one; the errors of parsing, validation, variable coercion and of
extensions that refuse an operation before execution have none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from graphql import GraphQLError

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
# A request refused before execution through the service's own fault, not the client's.
SERVER_FAULTS = {"INTERNAL": 500, "SERVICE_UNAVAILABLE": 503}


@dataclass(frozen=True)
class _Range:
    media_type: str  # lower case, without parameters other than q
    quality: float


def _ranges(accept: str) -> list[_Range]:
    ranges = []
    for part in accept.split(","):
        media_type, *parameters = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0  # a malformed weight accepts nothing rather than everything
        if media_type:
            ranges.append(_Range(media_type.lower(), quality))
    return ranges


def _quality(ranges: Sequence[_Range], media_type: str) -> float:
    """How much the client wants ``media_type``: the weight of the most specific range that matches it."""
    kind = media_type.split("/", 1)[0]
    for candidate in (media_type, f"{kind}/*", "*/*"):
        weights = [r.quality for r in ranges if r.media_type == candidate]
        if weights:
            return max(weights)
    return 0.0


def wants_graphql_response(accept: str | None) -> bool:
    """The client asked for ``application/graphql-response+json`` by name, at least as much as for
    ``application/json``. A wildcard alone (``*/*``, ``application/*``) or no ``Accept`` keeps the
    ``application/json`` answer that clients written before the new media type expect."""
    if not accept:
        return False
    ranges = _ranges(accept)
    named = [r.quality for r in ranges if r.media_type == GRAPHQL_RESPONSE_JSON]
    if not named or max(named) <= 0:
        return False
    return max(named) >= _quality(ranges, JSON)


def is_request_error(data_present: bool, errors: Sequence[GraphQLError]) -> bool:
    """Nothing was executed: no ``data`` and errors none of which belongs to a field (see the module)."""
    return not data_present and bool(errors) and all(not error.path for error in errors)


def graphql_response_status(data_present: bool, errors: Sequence[GraphQLError]) -> int:
    """The status code of an ``application/graphql-response+json`` answer: 400 for a request error
    (500 or 503 when the refusal was the service's own fault: ``INTERNAL``, or the database did not
    answer the cost limit's count, ``SERVICE_UNAVAILABLE``), otherwise 200."""
    if not is_request_error(data_present, errors):
        return 200
    faults = [SERVER_FAULTS.get(str((error.extensions or {}).get("code"))) for error in errors]
    return max((status for status in faults if status is not None), default=400)
