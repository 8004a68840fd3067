"""The upstream cost estimate (app/graphql/cost.py), on the service's schema and on the shapes it will grow into.

Budget for a caller with N integrations: MAX_UPSTREAM_WORK_PER_REQUEST (60) + N. The reproductions of
issue 11 must be over it; what a frontend normally asks (examples/operations.graphql) must fit it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSchema, OperationDefinitionNode, build_schema, parse, validate

from app.graphql.cost import HOST_CALLS, QUERY_FIELDS, TOKEN_CHECK, UNKNOWN_LIST_SIZE, Work, estimate
from app.graphql.schema import schema as service_schema
from app.graphql.types.node import to_global_id
from app.settings.model import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA: GraphQLSchema = service_schema._schema
DEFAULTS = Settings()
INTEGRATION = to_global_id("Integration", "64b7f0c2a1b2c3d4e5f60718")
REPOSITORY = to_global_id("Repository", "64b7f0c2a1b2c3d4e5f60718:1234")


def budget(integrations: int) -> int:
    return DEFAULTS.max_upstream_work_per_request + integrations


def work(
    query: str,
    integrations: int = 1,
    variables: dict[str, Any] | None = None,
    *,
    schema: GraphQLSchema = SCHEMA,
    operation: str | None = None,
) -> Work:
    document = parse(query)
    assert not validate(schema, document), validate(schema, document)  # what the service would execute
    found = estimate(schema, document, operation, variables, integrations)
    assert found is not None
    return found


def cost(query: str, integrations: int = 1, variables: dict[str, Any] | None = None, **kwargs: Any) -> int:
    return work(query, integrations, variables, **kwargs).total(integrations)


# --- what the issue reproduced ------------------------------------------------------------------------


def test_ten_aliased_searches_over_twelve_integrations_are_over_budget() -> None:
    searches = " ".join(f's{i}: repositories(search: "term{i}") {{ totalCount }}' for i in range(10))
    query = f"{{ integrations {{ {searches} }} }}"

    assert cost(query, 12) == 120 > budget(12)


def test_branches_under_a_hundred_repositories_are_over_budget() -> None:
    query = f"""{{ integration(id: "{INTEGRATION}") {{ repositories(first: 100) {{
        edges {{ node {{ branches {{ edges {{ node {{ name }} }} }} }} }} }} }} }}"""

    assert cost(query) == 1 + 100 > budget(1)


def test_aliased_pages_of_repositories_with_branches_multiply() -> None:
    pages = " ".join(
        f'p{i}: repositories(first: 10, after: "c{i}") {{ edges {{ node {{ branches {{ edges {{ node {{ name }} }} }} }} }} }}'
        for i in range(8)
    )
    query = f'{{ integration(id: "{INTEGRATION}") {{ {pages} }} }}'

    found = work(query)
    assert found.branch_reads == 80
    assert found.total(1) == 1 + 80 > budget(1)  # the eight pages share one listing


def test_thirty_aliased_token_connects_are_over_budget() -> None:
    connects = " ".join(
        f'c{i}: connectGitToken(input: {{provider: GITLAB, token: "t{i}"}}) {{ __typename }}'
        for i in range(30)
    )

    assert cost(f"mutation {{ {connects} }}", 0) == 30 * TOKEN_CHECK > budget(0)


# --- what a frontend asks ---------------------------------------------------------------------------


@pytest.mark.parametrize("integrations", [1, 12, DEFAULTS.max_integrations_per_user])
def test_the_pickers_overview_over_every_integration_fits(integrations: int) -> None:
    query = """{ integrations { id repositories(first: 5) { totalCount edges { node { name } } } } }"""

    assert cost(query, integrations) == integrations <= budget(integrations)


def test_a_search_a_page_and_the_branches_of_one_repository_fit() -> None:
    search = f'{{ integration(id: "{INTEGRATION}") {{ repositories(search: "api", first: 30) {{ totalCount }} }} }}'
    page = (
        f'{{ integration(id: "{INTEGRATION}") {{ repositories(first: 30, after: "x") {{ totalCount }} }} }}'
    )
    branches = f'{{ node(id: "{REPOSITORY}") {{ ... on Repository {{ branches(first: 100) {{ edges {{ node {{ name }} }} }} }} }} }}'

    assert cost(search, 50) == 1
    assert cost(page, 50) == 1
    assert cost(branches, 50) == 2  # the lookup in the listing, then one read


def test_every_example_operation_fits_for_a_user_with_the_most_integrations() -> None:
    document = parse((ROOT / "examples" / "operations.graphql").read_text())
    integrations = DEFAULTS.max_integrations_per_user
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            assert definition.name is not None
            name = definition.name.value
            found = estimate(SCHEMA, document, name, {"id": REPOSITORY}, integrations)
            assert found is not None, name
            assert found.total(integrations) <= budget(integrations), name


# --- how it reads a document ------------------------------------------------------------------------


def test_searches_that_are_the_same_share_one_listing_and_blank_is_no_search() -> None:
    query = """{ integrations {
        a: repositories(search: "api") { totalCount } b: repositories(search: " api ") { totalCount }
        c: repositories(search: "  ") { totalCount } d: repositories { totalCount } } }"""

    assert work(query, 5).listings == {("api", False): 10, (None, False): 10}
    assert cost(query, 5) == 10  # five integrations, two distinct listings each


def test_integrations_reached_twice_are_listed_once_each() -> None:
    query = f"""{{ a: integrations {{ repositories {{ totalCount }} }} b: integrations {{ repositories {{ totalCount }} }}
        c: integration(id: "{INTEGRATION}") {{ repositories {{ totalCount }} }} }}"""

    assert cost(query, 3) == 3


def test_refresh_is_a_listing_of_its_own() -> None:
    query = f"""{{ integration(id: "{INTEGRATION}") {{ a: repositories {{ totalCount }}
        b: repositories(refresh: true) {{ totalCount }} }} }}"""

    assert cost(query) == 2


def test_fragments_and_variables_are_followed() -> None:
    query = """query Q($first: Int, $search: String = "web", $id: ID!) {
        integration(id: $id) { ...Listing ... on Integration { other: repositories(search: $search) { totalCount } } } }
      fragment Listing on Integration { repositories(first: $first) { edges { node { ...Branches } } } }
      fragment Branches on Repository { branches { edges { node { name } } } }"""

    assert cost(query, variables={"id": INTEGRATION, "first": 7}) == 2 + 7
    assert cost(query, variables={"id": INTEGRATION}) == 2 + 30  # `first` left out: the default
    assert cost(query, variables={"id": INTEGRATION, "first": None, "search": "web"}) == 2 + 30


def test_a_field_selected_twice_under_one_name_counts_once() -> None:
    query = f"""{{ integration(id: "{INTEGRATION}") {{
        repositories(first: 3) {{ edges {{ node {{ branches {{ edges {{ node {{ name }} }} }} }} }} }}
        ... on Integration {{ repositories(first: 3) {{ edges {{ node {{ branches {{ edges {{ node {{ commitSha }} }} }} }} }} }} }} }} }}"""

    assert cost(query) == 1 + 3


def test_skip_and_include_are_honoured() -> None:
    query = """query Q($more: Boolean!) { integrations {
        repositories { totalCount } extra: repositories(search: "x") @include(if: $more) { totalCount }
        never: repositories(search: "y") @skip(if: true) { totalCount } } }"""

    assert cost(query, 4, {"more": False}) == 4
    assert cost(query, 4, {"more": True}) == 8


def test_node_counts_the_most_expensive_type_it_can_be_and_a_listing_for_a_repository_id() -> None:
    query = """query Q($id: ID!) { node(id: $id) {
        ... on Integration { repositories(first: 20) { edges { node { branches { edges { node { name } } } } } } }
        ... on Repository { branches { edges { node { name } } } } } }"""

    assert cost(query, 5, {"id": INTEGRATION}) == 1 + 20
    assert cost(query, 5, {"id": REPOSITORY}) == 1 + 1 + 20  # the lookup itself, then the rest
    assert cost(query, 5, {"id": "not-an-id"}) == 1 + 20


def test_a_mutations_result_reaching_repositories_counts_them_too() -> None:
    query = """mutation { connectGitToken(input: {provider: GITHUB, token: "t"}) {
        ... on Integration { repositories(first: 10) { edges { node { branches { edges { node { name } } } } } } } } }"""

    assert cost(query, 0) == TOKEN_CHECK + 1 + 10


def test_a_document_that_reaches_no_host_is_empty_whatever_the_caller_has() -> None:
    query = """{ integrations { id account { login } grantedPermissions } }"""

    assert work(query, 0).empty
    assert not work(
        "{ integrations { repositories { totalCount } } }", 0
    ).empty  # reaches one when there are any


def test_an_unknown_operation_or_a_subscription_is_left_to_execution() -> None:
    assert estimate(SCHEMA, parse("query A { integrations { id } }"), "B", None, 1) is None


# --- what must stay true as the schema grows ---------------------------------------------------------


def test_every_root_field_says_what_it_costs() -> None:
    """A new query or mutation must say what it asks of the hosts (app/graphql/cost.py, HOST_CALLS)."""
    assert SCHEMA.query_type is not None and SCHEMA.mutation_type is not None
    assert set(SCHEMA.query_type.fields) <= set(QUERY_FIELDS), "Query fields missing from QUERY_FIELDS"
    assert set(SCHEMA.mutation_type.fields) <= set(HOST_CALLS), "Mutation fields missing from HOST_CALLS"


GROWN = build_schema(
    """
    interface Node { id: ID! }
    type Query { integrations: [Integration!]! integration(id: ID!): Integration node(id: ID!): Node
                 repositoryLinks: [RepositoryLink!]! }
    type Integration implements Node { id: ID!
      repositories(search: String, first: Int = 30, after: String, refresh: Boolean = false): RepositoryConnection! }
    type RepositoryConnection { edges: [RepositoryEdge!]! nodes: [Repository!]! totalCount: Int! }
    type RepositoryEdge { cursor: String! node: Repository! }
    type Repository implements Node { id: ID! name: String!
      branches(search: String, first: Int = 30, after: String): BranchConnection! }
    type BranchConnection { edges: [BranchEdge!]! }
    type BranchEdge { node: Branch! }
    type Branch { name: String! }
    type RepositoryLink implements Node { id: ID! repository: Repository! }
    """
)


def test_branches_as_a_connection_count_one_read_per_repository_whatever_their_arguments() -> None:
    query = """{ integrations { repositories(first: 4) { nodes {
        a: branches(search: "rel", first: 100) { edges { node { name } } }
        b: branches(after: "x") { edges { node { name } } } } } } }"""

    assert cost(query, 2, schema=GROWN) == 2 + 2 * 4 * 2


def test_a_list_of_unknown_size_above_a_host_call_counts_as_large() -> None:
    query = """{ repositoryLinks { repository { branches { edges { node { name } } } } } }"""
    cheap = """{ repositoryLinks { id } }"""

    assert cost(query, 1, schema=GROWN) == UNKNOWN_LIST_SIZE
    assert work(cheap, 1, schema=GROWN).empty


# --- deploying from a repository -------------------------------------------------------------------


def test_linking_thirteen_repositories_in_one_request_is_over_budget_one_fits() -> None:
    links = " ".join(
        f'l{i}: linkRepository(input: {{repositoryId: "{REPOSITORY}"}}) {{ __typename }}' for i in range(13)
    )

    assert cost(f"mutation {{ {links} }}", 0) == 13 * HOST_CALLS["linkRepository"] > budget(0)
    assert cost(
        f'mutation {{ linkRepository(input: {{repositoryId: "{REPOSITORY}"}}) {{ __typename }} }}', 0
    ) <= budget(0)


def test_the_deployers_reads_cost_nothing_but_branches_of_every_linked_repository_are_bounded() -> None:
    events = "{ repositoryLinks { id status events(first: 100) { edges { node { after } } } } }"
    branches = "{ repositoryLinks { repository { branches { edges { node { name } } } } } }"

    assert cost(events, 50) == 0
    assert cost(branches, 1) == UNKNOWN_LIST_SIZE > budget(1)  # however many links there are
