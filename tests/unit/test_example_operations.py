"""examples/operations.graphql: valid against schema.graphql, and covering everything a frontend calls.

schema.graphql itself is checked against the code by tests/api/test_schema_file.py, so operations
that validate here run against the service as it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    get_named_type,
    parse,
    validate,
    visit,
)

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = ROOT / "examples" / "operations.graphql"
# What the design names as the contract beyond the root fields: the picker's arguments and branches.
CONTRACT_FIELDS = {("Integration", "repositories"), ("Repository", "branches"), ("Query", "node")}
PICKER_ARGUMENTS = {"search", "first", "after", "refresh"}


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema((ROOT / "schema.graphql").read_text())


@pytest.fixture(scope="module")
def document() -> DocumentNode:
    return parse(OPERATIONS.read_text())


def operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def test_every_operation_is_valid_against_the_schema(schema: GraphQLSchema, document: DocumentNode) -> None:
    errors = validate(schema, document)
    assert not errors, "\n".join(str(e) for e in errors)


def test_every_operation_has_a_name(document: DocumentNode) -> None:
    assert all(op.name is not None for op in operations(document))


def test_every_query_and_mutation_field_has_an_example(schema: GraphQLSchema, document: DocumentNode) -> None:
    assert schema.query_type is not None and schema.mutation_type is not None
    used = fields_used(schema, document)
    for root in (schema.query_type, schema.mutation_type):
        missing = {name for name in root.fields if (root.name, name) not in used}
        assert not missing, f"{root.name} fields without an example: {sorted(missing)}"
    assert used >= CONTRACT_FIELDS


def test_the_picker_example_passes_every_argument_as_a_variable(document: DocumentNode) -> None:
    [picker] = [op for op in operations(document) if op.name and op.name.value == "RepositoryPicker"]
    found: dict[str, set[str]] = {}

    class Arguments(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            if node.name.value == "repositories":
                found["repositories"] = {a.name.value for a in node.arguments or ()}

    visit(picker, Arguments())
    assert found["repositories"] == PICKER_ARGUMENTS
    assert {v.variable.name.value for v in picker.variable_definitions or ()} >= {"search", "first", "after"}


def test_every_mutation_example_handles_every_member_of_its_result_union(
    schema: GraphQLSchema, document: DocumentNode
) -> None:
    assert schema.mutation_type is not None
    named = fragments(document)
    for op in operations(document):
        if op.operation is not OperationType.MUTATION:
            continue
        for selection in op.selection_set.selections:
            assert isinstance(selection, FieldNode)
            result = get_named_type(schema.mutation_type.fields[selection.name.value].type)
            assert isinstance(result, GraphQLUnionType)
            assert selection.selection_set is not None
            handled = type_conditions(selection.selection_set, named)
            for member in result.types:
                covered = member.name in handled or any(i.name in handled for i in member.interfaces)
                assert covered, f"{op.name.value if op.name else '?'}: {member.name} is not handled"


def fields_used(schema: GraphQLSchema, document: DocumentNode) -> set[tuple[str, str]]:
    """(parent type, field) of every field selected anywhere in the document."""
    type_info = TypeInfo(schema)
    used: set[tuple[str, str]] = set()

    class Fields(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            parent = type_info.get_parent_type()
            if parent is not None:
                used.add((parent.name, node.name.value))

    visit(document, TypeInfoVisitor(type_info, Fields()))
    return used


def type_conditions(selection_set: SelectionSetNode, named: dict[str, FragmentDefinitionNode]) -> set[str]:
    """The types a selection set has fragments for, through named fragments too."""
    found: set[str] = set()
    for selection in selection_set.selections:
        if isinstance(selection, InlineFragmentNode) and selection.type_condition is not None:
            found.add(selection.type_condition.name.value)
            found |= type_conditions(selection.selection_set, named)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = named[selection.name.value]
            found.add(fragment.type_condition.name.value)
            found |= type_conditions(fragment.selection_set, named)
    return found
