from __future__ import annotations

from pathlib import Path

from app.graphql.schema import schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_up_to_date() -> None:
    """Run `make export-schema` when this fails: other programs read schema.graphql."""
    exported = schema.as_str().rstrip("\n") + "\n"
    assert (ROOT / "schema.graphql").read_text() == exported


def test_contract_names_exist() -> None:
    sdl = schema.as_str()
    for name in (
        "integrations: [Integration!]!",
        "integration(id: ID!): Integration\n",
        "node(id: ID!): Node",
        "connectGitToken(input: ConnectGitTokenInput!): ConnectGitTokenResult!",
        "updateGitToken(input: UpdateGitTokenInput!): UpdateGitTokenResult!",
        "verifyGitIntegration(input: VerifyGitIntegrationInput!): VerifyGitIntegrationResult!",
        "disconnectGitIntegration(input: DisconnectGitIntegrationInput!): DisconnectGitIntegrationResult!",
        "enum ErrorCode",
        "code: ErrorCode!",
        "enum TokenKind",
        "type Integration implements Node",
    ):
        assert name in sdl, name
