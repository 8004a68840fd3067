"""The GraphQL layer end to end through the ASGI app (real storage, no mocks inside the service)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.composition import Seams
from app.graphql.types.node import to_global_id
from app.settings.model import Settings
from app.storage.integrations import IntegrationRepository
from tests.conftest import GraphQLTestClient, running_app


async def test_integrations_of_a_new_user_is_empty(client: GraphQLTestClient) -> None:
    body = await client.execute("{ integrations { id } }")
    assert body == {"data": {"integrations": []}}


async def test_without_a_token_the_answer_is_unauthenticated(client: GraphQLTestClient) -> None:
    body = await client.execute("{ integrations { id } }", user=None)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Token abc"])
async def test_malformed_tokens_are_unauthenticated(client: GraphQLTestClient, header: str) -> None:
    body = await client.execute("{ integrations { id } }", user=None, headers={"Authorization": header})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_unknown_integration_is_null_like_an_unknown_node(client: GraphQLTestClient) -> None:
    gid = to_global_id("Integration", "0123456789abcdef01234567")
    body = await client.execute("query($id: ID!) { integration(id: $id) { id } }", {"id": gid})
    assert body == {"data": {"integration": None}}
    body = await client.execute("query($id: ID!) { node(id: $id) { id } }", {"id": gid})
    assert body == {"data": {"node": None}}


@pytest.mark.parametrize("bad_id", ["", "!!!", "SW50ZWdyYXRpb246", to_global_id("Repository", "x")])
async def test_garbage_ids_are_null_without_an_internal_error(client: GraphQLTestClient, bad_id: str) -> None:
    body = await client.execute(
        "query($id: ID!) { integration(id: $id) { id } other: integrations { id } }", {"id": bad_id}
    )
    assert body == {"data": {"integration": None, "other": []}}  # the rest of the answer stands


async def test_deep_queries_are_refused(client: GraphQLTestClient) -> None:
    deep = "{ integrations { " + "account { " * 1 + "login }" * 1 + " }" + " }"
    assert "errors" not in await client.execute(deep)
    nested = "query { " + 'node(id: "x") { ... on Integration { ' * 12 + "id" + " } }" * 12 + " }"
    body = await client.execute(nested)
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]


async def test_too_many_aliases_are_refused(client: GraphQLTestClient) -> None:
    aliases = " ".join(f"a{i}: integrations {{ id }}" for i in range(100))
    body = await client.execute("{ " + aliases + " }")
    assert "aliases" in body["errors"][0]["message"].lower()
    assert body.get("data") is None


async def test_huge_documents_are_refused(client: GraphQLTestClient) -> None:
    fields = " ".join("__typename" for _ in range(5000))
    body = await client.execute("{ " + fields + " }")
    assert "token" in body["errors"][0]["message"].lower()


async def test_oversized_bodies_are_refused_before_parsing(client: GraphQLTestClient) -> None:
    response = await client.http.post(
        "/graphql",
        content=b'{"query": "' + b"a" * (11 * 1024 * 1024) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.text == "Content Too Large"


class BrokenIntegrations(IntegrationRepository):
    async def list_for_owner(self, owner: str) -> Any:
        raise RuntimeError("secret internal detail /srv/app/storage.py")


async def test_unexpected_errors_are_masked_with_the_request_id(settings: Settings) -> None:
    seams = Seams(integrations=BrokenIntegrations)
    async with (
        running_app(settings, seams=seams) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        client = GraphQLTestClient(http, settings)
        body = await client.execute("{ integrations { id } }")
    [error] = body["errors"]
    assert error["message"].startswith("Internal error (request id ")
    assert error["extensions"]["code"] == "INTERNAL"
    assert "secret internal detail" not in str(body)
    assert error["extensions"]["requestId"] == client.responses[-1].headers["x-request-id"]


async def test_graphiql_is_served_on_get(client: GraphQLTestClient) -> None:
    response = await client.http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_health_and_readiness(client: GraphQLTestClient) -> None:
    assert (await client.http.get("/healthz")).json() == {"status": "ok"}
    ready = await client.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_every_response_carries_a_request_id(client: GraphQLTestClient) -> None:
    response = await client.http.get("/healthz", headers={"x-request-id": "req-12345678"})
    assert response.headers["x-request-id"] == "req-12345678"
    other = await client.http.get("/healthz")
    assert len(other.headers["x-request-id"]) == 32


async def test_cors_allows_only_configured_frontend_origins(client: GraphQLTestClient) -> None:
    def preflight(origin: str) -> httpx.Response:
        return client.http.options(  # type: ignore[return-value]
            "/graphql",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            },
        )

    allowed = await preflight("https://app.example.com")  # type: ignore[misc]
    assert allowed.headers.get("access-control-allow-origin") == "https://app.example.com"
    refused = await preflight("https://evil.example.com")  # type: ignore[misc]
    assert "access-control-allow-origin" not in refused.headers


async def test_a_token_quoted_by_a_validation_error_is_blanked(client: Any) -> None:
    token = "ghp_" + "QuotedByValidation".ljust(36, "0")
    body = await client.execute(
        f'mutation {{ connectGitToken(input: {{token: "{token}"}}) {{ __typename }} }}'
    )
    assert body["errors"] and token not in str(body)
