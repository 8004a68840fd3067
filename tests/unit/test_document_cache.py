"""The per-process cache of parsed and validated GraphQL documents (app/graphql/document_cache.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.graphql import document_cache
from app.graphql.schema import schema

ALIASES = "{ " + " ".join(f"a{n}: __typename" for n in range(40)) + " }"


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    document_cache.clear()
    yield
    document_cache.clear()


async def test_a_document_is_parsed_and_validated_once_and_answers_the_same_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    for name in ("parse", "validate_document"):
        original = getattr(document_cache, name)
        monkeypatch.setattr(
            document_cache, name, lambda *a, _o=original, _n=name, **k: calls.append(_n) or _o(*a, **k)
        )
    first = await schema.execute("query Ping { __typename }")
    second = await schema.execute("query Ping { __typename }")
    assert first.errors is None and second.errors is None
    assert first.data == second.data == {"__typename": "Query"}
    assert document_cache.size() == 1
    assert calls == ["parse", "validate_document"]


async def test_the_limits_still_refuse_a_cached_document_every_time() -> None:
    for _ in range(3):
        result = await schema.execute(ALIASES)
        assert result.errors is not None
        assert "aliases" in result.errors[0].message.lower()
    assert document_cache.size() == 1


async def test_documents_with_string_literals_or_of_any_size_are_not_kept() -> None:
    await schema.execute('query { __type(name: "Query") { name } }')
    await schema.execute("query Big { __typename }" + " " * document_cache.MAX_QUERY_CHARS)
    assert document_cache.size() == 0


async def test_a_syntax_error_is_answered_as_usual_and_not_kept() -> None:
    result = await schema.execute("query { __typename ")
    assert result.errors is not None and "Syntax Error" in result.errors[0].message
    assert document_cache.size() == 0


async def test_the_cache_keeps_at_most_its_size() -> None:
    for n in range(document_cache.MAX_ENTRIES + 10):
        await schema.execute(f"query Q{n} {{ __typename }}")
    assert document_cache.size() == document_cache.MAX_ENTRIES
