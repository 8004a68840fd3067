"""Parse and validate each distinct GraphQL document once per process, not once per request.

A frontend sends the same handful of documents over and over, their values in variables; parsing
and validating them (the limits on depth and aliases included) was a third of a worker's CPU under
load (docs/reliability.md). Strawberry's own ``ParserCache`` / ``ValidationCache`` do not fit: the
depth and alias limiters build new rule classes for every request, so a cache keyed by the rules
never hits, and they would keep any document, however large, including tokens written inline.

So only small documents without string literals are cached (``connectGitToken(input: {token:
"..."})`` is parsed afresh and forgotten); at most ``MAX_ENTRIES`` of them, least recently used
out first. The cache is keyed by the text, the parse options (the token limit) and the names of the
validation rules; the rules must not depend on the request (they do not: the schema's extensions
add the same limits every time). A document that does not parse is left to Strawberry, which
reports the error as usual.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

MAX_ENTRIES = 128
MAX_QUERY_CHARS = 4096


@dataclass
class _Entry:
    document: DocumentNode
    errors: dict[tuple[str, ...], list[GraphQLError]]  # by the validation rules' names


_entries: OrderedDict[tuple[str, tuple[tuple[str, object], ...]], _Entry] = OrderedDict()


def cacheable(query: str | None) -> bool:
    return query is not None and len(query) <= MAX_QUERY_CHARS and '"' not in query


def clear() -> None:
    _entries.clear()


def size() -> int:
    return len(_entries)


class DocumentCache(SchemaExtension):
    """Serves a known document's parse tree and validation result from the cache (see the module)."""

    _entry: _Entry | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and cacheable(context.query):
            assert context.query is not None
            key = (context.query, tuple(sorted(context.parse_options.items())))
            entry = _entries.get(key)
            if entry is None:
                try:
                    document = parse(context.query, **context.parse_options)
                except GraphQLError:
                    document = None  # Strawberry parses it again and answers the error
                if document is not None:
                    entry = _Entry(document, {})
                    _entries[key] = entry
                    while len(_entries) > MAX_ENTRIES:
                        _entries.popitem(last=False)
            else:
                _entries.move_to_end(key)
            if entry is not None:
                context.graphql_document = entry.document
                self._entry = entry
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        entry = self._entry
        if entry is not None and context.graphql_document is entry.document and context.validation_rules:
            rules = tuple(f"{rule.__module__}.{rule.__qualname__}" for rule in context.validation_rules)
            errors = entry.errors.get(rules)
            if errors is None:
                errors = validate_document(context.schema._schema, entry.document, context.validation_rules)
                entry.errors[rules] = errors
            context.pre_execution_errors = list(errors)
        yield


__all__ = ["MAX_ENTRIES", "MAX_QUERY_CHARS", "DocumentCache", "cacheable", "clear", "size"]
