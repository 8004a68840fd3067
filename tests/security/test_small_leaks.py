"""Issue 11, item 7: small leaks.

- The guard named the private address a user's host resolved to ("resolves to a private address
  (10.1.2.3)"): a map of the inside of the network, one DNS name at a time.
- ``/metrics`` on the API port listed every host users typed (the host label), for anyone who could
  reach the API. Production now serves it only on ``METRICS_PORT``, and the label names only the
  configured hosts.
- GraphiQL read headers from its URL and wrote variables into it: tests/api/test_graphiql_browser.py
  (``test_graphiql_neither_reads_headers_from_its_url_nor_writes_variables_into_it``, in Chromium).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from app.metrics import Metrics
from app.settings.model import Settings
from tests.conftest import JWT_SECRET, KEY_A, GraphQLTestClient, running_app
from tests.harness import free_port, serve, service_environment

CONNECT = """mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) {
  __typename ... on Error { code message } } }"""


async def resolver(host: str, port: int) -> Sequence[str]:
    return {"gitlab.corp.example": ["10.1.2.3"], "meta.example": ["169.254.169.254"]}[host]


@pytest.mark.parametrize(
    ("host", "address"), [("gitlab.corp.example", "10.1.2.3"), ("meta.example", "169.254.169.254")]
)
async def test_a_refusal_says_the_address_is_not_public_without_naming_it(
    settings: Settings, host: str, address: str
) -> None:
    async with (
        httpx.AsyncClient() as upstream,
        running_app(settings, upstream, resolver=resolver) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        body = await GraphQLTestClient(http, settings).execute(
            CONNECT, {"input": {"provider": "GITLAB", "token": "glpat-" + "x" * 20, "host": host}}
        )

    result = body["data"]["connectGitToken"]
    assert result["__typename"] == "HostNotAllowedError"
    assert result["message"].startswith(f"{host} resolves to an address that is not public;")
    assert address not in str(body)


def test_the_host_label_names_only_configured_hosts() -> None:
    metrics = Metrics()
    metrics.allow_hosts(["github.com", "gitlab.example.com"])

    assert metrics.host_label("github.com") == "github.com"
    assert [metrics.host_label(f"gitlab{n}.customer.example") for n in range(3)] == ["other"] * 3


@pytest.mark.parametrize(("production", "answers"), [(True, 404), (False, 200)])
async def test_the_api_port_answers_metrics_only_in_development(
    settings: Settings, production: bool, answers: int
) -> None:
    configured = replace(settings, app_env="production" if production else "development")
    async with (
        running_app(configured) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        assert (await http.get("/metrics")).status_code == answers
        assert (await http.get("/healthz")).status_code == 200


@pytest.mark.uvicorn
@pytest.mark.parametrize("workers", [1, 2])
def test_production_serves_metrics_on_metrics_port_only(mongo_uri: str, tmp_path: Path, workers: int) -> None:
    metrics_port = free_port()
    env = service_environment(
        APP_ENV="production",
        DATA_DIR=str(tmp_path),
        MONGODB_URI=mongo_uri,
        MONGODB_DATABASE=f"metrics_port_{workers}",
        ENCRYPTION_KEYS=f"a:{KEY_A}",
        AUTH_JWT_SECRET=JWT_SECRET,
        METRICS_PORT=str(metrics_port),
    )
    with serve(env, args=("--workers", str(workers))) as served, httpx.Client(timeout=10) as http:
        for _ in range(3):
            http.post(f"{served.url}/graphql", json={"query": "query Counted { integrations { id } }"})
        on_api = http.get(f"{served.url}/metrics")
        scraped = http.get(f"http://127.0.0.1:{metrics_port}/metrics")

    assert on_api.status_code == 404
    assert scraped.status_code == 200
    assert (
        'git_integrations_graphql_requests_total{operation="Counted",outcome="UNAUTHENTICATED"} 3.0'
        in scraped.text
    )
