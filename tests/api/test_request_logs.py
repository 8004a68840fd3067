"""The request log: one JSON line per request with the fields an operator searches by, and no secret ever.

The log is captured as production writes it (``JsonFormatter`` and ``SecretRedactingFilter`` on a
handler, the levels ``configure_logging`` sets with ``LOG_LEVEL=DEBUG``: stricter than the default
INFO), and also as raw records before any filter runs: the redaction filter is a last line of defence, so the checks hold without it.
Secrets are checked both in shapes the filter knows (``ghp_``, ``gho_``...) and in shapes it does not
(a legacy 40-hex GitHub token, OAuth codes and states, the caller's JWT).
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from app.observability import QUIET_LIBRARIES, JsonFormatter, SecretRedactingFilter
from app.settings.model import Settings
from tests.conftest import GraphQLTestClient, running_app, token_for
from tests.oauth_support import (
    APP_SLUG,
    COMPLETE_OAUTH,
    DISCONNECT,
    FakeHosts,
    fake_hosts,
    handed_on,
    integration_id_from,
    login_settings,
    open_service,
    query_of,
)

GITHUB_API = "https://api.github.com"
USER = "user-3c9d72"
CLASSIC = "ghp_" + "K" * 36
LEGACY = "0123456789abcdef0123456789abcdef01234567"  # no prefix: nothing token-shaped to redact
REFUSED_LEGACY = "fedcba9876543210fedcba9876543210fedcba98"
GITLAB_TOKEN = "glpat-" + "Z" * 20
CONNECT = """
mutation Connect($input: ConnectGitTokenInput!) {
  connectGitToken(input: $input) { __typename ... on Error { code message } ... on Integration { id } }
}
"""
GITHUB_USER = {
    "id": 583231,
    "login": "octocat",
    "name": "The Octocat",
    "html_url": "https://github.com/octocat",
}
LOGGERS = ("app", "httpx", "httpcore", "strawberry", "pymongo", "uvicorn", "asyncio")

# 100 repositories' branches: over the upstream budget, refused with QUERY_TOO_COMPLEX before anything runs.
TOO_MUCH = (
    'query TooMuch { node(id: "SW50ZWdyYXRpb246eA==") { ... on Integration { repositories(first: 100) { '
    "edges { node { branches(first: 100) { totalCount } } } } } } }"
)


@dataclass
class RawRecord:
    """What a record held before any handler's filter could touch it."""

    logger: str
    message: str
    everything: str  # msg, args, every extra field and the formatted traceback


@dataclass
class LogCapture:
    buffer: io.StringIO = field(default_factory=io.StringIO)
    raw: list[RawRecord] = field(default_factory=list)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines()]

    def requests(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == "app.request"]

    def clear(self) -> None:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.raw.clear()

    def assert_never_logged(self, secrets: Iterable[str]) -> None:
        written = self.buffer.getvalue()
        assert self.raw, "nothing was captured"
        for secret in secrets:
            assert secret, "an empty secret proves nothing"
            assert secret not in written, f"{secret[:10]}... is in the written log"
            for record in self.raw:
                assert secret not in record.everything, f"{secret[:10]}... reached a {record.logger} record"


class RawHandler(logging.Handler):
    def __init__(self, capture: LogCapture) -> None:
        super().__init__(logging.DEBUG)
        self.capture = capture
        self.tracebacks = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        traceback = self.tracebacks.formatException(record.exc_info) if record.exc_info else ""
        self.capture.raw.append(
            RawRecord(
                logger=record.name,
                message=record.getMessage(),
                everything=f"{record.getMessage()}\n{vars(record)!r}\n{traceback}\n{record.stack_info or ''}",
            )
        )


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    written = logging.StreamHandler(capture.buffer)
    written.setFormatter(JsonFormatter())
    written.addFilter(SecretRedactingFilter())
    raw = RawHandler(capture)
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    root_level = root.level
    root.handlers.insert(0, raw)  # first: it sees each record before the redacting filter changes it
    root.addHandler(written)
    root.setLevel(logging.DEBUG)
    for name in LOGGERS:  # as configure_logging(LOG_LEVEL=DEBUG) leaves them
        logging.getLogger(name).setLevel(logging.WARNING if name in QUIET_LIBRARIES else logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(raw)
        root.removeHandler(written)
        root.setLevel(root_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def hosts() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


async def fake_resolver(host: str, port: int) -> Sequence[str]:
    if host != "gitlab.example.com":
        raise OSError(f"no such host {host}")
    return ["93.184.216.34"]


@pytest.fixture
async def api(settings: Settings, hosts: respx.MockRouter) -> AsyncIterator[GraphQLTestClient]:
    async with (
        httpx.AsyncClient() as up,
        running_app(settings, up, resolver=fake_resolver) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield GraphQLTestClient(http, settings)


def github_accepts(hosts: respx.MockRouter, token: str) -> respx.Route:
    return hosts.get(f"{GITHUB_API}/user", headers={"Authorization": f"Bearer {token}"}).respond(
        200, json=GITHUB_USER, headers={"X-OAuth-Scopes": "repo, admin:repo_hook"}
    )


def github_refuses(hosts: respx.MockRouter, token: str) -> respx.Route:
    return hosts.get(f"{GITHUB_API}/user", headers={"Authorization": f"Bearer {token}"}).respond(
        401, json={"message": "Bad credentials"}
    )


def jwts_sent(client: GraphQLTestClient) -> list[str]:
    """Every caller JWT the client sent, and the signature part of each on its own."""
    sent = [r.request.headers.get("authorization", "").removeprefix("Bearer ") for r in client.responses]
    sent = [jwt for jwt in sent if jwt]
    assert sent, "no JWT was sent"
    return [*sent, *(jwt.rsplit(".", 1)[1] for jwt in sent)]


# --- the fields of the line ----------------------------------------------------------------------------


async def test_a_request_writes_one_line_with_its_id_operation_user_duration_outcome_and_upstream_count(
    api: GraphQLTestClient, hosts: respx.MockRouter, logs: LogCapture
) -> None:
    route = github_accepts(hosts, CLASSIC)

    response = await api.http.post(
        "/graphql",
        json={"query": CONNECT, "variables": {"input": {"provider": "GITHUB", "token": CLASSIC}}},
        headers={
            "Authorization": f"Bearer {token_for(api.settings, USER)}",
            "X-Request-ID": "checkout-7f00d1",
        },
    )

    assert response.json()["data"]["connectGitToken"]["__typename"] == "Integration"
    [line] = logs.requests()
    assert line["message"] == "request" and line["level"] == "info"
    assert line["request_id"] == "checkout-7f00d1" == response.headers["x-request-id"]
    assert line["operation"] == "Connect"
    assert line["user_id"] == USER
    assert line["outcome"] == "ok"
    assert isinstance(line["duration_ms"], int | float) and 0 <= line["duration_ms"] < 30_000
    assert line["upstream_requests"] == route.call_count == 1
    assert (line["method"], line["path"], line["status"]) == ("POST", "/graphql", 200)


async def test_failed_requests_say_why_and_who_is_unknown(
    api: GraphQLTestClient, hosts: respx.MockRouter, logs: LogCapture
) -> None:
    hosts.get(f"{GITHUB_API}/user").mock(side_effect=httpx.ConnectError("refused"))

    anonymous = await api.http.post("/graphql", json={"query": "{ integrations { id } }"})
    await api.execute(TOO_MUCH, user=USER)
    await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}}, user=USER)
    await api.http.post("/graphql", content=b"{not json", headers={"Content-Type": "application/json"})

    unauthenticated, too_much, unreachable, malformed = logs.requests()
    assert re.fullmatch(r"[0-9a-f]{32}", unauthenticated["request_id"])  # generated when not sent
    assert unauthenticated["request_id"] == anonymous.headers["x-request-id"]
    assert unauthenticated["operation"] == "anonymous"
    assert unauthenticated["user_id"] is None
    assert unauthenticated["outcome"] == "UNAUTHENTICATED"
    assert unauthenticated["upstream_requests"] == 0
    assert (too_much["operation"], too_much["user_id"], too_much["outcome"]) == (
        "TooMuch",
        USER,
        "QUERY_TOO_COMPLEX",
    )
    # The host could not be reached: three attempts, and the mutation answered with an error member.
    assert unreachable["upstream_requests"] == 3
    assert unreachable["outcome"] == "ok"
    assert (malformed["status"], malformed["operation"], malformed["outcome"]) == (400, None, "HTTP_400")
    assert len({line["request_id"] for line in logs.requests()}) == 4


async def test_the_oauth_callback_line_names_whose_sign_in_it_handed_on_and_not_the_code(
    settings: Settings, logs: LogCapture
) -> None:
    with fake_hosts() as hosts:
        async with open_service(login_settings(settings, hosts)) as service:
            authorization = await service.start("GITHUB", user=USER)
            location = await service.visit_host(authorization["authorizationUrl"])
            logs.clear()
            handed_on(await service.callback(location))

    [line] = logs.requests()
    assert line["path"] == "/oauth/callback"  # the query (code, state) is not part of it
    assert (line["user_id"], line["outcome"], line["status"]) == (USER, "returned", 302)
    assert line["upstream_requests"] == 0  # nothing is exchanged there
    logs.assert_never_logged([query_of(location)["code"], authorization["state"]])


# --- no secret reaches the log ---------------------------------------------------------------------------


async def test_tokens_connected_refused_or_sent_inline_never_reach_the_log(
    api: GraphQLTestClient, hosts: respx.MockRouter, logs: LogCapture
) -> None:
    github_accepts(hosts, CLASSIC)
    github_accepts(hosts, LEGACY)
    github_refuses(hosts, REFUSED_LEGACY)
    hosts.get("https://gitlab.example.com/api/v4/personal_access_tokens/self").respond(
        401, json={"message": "401 Unauthorized"}
    )

    for token in (CLASSIC, LEGACY, REFUSED_LEGACY):
        await api.execute(CONNECT, {"input": {"provider": "GITHUB", "token": token}}, user=USER)
    await api.execute(
        CONNECT,
        {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": "gitlab.example.com"}},
        user=USER,
    )
    await api.execute(
        "mutation Replace($id: ID!, $token: String!) { updateGitToken(input: {id: $id, token: $token}) { __typename } }",
        {"id": "SW50ZWdyYXRpb246eA==", "token": REFUSED_LEGACY},
        user=USER,
    )
    # Inline in the query text, and failing (no caller, then a query that does not validate): GraphQL
    # errors quote the query around their location, and such a quote must not be logged.
    inline = (
        f'mutation {{ connectGitToken(input: {{provider: GITHUB, token: "{LEGACY}"}}) {{ __typename }} }}'
    )
    await api.execute(inline, user=None)
    await api.execute(inline.replace("__typename", "nope"), user=USER)
    await api.execute(inline.replace("GITHUB", "GITHAB"), user=USER)

    assert len(logs.requests()) == 8
    logs.assert_never_logged([CLASSIC, LEGACY, REFUSED_LEGACY, GITLAB_TOKEN, *jwts_sent(api)])


async def test_a_wrong_authorization_header_never_reaches_the_log(
    api: GraphQLTestClient, logs: LogCapture
) -> None:
    forged = token_for(api.settings, USER)[:-6] + "AAAAAA"  # a JWT with a broken signature
    expired_shape = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW5vdC12YWxpZA"
    for value in (f"Bearer {forged}", f"Bearer {expired_shape}", forged, "Basic dXNlcjpwYXNzd29yZA=="):
        response = await api.http.post(
            "/graphql", json={"query": "{ integrations { id } }"}, headers={"Authorization": value}
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    assert [line["outcome"] for line in logs.requests()] == ["UNAUTHENTICATED"] * 4
    logs.assert_never_logged([forged, forged.rsplit(".", 1)[1], expired_shape, "dXNlcjpwYXNzd29yZA=="])


async def test_a_whole_login_never_logs_its_codes_states_tokens_or_client_secret(
    settings: Settings, logs: LogCapture
) -> None:
    with fake_hosts(app_slug=APP_SLUG) as hosts:
        secrets = await run_logins(settings, hosts)
    github, gitlab = hosts.github, hosts.gitlab
    assert github.refresh_count >= 1 and github.revocations, "the scenario renews and revokes tokens"
    secrets += [*github.tokens, *github.refresh_tokens, *gitlab.tokens, *gitlab.refresh_tokens]
    secrets += [github.client_secret, gitlab.client_secret]
    assert len(logs.requests()) >= 10
    logs.assert_never_logged(secrets)


async def run_logins(settings: Settings, hosts: FakeHosts) -> list[str]:
    """Log in to GitHub (the app) and GitLab, renew and verify, finish one by mutation, fail one, disconnect."""
    secrets: list[str] = []
    hosts.github.code_token_lifetime = 30  # the first access token is due for renewal at once
    async with open_service(login_settings(settings, hosts)) as service:
        hosts.github.request_oauth_on_install = True  # a code during the installation too
        for provider in ("GITHUB", "GITLAB", "GITHUB"):
            authorization = await service.start(provider, user=USER)
            visited: list[str] = []
            landing = await service.follow(authorization["authorizationUrl"], visited)
            values = handed_on(landing)
            secrets += [authorization["state"], values["code"]]
            secrets += [query_of(url)["code"] for url in visited if "code" in query_of(url)]
            integration_id = integration_id_from(await service.complete(values, user=USER))
            assert (await service.verify(integration_id, user=USER))["status"] == "ACTIVE"

        authorization = await service.start("GITLAB", user=USER)
        bogus_code = "c0ffee" * 8
        refused = await service.execute(
            COMPLETE_OAUTH, {"input": {"state": authorization["state"], "code": bogus_code}}, user=USER
        )
        assert refused["completeGitOAuth"]["__typename"] == "OAuthExchangeError"
        secrets += [authorization["state"], bogus_code]

        for integration in await service.integrations(user=USER):
            await service.execute(DISCONNECT, {"id": integration["id"]}, user=USER)
        secrets += jwts_sent(service.graphql)
    return secrets
