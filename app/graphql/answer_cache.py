"""Warm answers: a picker page asked again is answered from the answer kept the first time, not resolved
field by field again — as long as nothing it was made of has changed.

A frontend asks the same few documents over and over (the picker's first page, the next page, a
search). Resolving 30 repositories' fields costs as much as the rest of a warm request together
(Strawberry's execution is the floor of a bare app serving the same data). So the data of an answer is
kept, per caller, document, operation and variables, with what it was made of:

- the integration, as it was loaded (compared whole: any change of the record, a renewed token, a
  status derived from the clock, makes it a miss);
- each repository listing it was cut from: its key, ``generation`` and ``fetchedAt`` (another replica's
  revalidation moves them), and that it is still fresh (an expired one must be revalidated by the
  normal path).

On every request the kept answer is checked against MongoDB first — the integration and the listing
heads, read at once, as a normal warm request reads them — so every replica answers what the database
says; this is a cache of work, never of state.

Only documents that read nothing else are kept (``CACHEABLE``): ``integration(id)`` with its own fields
and ``repositories`` with the connection, repository and notice fields. A field outside that list —
branches, ``node``, ``integrations``, mutations, anything added later — makes the document pass by.
An answer that came from the host's own first page, used ``refresh``, or carries an error is not kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    parse,
)
from graphql.error import GraphQLError

from app.composition import Services
from app.domain.models import Integration

MAX_ANSWERS = 256
MAX_DOCUMENT_CHARS = 4096
# What a kept answer may select: the fields whose values come only from the integration record and
# its repository listings (type name → field names).
CACHEABLE: Mapping[str, frozenset[str]] = {
    "Query": frozenset({"integration"}),
    "Integration": frozenset(
        {
            "id",
            "provider",
            "host",
            "authMethod",
            "tokenKind",
            "account",
            "repositoryAccess",
            "grantedPermissions",
            "unverifiedPermissions",
            "status",
            "expiresAt",
            "createdAt",
            "lastVerifiedAt",
            "reconnectBy",
            "manageAccessUrl",
            "repositories",
        }
    ),
    "GitAccount": frozenset({"login", "name", "avatarUrl", "url", "bot"}),
    "RepositoryConnection": frozenset(
        {"edges", "pageInfo", "totalCount", "repositoryAccess", "manageAccessUrl", "fetchedAt", "notices"}
    ),
    "RepositoryEdge": frozenset({"cursor", "node"}),
    "Repository": frozenset(
        {
            "id",
            "name",
            "fullName",
            "owner",
            "private",
            "archived",
            "fork",
            "defaultBranch",
            "webUrl",
            "cloneUrl",
            "pushedAt",
            "viewerCanAdminister",
        }
    ),
    "PageInfo": frozenset({"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}),
    "AccessNotice": frozenset({"reason", "message", "url", "organizations"}),
}


@dataclass(frozen=True)
class ListingUsed:
    """A repository listing an answer was cut from, as it was then."""

    integration_id: str
    key: str
    generation: str
    fetched_at: datetime


@dataclass
class AnswerRecorder:
    """Filled while a document is resolved: what its answer was made of, or that it cannot be kept."""

    integrations: dict[str, Integration] = field(default_factory=dict)
    listings: set[ListingUsed] = field(default_factory=set)
    keepable: bool = True

    def used_integration(self, integration: Integration) -> None:
        self.integrations[integration.id] = integration

    def used_listing(self, listing: ListingUsed | None) -> None:
        """``None``: the answer came from elsewhere (the host's first page, a refresh): not kept."""
        if listing is None:
            self.keepable = False
        else:
            self.listings.add(listing)


@dataclass(frozen=True)
class KeptAnswer:
    data: dict[str, Any]
    integrations: tuple[Integration, ...]
    listings: tuple[ListingUsed, ...]

    def providers(self) -> list[str]:
        """The provider of each listing used (one entry per listing)."""
        by_id = {i.id: i.provider.value for i in self.integrations}
        return [by_id.get(used.integration_id, "unknown") for used in self.listings]

    async def still_true(self, services: Services, owner: str) -> bool:
        """Whether the integration and every listing are exactly as they were, and still fresh."""
        ids = [i.id for i in self.integrations]
        reading = asyncio.gather(*(services.listings.load(u.integration_id, u.key) for u in self.listings))
        found = await services.integrations.get_many(owner, ids)
        heads = await reading
        if any(found.get(integration.id) != integration for integration in self.integrations):
            return False
        for used, stored in zip(self.listings, heads, strict=True):
            if stored is None or (stored.generation, stored.fetched_at) != (used.generation, used.fetched_at):
                return False
            if not services.catalog.is_fresh(stored):
                return False
        return True


class AnswerCache:
    """Kept answers (at most ``MAX_ANSWERS``, least recently used out first) and which documents qualify."""

    def __init__(self, schema: GraphQLSchema, *, size: int = MAX_ANSWERS) -> None:
        self._schema = schema
        self._size = size
        self._answers: OrderedDict[str, KeptAnswer] = OrderedDict()
        self._documents: dict[tuple[str, str | None], bool] = {}
        self.hits = 0
        self.misses = 0

    def key(self, caller: str, query: str | None, operation: str | None, variables: Any) -> str | None:
        """The key of an answer to this request, or None when such an answer is never kept."""
        if query is None or len(query) > MAX_DOCUMENT_CHARS or not self._qualifies(query, operation):
            return None
        try:
            values = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return None
        material = json.dumps([caller, query, operation, values])
        return hashlib.sha256(material.encode()).hexdigest()

    def get(self, key: str) -> KeptAnswer | None:
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def keep(self, key: str, data: dict[str, Any], recorder: AnswerRecorder) -> None:
        if not recorder.keepable or not recorder.integrations:
            return
        self._answers[key] = KeptAnswer(data, tuple(recorder.integrations.values()), tuple(recorder.listings))
        self._answers.move_to_end(key)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)

    def forget(self, key: str) -> None:
        self._answers.pop(key, None)

    def _qualifies(self, query: str, operation: str | None) -> bool:
        known = self._documents.get((query, operation))
        if known is None:
            known = _selects_only_cacheable(self._schema, query, operation)
            if len(self._documents) > 4 * MAX_ANSWERS:
                self._documents.clear()
            self._documents[(query, operation)] = known
        return known


def _selects_only_cacheable(schema: GraphQLSchema, query: str, operation_name: str | None) -> bool:
    try:
        document = parse(query)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [o for o in operations if operation_name is None or (o.name and o.name.value == operation_name)]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY:
        return False
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return _allowed(schema, document, fragments, "Query", chosen[0].selection_set, set())


def _allowed(
    schema: GraphQLSchema,
    document: DocumentNode,
    fragments: dict[str, FragmentDefinitionNode],
    type_name: str,
    selections: SelectionSetNode | None,
    seen: set[str],
) -> bool:
    if selections is None:
        return True
    allowed = CACHEABLE.get(type_name)
    parent = schema.get_type(type_name)
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name == "__typename":
                continue
            if allowed is None or name not in allowed or parent is None:
                return False
            definition = getattr(parent, "fields", {}).get(name)
            if definition is None:
                return False
            child = get_named_type(definition.type).name
            if not _allowed(schema, document, fragments, child, selection.selection_set, seen):
                return False
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else type_name
            if condition != type_name or not _allowed(
                schema, document, fragments, type_name, selection.selection_set, seen
            ):
                return False
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen or fragment.type_condition.name.value != type_name:
                return False
            if not _allowed(schema, document, fragments, type_name, fragment.selection_set, {*seen, name}):
                return False
    return True


__all__ = ["AnswerCache", "AnswerRecorder", "KeptAnswer", "ListingUsed"]
