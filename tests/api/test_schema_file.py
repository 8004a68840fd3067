from __future__ import annotations

from pathlib import Path

from app.graphql.schema import schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_up_to_date() -> None:
    """Run `make export-schema` when this fails: other programs read schema.graphql."""
    exported = schema.as_str().rstrip("\n") + "\n"
    assert (ROOT / "schema.graphql").read_text() == exported


def signature(type_name: str, field_name: str) -> str:
    """``field(arg: Type, ...): Type`` as the served schema has it (descriptions left out)."""
    field = schema._schema.get_type(type_name).fields[field_name]  # type: ignore[union-attr]
    arguments = ", ".join(f"{name}: {argument.type}" for name, argument in field.args.items())
    return f"{field_name}({arguments}): {field.type}" if arguments else f"{field_name}: {field.type}"


def test_contract_names_exist() -> None:
    for type_name, expected in (
        ("Query", "integrations: [Integration!]!"),
        ("Query", "integration(id: ID!): Integration"),
        ("Query", "node(id: ID!): Node"),
        ("Mutation", "connectGitToken(input: ConnectGitTokenInput!): ConnectGitTokenResult!"),
        ("Mutation", "updateGitToken(input: UpdateGitTokenInput!): UpdateGitTokenResult!"),
        ("Mutation", "verifyGitIntegration(input: VerifyGitIntegrationInput!): VerifyGitIntegrationResult!"),
        (
            "Mutation",
            "disconnectGitIntegration(input: DisconnectGitIntegrationInput!): DisconnectGitIntegrationResult!",
        ),
        ("Error", "code: ErrorCode!"),
    ):
        assert signature(type_name, expected.split("(")[0].split(":")[0]) == expected
    sdl = schema.as_str()
    for name in ("enum TokenKind", "enum ErrorCode", "type Integration implements Node"):
        assert name in sdl, name
