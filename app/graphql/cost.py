"""The upstream cost of a GraphQL operation, estimated from its document before anything runs.

One request could otherwise fan out without bound: ten aliased searches over twelve GitLab
integrations made 360 requests to GitLab, and ``branches`` under ``repositories(first: 100)`` with
aliases made 5,560 (issue 11). The design's rule: a request may start a bounded amount of work at the
hosts, counted in *listings* and *branch reads*, not pages (a listing's pages are bounded by the
listing itself):

- each ``repositories`` selection is one listing per integration it can reach; selections with the
  same ``search`` and ``refresh`` share their listing (the per-request DataLoader does), so what is
  counted per distinct listing is ``min(integrations reached, integrations the caller has)``;
- each ``branches`` selection is one read per repository it can reach: the ``first`` of the enclosing
  ``repositories`` (or 1 under ``node(id)``), whatever arguments ``branches`` itself takes;
- ``node(id)`` with a repository's id looks the repository up in its integration's listing: one
  listing; a mutation that calls a host costs what ``HOST_CALLS`` says (a token check walks pages
  and probes permissions: ``TOKEN_CHECK``);
- aliases multiply (each alias is its own field), fragments and variables are followed, ``@skip`` /
  ``@include`` honoured, and where a field can be several types (``node``, a mutation's result union)
  the most expensive one counts.

The budget is ``MAX_UPSTREAM_WORK_PER_REQUEST`` plus one listing per integration of the caller, so the
picker's overview over every integration always fits. ``app.graphql.cost_limit`` applies it.

Extending it: a field whose resolver reaches a host must be described here before it ships — a
mutation in ``HOST_CALLS`` (``tests/unit/test_query_cost.py`` fails for a root field that is not), a
field that reads listings or branches like the ones above in ``LISTING_FIELDS`` /
``BRANCH_READ_FIELDS``, a list of objects whose size is not its ``first`` in ``LIST_SIZES``. A list of
unknown size multiplies what is below it by ``UNKNOWN_LIST_SIZE``: expensive, never unbounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
)
from graphql.utilities import type_from_ast, value_from_ast

from app.graphql.types.node import from_global_id

# A token check (connect, update, verify, a login's completion): the host is asked who the token is,
# then up to ten pages of repositories or installations are walked and a fine-grained token's
# permissions probed — about five listings' worth of requests.
TOKEN_CHECK = 5
LINK_SETUP = 5
# Mutations and what each costs at the hosts. Every field of Mutation must be here (0: no host call).
HOST_CALLS: dict[str, int] = {
    "connectGitToken": TOKEN_CHECK,
    "updateGitToken": TOKEN_CHECK,
    "verifyGitIntegration": TOKEN_CHECK,
    "completeGitOAuth": TOKEN_CHECK,
    "disconnectGitIntegration": 1,  # a login is revoked at its host
    "connectGitOAuth": 0,
    # The repository is read, the hook made or updated (adopted by its URL when needed), the app's
    # installation looked up, the deploy key checked or made with the host's SSH keys: about five.
    "linkRepository": LINK_SETUP,
    "unlinkRepository": 2,  # the hook, then the key or token
    "setCommitStatus": 1,
    "cloneCredentials": 1,  # an installation token is minted (a deploy key or token: nothing)
}
# Mutations that may add an integration the rest of the operation can then reach.
CREATES_INTEGRATION = frozenset({"connectGitToken", "completeGitOAuth"})
# Query fields and what they cost by themselves (their selections are counted as they go).
QUERY_FIELDS: dict[str, int] = {"integrations": 0, "integration": 0, "node": 0, "repositoryLinks": 0}
LISTING_FIELDS = frozenset({("Integration", "repositories")})
BRANCH_READ_FIELDS = frozenset({("Repository", "branches")})
CALLERS_INTEGRATIONS = -1  # a list size: the caller's count of integrations
LIST_SIZES: dict[tuple[str, str], int] = {("Query", "integrations"): CALLERS_INTEGRATIONS}
UNKNOWN_LIST_SIZE = 100
MAX_FIRST = 100


@dataclass
class Work:
    """What an operation may ask of the hosts."""

    # Per distinct listing (search, refresh): how many integrations' listings the selections reach.
    listings: dict[tuple[str | None, bool], int] = field(default_factory=dict)
    branch_reads: int = 0
    host_calls: int = 0
    new_integrations: int = 0  # connected by the operation itself

    def add(self, other: Work) -> None:
        for key, count in other.listings.items():
            self.listings[key] = self.listings.get(key, 0) + count
        self.branch_reads += other.branch_reads
        self.host_calls += other.host_calls
        self.new_integrations += other.new_integrations

    @property
    def empty(self) -> bool:
        """Nothing in the operation can reach a host, however many integrations the caller has."""
        return not self.listings and not self.branch_reads and not self.host_calls

    def total(self, integrations: int) -> int:
        """Listings, branch reads and host calls, for a caller with ``integrations`` integrations."""
        reachable = integrations + self.new_integrations
        listings = sum(min(count, reachable) for count in self.listings.values())
        return listings + self.branch_reads + self.host_calls


def estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    integrations: int,
) -> Work | None:
    """The work of the operation ``operation_name`` for a caller with ``integrations`` integrations.

    None when the operation cannot run at all (none by that name, or variables that do not coerce):
    execution then refuses it without calling anything.
    """
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    if root is None:
        return None
    walk = _Walk(schema, document, operation, variables or {}, integrations)
    return walk.selections(root, operation.selection_set, 1)


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        integrations: int,
    ) -> None:
        self.schema = schema
        self.integrations = integrations
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.variables = dict(variables)
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and definition.default_value is not None:
                declared = type_from_ast(schema, definition.type)
                if declared is not None:
                    self.variables[name] = value_from_ast(definition.default_value, declared)  # type: ignore[arg-type]

    def selections(self, parent: Any, selection_set: SelectionSetNode | None, count: int) -> Work:
        """The work below ``count`` objects of type ``parent`` selecting ``selection_set``."""
        work = Work()
        if selection_set is None:
            return work
        if isinstance(parent, GraphQLInterfaceType | GraphQLUnionType):
            # The object is one of the possible types: the most expensive one counts.
            options = [
                self.selections(t, selection_set, count) for t in self.schema.get_possible_types(parent)
            ]
            if options:
                work.add(max(options, key=lambda w: w.total(self.integrations)))
            return work
        if not isinstance(parent, GraphQLObjectType):
            return work
        # Fields with one response key are one field to GraphQL (validation made their arguments
        # equal): counted once, with their selections merged. Aliases are distinct keys.
        merged: dict[str, list[FieldNode]] = {}
        for node in self._fields(parent, selection_set, set()):
            merged.setdefault((node.alias or node.name).value, []).append(node)
        for nodes in merged.values():
            definition = parent.fields.get(nodes[0].name.value)
            if definition is not None:
                work.add(self.field(parent.name, nodes, definition, count))
        return work

    def field(self, parent: str, nodes: list[FieldNode], definition: GraphQLField, count: int) -> Work:
        node = nodes[0]
        name = node.name.value
        work = Work()
        below = count
        if parent in ("Query", "Mutation"):
            work.host_calls += HOST_CALLS.get(name, 0) if parent == "Mutation" else QUERY_FIELDS.get(name, 0)
            work.new_integrations += parent == "Mutation" and name in CREATES_INTEGRATION
            if parent == "Query" and name == "node":
                work.add(self._node_lookup(node, definition))
        if (parent, name) in LISTING_FIELDS:
            key = (
                _search_key(self.argument(node, definition, "search")),
                bool(self.argument(node, definition, "refresh")),
            )
            work.listings[key] = work.listings.get(key, 0) + count
        if (parent, name) in BRANCH_READ_FIELDS:
            work.branch_reads += count
        first = self.argument(node, definition, "first")
        size = LIST_SIZES.get((parent, name))
        if "first" in definition.args:
            below = count * (max(1, min(first, MAX_FIRST)) if isinstance(first, int) else MAX_FIRST)
        elif size is not None:
            below = count * (self.integrations if size == CALLERS_INTEGRATIONS else size)
        elif _is_list(definition) and not parent.endswith("Connection"):
            below = count * UNKNOWN_LIST_SIZE  # a connection's edges are already its `first`
        selections = [s for n in nodes if n.selection_set for s in n.selection_set.selections]
        below_set = SelectionSetNode(selections=tuple(selections)) if selections else None
        work.add(self.selections(get_named_type(definition.type), below_set, below))
        return work

    def argument(self, node: FieldNode, definition: GraphQLField, name: str) -> Any:
        """The argument's value as execution will see it (variables and defaults applied)."""
        declared = definition.args.get(name)
        if declared is None:
            return None
        default = None if declared.default_value is Undefined else declared.default_value
        for argument in node.arguments or ():
            if argument.name.value == name:
                value = value_from_ast(argument.value, declared.type, self.variables)
                # A variable left out, or null: the resolvers of this schema then use the default.
                return default if value is Undefined or value is None else value
        return default

    def _node_lookup(self, node: FieldNode, definition: GraphQLField) -> Work:
        # A repository's id is found in its integration's (cached) listing: one listing.
        decoded = from_global_id(str(self.argument(node, definition, "id") or ""))
        work = Work()
        if decoded is not None and decoded[0] == "Repository":
            work.listings[(None, False)] = 1
        return work

    def _fields(self, parent: Any, selection_set: SelectionSetNode, seen: set[str]) -> Iterable[FieldNode]:
        """The fields selected on an object of type ``parent``, fragments followed, skipped ones left out."""
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                if self._applies(
                    selection.type_condition.name.value if selection.type_condition else None, parent
                ):
                    yield from self._fields(parent, selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None or fragment.name.value in seen:
                    continue  # validation refuses unknown and cyclic fragments anyway
                if self._applies(fragment.type_condition.name.value, parent):
                    yield from self._fields(parent, fragment.selection_set, seen | {fragment.name.value})

    def _applies(self, condition: str | None, parent: Any) -> bool:
        if condition is None or condition == parent.name:
            return True
        abstract = self.schema.get_type(condition)
        return isinstance(abstract, GraphQLInterfaceType | GraphQLUnionType) and self.schema.is_sub_type(
            abstract, parent
        )

    def _included(self, selection: Any) -> bool:
        """False when ``@skip(if: true)`` or ``@include(if: false)`` leaves the selection out."""
        for directive in selection.directives or ():
            name = directive.name.value
            condition = next((a.value for a in directive.arguments or () if a.name.value == "if"), None)
            if name not in ("skip", "include") or condition is None:
                continue
            value = value_from_ast(condition, GraphQLNonNull(GraphQLBoolean), self.variables)
            if value is (name == "skip"):
                return False
        return True


def _is_list(definition: GraphQLField) -> bool:
    return isinstance(get_nullable_type(definition.type), GraphQLList)


def _search_key(value: Any) -> str | None:
    # As app.graphql.types.connection.normalise_search sees it: blank is no search.
    text = value.strip() if isinstance(value, str) else None
    return text or None
