"""``GET /metrics`` after real requests: the numbers move by exactly what happened, and say nothing private.

Counters live for the whole test process, so every test reads the metrics before and after what it
does and checks the difference. GitHub on ``api.github.com`` is faked with respx; the picker and the
logins use the fakes in tests/fakes (``github.test`` in process, loopback servers for OAuth).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from app.domain.models import TokenKind
from app.settings.model import Settings
from tests.conftest import JWT_SECRET, KEY_A, GraphQLTestClient, running_app, token_for
from tests.fakes.github import FakeGitHub
from tests.harness import serve, service_environment
from tests.oauth_support import (
    APP_SLUG,
    FakeHosts,
    Service,
    fake_hosts,
    integration_id_from,
    login_settings,
    open_service,
    query_of,
)
from tests.picker_support import connect, github_endpoint, picker_settings, services_for, settle, upstream

GITHUB_API = "https://api.github.com"
USER = "user-5b0e1c"  # distinctive, so that the metrics text can be searched for it
GOOD_TOKEN = "ghp_" + "M" * 36
BAD_TOKEN = "ghp_" + "X" * 36
GITLAB_BAD_TOKEN = "glpat-" + "Q" * 20
PUBLIC_IP = "93.184.216.34"

CONNECT = """
mutation Connect($input: ConnectGitTokenInput!) {
  connectGitToken(input: $input) { __typename ... on Error { code } ... on Integration { tokenKind } }
}
"""
LIST = """query List($id: ID!, $refresh: Boolean!) {
  integration(id: $id) { repositories(first: 5, refresh: $refresh) { totalCount edges { node { name } } } }
}"""

CONNECTS = "git_integrations_connect_attempts_total"
UPSTREAM = "git_integrations_upstream_requests_total"
GRAPHQL = "git_integrations_graphql_requests_total"
GRAPHQL_SECONDS = "git_integrations_graphql_request_duration_seconds_count"
RATE_LIMIT = "git_integrations_upstream_rate_limit_remaining"
CACHE = "git_integrations_repository_cache_lookups_total"
REFRESHES = "git_integrations_token_refreshes_total"

# 100 repositories' branches: over the upstream budget, refused with QUERY_TOO_COMPLEX before anything runs.
TOO_MUCH = (
    'query TooMuch { node(id: "SW50ZWdyYXRpb246eA==") { ... on Integration { repositories(first: 100) { '
    "edges { node { branches(first: 100) { totalCount } } } } } } }"
)


class Metrics:
    """One scrape of ``/metrics``, parsed with prometheus-client's own parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for (sample, labels) in self.samples if sample == name}

    def moved(self, before: Metrics, name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)


async def scrape(http: httpx.AsyncClient) -> Metrics:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return Metrics(response.text)


def assert_nothing_private(scraped: Metrics, secrets: Sequence[str]) -> None:
    for secret in secrets:
        assert secret not in scraped.text, f"{secret[:12]}... appears in /metrics"


# --- fixtures ---------------------------------------------------------------------------------------


async def fake_resolver(host: str, port: int) -> Sequence[str]:
    if host != "gitlab.example.com":
        raise OSError(f"no such host {host}")
    return [PUBLIC_IP]


@pytest.fixture
def hosts() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def api(settings: Settings, hosts: respx.MockRouter) -> AsyncIterator[GraphQLTestClient]:
    async with (
        httpx.AsyncClient() as up,
        running_app(settings, up, resolver=fake_resolver) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield GraphQLTestClient(http, settings)


async def connect_token(api: GraphQLTestClient, **values: str) -> dict[str, Any]:
    body = await api.execute(CONNECT, {"input": values}, user=USER)
    result: dict[str, Any] = body["data"]["connectGitToken"]
    return result


# --- connect attempts, upstream requests, GraphQL requests ----------------------------------------------


async def test_a_connect_with_a_bad_token_counts_one_invalid_token_attempt(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{GITHUB_API}/user").respond(401, json={"message": "Bad credentials"})
    before = await scrape(api.http)

    result = await connect_token(api, provider="GITHUB", token=BAD_TOKEN)

    assert result == {"__typename": "InvalidTokenError", "code": "INVALID_TOKEN"}
    after = await scrape(api.http)
    attempt = {"provider": "GITHUB", "method": "ACCESS_TOKEN", "token_kind": "unknown"}
    assert after.moved(before, CONNECTS, **attempt, result="INVALID_TOKEN") == 1
    assert after.moved(before, CONNECTS, **attempt, result="connected") == 0
    assert after.moved(before, UPSTREAM, host="github.com", endpoint="user", status="401") == 1
    # The mutation itself answered (with an error member of its union): the GraphQL outcome is ok.
    assert after.moved(before, GRAPHQL, operation="Connect", outcome="ok") == 1
    assert after.moved(before, GRAPHQL_SECONDS, operation="Connect", outcome="ok") == 1
    jwt = token_for(api.settings, USER)
    assert_nothing_private(after, [BAD_TOKEN, USER, jwt, jwt.rsplit(".", 1)[1]])


async def test_a_connected_token_counts_with_its_kind_and_the_hosts_rate_limit_is_kept(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{GITHUB_API}/user").respond(
        200,
        json={
            "id": 583231,
            "login": "octocat",
            "name": "The Octocat",
            "html_url": "https://github.com/octocat",
        },
        headers={"X-OAuth-Scopes": "repo, admin:repo_hook", "x-ratelimit-remaining": "4321"},
    )
    before = await scrape(api.http)

    result = await connect_token(api, provider="GITHUB", token=GOOD_TOKEN)

    assert result == {"__typename": "Integration", "tokenKind": "GITHUB_CLASSIC"}
    after = await scrape(api.http)
    assert (
        after.moved(
            before,
            CONNECTS,
            provider="GITHUB",
            method="ACCESS_TOKEN",
            token_kind="GITHUB_CLASSIC",
            result="connected",
        )
        == 1
    )
    assert after.moved(before, UPSTREAM, host="github.com", endpoint="user", status="200") == 1
    assert after.value(RATE_LIMIT, host="github.com") == 4321
    assert_nothing_private(after, [GOOD_TOKEN, USER, "octocat"])


async def test_a_host_that_cannot_be_reached_counts_each_attempt_as_an_error(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    hosts.get(f"{GITHUB_API}/user").mock(side_effect=httpx.ConnectError("refused"))
    before = await scrape(api.http)

    result = await connect_token(api, provider="GITHUB", token=GOOD_TOKEN)

    assert result == {"__typename": "ProviderUnavailableError", "code": "PROVIDER_UNAVAILABLE"}
    after = await scrape(api.http)
    # A GET is tried three times: three requests that got no answer.
    assert after.moved(before, UPSTREAM, host="github.com", endpoint="user", status="error") == 3
    assert (
        after.moved(
            before,
            CONNECTS,
            provider="GITHUB",
            method="ACCESS_TOKEN",
            token_kind="unknown",
            result="PROVIDER_UNAVAILABLE",
        )
        == 1
    )


async def test_a_host_a_user_typed_is_labelled_other_and_its_path_never_appears(
    api: GraphQLTestClient, hosts: respx.MockRouter
) -> None:
    hosts.get("https://gitlab.example.com/api/v4/personal_access_tokens/self").respond(
        401, json={"message": "401 Unauthorized"}
    )
    before = await scrape(api.http)

    result = await connect_token(api, provider="GITLAB", token=GITLAB_BAD_TOKEN, host="gitlab.example.com")

    assert result["__typename"] == "InvalidTokenError"
    after = await scrape(api.http)
    # Only configured hosts are named (issue 11, item 7): a user's own instance is "other".
    labels = {"host": "other", "endpoint": "personal_access_tokens", "status": "401"}
    assert after.moved(before, UPSTREAM, **labels) == 1
    assert "gitlab.example.com" not in after.text
    assert (
        after.moved(
            before,
            CONNECTS,
            provider="GITLAB",
            method="ACCESS_TOKEN",
            token_kind="unknown",
            result="INVALID_TOKEN",
        )
        == 1
    )
    assert "/api/v4" not in after.text and "self" not in after.label_values(UPSTREAM, "endpoint")
    assert_nothing_private(after, [GITLAB_BAD_TOKEN])


async def test_graphql_requests_are_counted_by_operation_and_outcome(api: GraphQLTestClient) -> None:
    before = await scrape(api.http)

    await api.execute("{ integrations { id } }", user=None)
    await api.execute("query Mine { integrations { id } }", user=USER)
    await api.execute("query Broken { integrations { nope } }", user=USER)
    await api.execute(TOO_MUCH, user=USER)

    after = await scrape(api.http)
    assert after.moved(before, GRAPHQL, operation="anonymous", outcome="UNAUTHENTICATED") == 1
    assert after.moved(before, GRAPHQL, operation="Mine", outcome="ok") == 1
    assert after.moved(before, GRAPHQL, operation="Broken", outcome="GRAPHQL_ERROR") == 1
    assert after.moved(before, GRAPHQL, operation="TooMuch", outcome="QUERY_TOO_COMPLEX") == 1
    assert after.moved(before, GRAPHQL_SECONDS, operation="Mine", outcome="ok") == 1


async def test_operation_names_chosen_by_clients_cannot_grow_the_label_set_without_end(
    api: GraphQLTestClient,
) -> None:
    before = await scrape(api.http)

    flood = [f"Flood{n:04d}" for n in range(metrics.OPERATION_NAME_LIMIT + 10)]
    for name in flood:
        await api.execute(f"query {name} {{ integrations {{ id }} }}", user=USER)
    await api.execute(f"query {'L' * 65} {{ integrations {{ id }} }}", user=USER)

    after = await scrape(api.http)
    labelled = {v for v in after.label_values(GRAPHQL, "operation") if v.startswith("Flood")}
    assert labelled == set(flood[: metrics.OPERATION_NAME_LIMIT])
    assert after.moved(before, GRAPHQL, operation="other", outcome="ok") == 11
    assert "L" * 65 not in after.text


# --- the repository cache ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def picker(settings: Settings) -> AsyncIterator[tuple[Any, GraphQLTestClient, FakeGitHub, str]]:
    from app.graphql.types.node import to_global_id

    github = FakeGitHub()
    github.add_user("octocat")
    github.add_repositories("octocat", 120, name_prefix="secret-project")
    github.add_classic_token(GOOD_TOKEN, "octocat", ["repo", "admin:repo_hook"])
    settings = picker_settings(settings)
    async with upstream(github) as up, services_for(settings, up) as services:
        integration = await connect(
            services, token=GOOD_TOKEN, kind=TokenKind.GITHUB_CLASSIC, endpoint=github_endpoint(), owner=USER
        )
        async with (
            running_app(settings, up) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            yield app, GraphQLTestClient(http, settings), github, to_global_id("Integration", integration.id)


async def test_a_cold_listing_misses_a_warm_one_hits_and_a_refresh_revalidates(settings: Settings) -> None:
    async with picker(settings) as (app, client, github, integration_id):

        async def listing(refresh: bool = False) -> None:
            body = await client.execute(LIST, {"id": integration_id, "refresh": refresh}, user=USER)
            assert body["data"]["integration"]["repositories"]["totalCount"] == 120, body
            await settle(app)  # the list is saved before the next request reads the cache

        start = await scrape(client.http)
        await listing()
        cold = await scrape(client.http)
        await listing()
        warm = await scrape(client.http)
        await listing(refresh=True)
        refreshed = await scrape(client.http)

    github_test = {"host": "github.test", "endpoint": "user_repos"}
    assert cold.moved(start, CACHE, provider="GITHUB", result="miss") == 1
    assert cold.moved(start, CACHE, provider="GITHUB", result="hit") == 0
    # 120 repositories: two pages, and beside them up to two for a first page in push order (with its
    # count) that race the whole walk (the walk may answer first: the first page is then let go).
    assert 2 <= cold.moved(start, UPSTREAM, **github_test, status="200") <= 4

    assert warm.moved(cold, CACHE, provider="GITHUB", result="hit") == 1
    assert warm.moved(cold, CACHE, provider="GITHUB", result="miss") == 0
    assert warm.moved(cold, UPSTREAM, **github_test, status="200") == 0

    assert refreshed.moved(warm, CACHE, provider="GITHUB", result="revalidate") == 1
    assert refreshed.moved(warm, UPSTREAM, **github_test, status="304") == 2  # unchanged: two 304s
    assert refreshed.value(RATE_LIMIT, host="github.test") == github.rate_limit_remaining
    assert_nothing_private(refreshed, [GOOD_TOKEN, USER, "secret-project", "octocat"])


async def test_a_listing_asked_for_while_the_same_one_is_walked_joins_it(settings: Settings) -> None:
    async with picker(settings) as (app, client, github, integration_id):
        github.hang_next(0.3, path_prefix="/user/repos")  # the walk is still running when the second arrives
        before = await scrape(client.http)
        await asyncio.gather(
            *(client.execute(LIST, {"id": integration_id, "refresh": False}, user=USER) for _ in range(2))
        )
        await settle(app)
        after = await scrape(client.http)

    assert after.moved(before, CACHE, provider="GITHUB", result="miss") == 1
    assert after.moved(before, CACHE, provider="GITHUB", result="joined") == 1


# --- logins and token refreshes ------------------------------------------------------------------------


@pytest.fixture
def login_hosts() -> Iterator[FakeHosts]:
    with fake_hosts() as found:
        yield found


@pytest.fixture
def app_hosts() -> Iterator[FakeHosts]:
    with fake_hosts(app_slug=APP_SLUG) as found:
        yield found


async def test_logins_count_as_oauth_connect_attempts(settings: Settings, login_hosts: FakeHosts) -> None:
    async with open_service(login_settings(settings, login_hosts)) as service:
        oauth_app = {"provider": "GITHUB", "method": "OAUTH", "token_kind": "GITHUB_OAUTH_APP"}
        invalid = {"provider": "unknown", "method": "OAUTH", "token_kind": "unknown"}
        before = await scrape(service.http)

        integration_id_from(await service.login("GITHUB"))
        connected = await scrape(service.http)
        login_hosts.github.deny_authorization = True
        _, denied_response = await service.arrive("GITHUB")
        denied = await scrape(service.http)
        forged = await service.callback(
            f"{service.settings.public_url}/oauth/callback?state={'s' * 43}&code=x"
        )
        await service.complete({"state": "s" * 43, "code": "x"})
        refused_state = await scrape(service.http)

    assert connected.moved(before, CONNECTS, **oauth_app, result="connected") == 1
    github_host = login_hosts.github_url.removeprefix("http://")
    assert connected.moved(before, UPSTREAM, host=github_host, endpoint="oauth", status="200") == 1
    assert query_of(denied_response.headers["location"])["error"] == "ACCESS_DENIED"
    assert denied.moved(connected, CONNECTS, **oauth_app, result="ACCESS_DENIED") == 1
    assert forged.status_code == 400
    assert refused_state.moved(denied, CONNECTS, **invalid, result="INVALID_OAUTH_STATE") == 1
    assert_nothing_private(refused_state, [*login_hosts.github.tokens, USER, "alice", "octocat"])


async def expiring_login(service: Service, github: FakeGitHub) -> str:
    github.code_token_lifetime = 30  # the first access token is due for renewal at once
    return integration_id_from(await service.login("GITHUB"))


async def test_token_refreshes_are_counted_by_outcome(settings: Settings, app_hosts: FakeHosts) -> None:
    github = app_hosts.github
    async with open_service(login_settings(settings, app_hosts)) as service:
        before = await scrape(service.http)

        renewed = await expiring_login(service, github)
        assert (await service.verify(renewed))["status"] == "ACTIVE"
        after_refresh = await scrape(service.http)

        waited_for = await expiring_login(service, github)
        github.hang_next(0.3, path_prefix="/login/oauth/access_token")
        results = await asyncio.gather(*(service.verify(waited_for) for _ in range(5)))
        assert all(r["status"] == "ACTIVE" for r in results)
        after_concurrent = await scrape(service.http)

        failing = await expiring_login(service, github)
        github.fail_next(502, path_prefix="/login/oauth/access_token")
        assert (await service.verify(failing))["__typename"] == "ProviderUnavailableError"
        after_failure = await scrape(service.http)

        for record in github.refresh_tokens.values():
            record.used = True  # spent elsewhere: GitHub answers bad_refresh_token
        assert (await service.verify(failing))["status"] == "NEEDS_RECONNECT"
        after_refusal = await scrape(service.http)

    def moved(later: Metrics, earlier: Metrics, outcome: str) -> float:
        return later.moved(earlier, REFRESHES, provider="GITHUB", outcome=outcome)

    assert moved(after_refresh, before, "refreshed") == 1
    assert moved(after_concurrent, after_refresh, "refreshed") == 1  # five requests, one refresh
    assert moved(after_concurrent, after_refresh, "waited") == 4  # ... the others waited for it
    assert moved(after_failure, after_concurrent, "failed") == 1
    assert moved(after_failure, after_concurrent, "refreshed") == 0
    assert moved(after_refusal, after_failure, "refused") == 1


# --- several worker processes ------------------------------------------------------------------------


@pytest.mark.uvicorn
@pytest.mark.parametrize("shared_directory", [True, False], ids=["PROMETHEUS_MULTIPROC_DIR", "temporary"])
def test_several_workers_answer_metrics_for_all_of_them(
    mongo_uri: str, tmp_path: Path, shared_directory: bool
) -> None:
    env = service_environment(
        DATA_DIR=str(tmp_path),
        MONGODB_URI=mongo_uri,
        MONGODB_DATABASE="metrics_workers",
        ENCRYPTION_KEYS=f"a:{KEY_A}",
        AUTH_JWT_SECRET=JWT_SECRET,
    )
    directory = tmp_path / "metrics"
    if shared_directory:
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"left by an earlier run")  # must be cleared at start
        env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    with serve(env, args=("--workers", "2")) as served, httpx.Client(base_url=served.url, timeout=10) as http:
        for _ in range(20):  # new connections: the requests spread over both workers
            response = http.post(
                "/graphql",
                json={"query": "query Counted { integrations { id } }"},
                headers={"Connection": "close"},
            )
            assert response.status_code == 200
        scrapes = [Metrics(http.get("/metrics", headers={"Connection": "close"}).text) for _ in range(4)]
        if shared_directory:
            # The workers write here, and the stale file of an earlier run was cleared. Which worker
            # accepts a connection is the kernel's choice (one may take them all), so the numbers being
            # complete in every scrape below is the check that does not depend on it.
            writers = {p.stem.rsplit("_", 1)[1] for p in directory.glob("*.db")} - {"1"}
            assert writers, "the workers write their numbers into PROMETHEUS_MULTIPROC_DIR"
            stale = directory / "counter_1.db"
            assert not stale.exists() or stale.read_bytes() != b"left by an earlier run"

    for scraped in scrapes:
        assert scraped.value(GRAPHQL, operation="Counted", outcome="UNAUTHENTICATED") == 20
