"""One request cannot exhaust the service (issue 11, item 2), through the API with the fake hosts upstream.

- The query budget: the issue's reproductions answer ``QUERY_TOO_COMPLEX`` (errors only, no ``data``)
  before any request reaches a host, and what a frontend normally asks still works for a user with the
  most integrations allowed.
- ``MAX_CONCURRENT_UPSTREAM_PER_USER``: however many listings one request starts, the host never sees
  more of the user's requests at once.
- A client that goes away: its request is cancelled, and so is the walk only it was waiting for.
- ``MAX_INTEGRATIONS_PER_USER``: one more answers ``LimitReachedError``; reconnecting does not count; the
  limit holds when connects race, also through two service instances on one database.

The hosts are the in-process fakes (``tests.picker_support.upstream``); the database is the real
embedded server. Upstream requests are read from the fakes' request logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from app.domain.models import Integration, TokenKind
from app.graphql.types.node import to_global_id
from app.settings.model import Settings
from tests.conftest import GraphQLTestClient, running_app, token_for
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab
from tests.harness import ServedApp
from tests.picker_support import (
    connect,
    gitlab_endpoint,
    picker_settings,
    services_for,
    settle,
    upstream,
)

SCOPES = ["api", "read_repository", "write_repository"]
CONNECT = """mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) {
  __typename ... on Integration { id account { login } } ... on Error { code message }
  ... on LimitReachedError { limit } } }"""


def token_of(user: int) -> str:
    return f"glpat-user{user:04d}".ljust(26, "0")


def gitlab_world(users: int, projects: int = 3) -> FakeGitLab:
    """``users`` GitLab users ``user-0000``…, each with ``projects`` projects and a personal token."""
    fake = FakeGitLab()
    for n in range(users):
        user = fake.add_user(f"user-{n:04d}")
        fake.add_projects(user, projects, name_prefix=f"u{n}")
        fake.add_personal_token(token_of(n), user, SCOPES)
    return fake


@dataclass
class World:
    app: ServedApp
    client: GraphQLTestClient
    gitlab: FakeGitLab
    github: FakeGitHub
    integrations: list[Integration]

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return await self.client.execute(query, variables, **kwargs)

    def upstream_requests(self) -> int:
        return len(self.gitlab.requests) + len(self.github.requests)


@contextlib.asynccontextmanager
async def world(
    settings: Settings,
    *,
    integrations: int,
    projects: int = 3,
    connected: int | None = None,
    **overrides: Any,
) -> AsyncIterator[World]:
    """alice with ``connected`` (default: all) of ``integrations`` GitLab accounts stored as integrations."""
    gitlab, github = gitlab_world(integrations, projects), FakeGitHub()
    settings = picker_settings(settings, **overrides)
    async with upstream(github, gitlab) as up:
        async with services_for(settings, up) as services:
            stored = [
                await connect(
                    services,
                    token=token_of(n),
                    kind=TokenKind.GITLAB_PERSONAL,
                    endpoint=gitlab_endpoint(),
                    login=f"user-{n:04d}",
                    account_id=str(gitlab.user(f"user-{n:04d}").id),
                )
                for n in range(integrations if connected is None else connected)
            ]
        async with (
            running_app(settings, up) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            yield World(app, GraphQLTestClient(http, settings), gitlab, github, stored)


def refused(body: dict[str, Any]) -> dict[str, Any]:
    """The one QUERY_TOO_COMPLEX error of an answer without ``data``."""
    assert "data" not in body, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert error["extensions"]["cost"] > error["extensions"]["budget"]
    return dict(error)


# --- the query budget ---------------------------------------------------------------------------


async def test_ten_aliased_searches_over_twelve_gitlab_integrations_are_refused_before_any_request(
    settings: Settings,
) -> None:
    async with world(settings, integrations=12, projects=250) as w:
        searches = " ".join(f's{i}: repositories(search: "u{i}") {{ totalCount }}' for i in range(10))

        error = refused(await w.execute(f"{{ integrations {{ {searches} }} }}"))

        assert error["extensions"]["budget"] == 60 + 12
        assert "too much at once" in error["message"]
        assert w.upstream_requests() == 0


async def test_branches_under_a_hundred_repositories_with_aliases_are_refused_before_any_request(
    settings: Settings,
) -> None:
    async with world(settings, integrations=1, projects=250) as w:
        pages = " ".join(
            f"p{i}: repositories(first: 100) {{ edges {{ node {{ b{i}: branches {{ edges {{ node {{ name }} }} }} }} }} }}"
            for i in range(3)
        )
        query = f"query($id: ID!) {{ integration(id: $id) {{ {pages} }} }}"

        refused(await w.execute(query, {"id": to_global_id("Integration", w.integrations[0].id)}))

        assert w.upstream_requests() == 0


async def test_thirty_aliased_token_connects_are_refused_before_any_host_is_asked(settings: Settings) -> None:
    async with world(settings, integrations=30, connected=0) as w:
        connects = " ".join(
            f'c{n}: connectGitToken(input: {{provider: GITLAB, token: "{token_of(n)}"}}) {{ __typename }}'
            for n in range(30)
        )

        refused(await w.execute(f"mutation {{ {connects} }}"))

        assert w.upstream_requests() == 0
        assert (await w.execute("{ integrations { id } }"))["data"]["integrations"] == []


async def test_what_the_picker_asks_fits_for_a_user_with_the_most_integrations(settings: Settings) -> None:
    async with world(settings, integrations=50) as w:
        overview = await w.execute(
            "{ integrations { id repositories(first: 5) { totalCount edges { node { id name } } } } }"
        )
        assert "errors" not in overview, overview
        assert [i["repositories"]["totalCount"] for i in overview["data"]["integrations"]] == [3] * 50

        one = to_global_id("Integration", w.integrations[7].id)
        search = await w.execute(
            """query($id: ID!) { integration(id: $id) { repositories(search: "u7", first: 30) {
                 totalCount pageInfo { endCursor } } } }""",
            {"id": one},
        )
        assert search["data"]["integration"]["repositories"]["totalCount"] == 3
        cursor = overview["data"]["integrations"][7]["repositories"]["edges"][0]["node"]
        page = await w.execute(
            "query($id: ID!, $after: String) { integration(id: $id) { repositories(first: 2, after: $after) { totalCount } } }",
            {"id": one, "after": None},
        )
        assert "errors" not in page, page
        branches = await w.execute(
            "query($id: ID!) { node(id: $id) { ... on Repository { branches(first: 100) { edges { node { name } } } } } }",
            {"id": cursor["id"]},
        )
        assert "errors" not in branches, branches
        assert branches["data"]["node"]["branches"]["edges"]


async def test_an_anonymous_request_over_budget_is_unauthenticated_and_asks_no_host(
    settings: Settings,
) -> None:
    async with world(settings, integrations=1) as w:
        searches = " ".join(f's{i}: repositories(search: "x{i}") {{ totalCount }}' for i in range(30))
        body = await w.execute(f"{{ integrations {{ {searches} }} }}", user=None)

        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert w.upstream_requests() == 0


# --- requests in flight -------------------------------------------------------------------------


async def test_one_users_requests_in_flight_never_exceed_the_cap(settings: Settings) -> None:
    async with world(settings, integrations=12, projects=250, max_concurrent_upstream_per_user=4) as w:
        w.gitlab.delay = 0.02  # every page takes a moment: twelve listings of three pages overlap

        overview = await w.execute("{ integrations { repositories(first: 1) { totalCount } } }")

        assert "errors" not in overview, overview
        assert [i["repositories"]["totalCount"] for i in overview["data"]["integrations"]] == [250] * 12
        await settle(w.app)  # the whole lists go on after the first pages were answered
        walks = [r for r in w.gitlab.requests if "order_by=id" in r.query]
        assert len(walks) == 12 * 3 and len(w.gitlab.requests) <= 12 * 4  # and a first page each
        assert w.gitlab.max_in_flight == 4
        assert w.app.services.upstream_cap.in_flight("alice") == 0


# --- a client that went away --------------------------------------------------------------------


async def disconnecting_client(app: ServedApp, body: bytes, user: str, gone: asyncio.Event) -> None:
    """One POST /graphql whose client disconnects once ``gone`` is set (what uvicorn tells the app)."""
    request_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    settings = app.services.settings
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token_for(settings, user)}".encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)


async def test_a_client_that_goes_away_stops_the_walk_only_it_wanted(settings: Settings) -> None:
    async with world(settings, integrations=1, projects=2000) as w:  # 20 pages
        w.gitlab.delay = 0.2
        query = json.dumps(
            {
                "query": "query($id: ID!) { integration(id: $id) { repositories(first: 5) { totalCount } } }",
                "variables": {"id": to_global_id("Integration", w.integrations[0].id)},
            }
        ).encode()
        gone = asyncio.Event()
        request = asyncio.create_task(disconnecting_client(w.app, query, "alice", gone))
        while not w.gitlab.requests:
            await asyncio.sleep(0.01)
        gone.set()  # the browser tab is closed while the host answers page 1

        await asyncio.wait_for(request, 5)
        await asyncio.wait_for(settle(w.app), 5)  # nothing left running
        asked = len(w.gitlab.requests)
        await asyncio.sleep(0.5)

        assert len(w.gitlab.requests) == asked < 20  # the walk stopped, it did not go on to page 20
        assert w.gitlab.in_flight == 0


async def test_a_listing_another_request_still_waits_for_goes_on(settings: Settings) -> None:
    async with world(settings, integrations=1, projects=250) as w:
        w.gitlab.delay = 0.1
        variables = {"id": to_global_id("Integration", w.integrations[0].id)}
        listing = "query($id: ID!) { integration(id: $id) { repositories(first: 5) { totalCount } } }"
        gone = asyncio.Event()
        leaving = asyncio.create_task(
            disconnecting_client(
                w.app, json.dumps({"query": listing, "variables": variables}).encode(), "alice", gone
            )
        )
        while not w.gitlab.requests:
            await asyncio.sleep(0.01)
        staying = asyncio.create_task(w.execute(listing, variables))
        await asyncio.sleep(0.05)  # joined the same walk
        gone.set()

        body = await asyncio.wait_for(staying, 10)
        await leaving

        assert body["data"]["integration"]["repositories"]["totalCount"] == 250
        await settle(w.app)
        walks = [r for r in w.gitlab.requests if "order_by=id" in r.query]
        assert len(walks) == 3  # one walk, finished for the request that stayed
        assert len(w.gitlab.requests) <= 4  # and one first page the two requests shared


# --- MAX_INTEGRATIONS_PER_USER -------------------------------------------------------------------


async def connect_token(
    w: World, n: int, *, user: str = "alice", client: GraphQLTestClient | None = None
) -> dict[str, Any]:
    body = await (client or w.client).execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": token_of(n)}}, user=user
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["connectGitToken"]
    return result


async def test_connecting_one_more_than_allowed_answers_limit_reached_and_reconnecting_does_not_count(
    settings: Settings,
) -> None:
    async with world(settings, integrations=4, connected=0, max_integrations_per_user=3) as w:
        first = [await connect_token(w, n) for n in range(3)]
        assert {r["__typename"] for r in first} == {"Integration"}

        over = await connect_token(w, 3)
        assert over["__typename"] == "LimitReachedError", over
        assert over["code"] == "LIMIT_REACHED" and over["limit"] == 3
        assert "3 integrations" in over["message"]

        again = await connect_token(w, 1)  # an account already connected: updated, not counted
        assert again["__typename"] == "Integration" and again["id"] == first[1]["id"]
        other_user = await connect_token(w, 3, user="bob")  # the limit is per user
        assert other_user["__typename"] == "Integration"

        listed = await w.execute("{ integrations { account { login } } }")
        assert [i["account"]["login"] for i in listed["data"]["integrations"]] == [
            "user-0000",
            "user-0001",
            "user-0002",
        ]
        disconnected = await w.execute(
            "mutation($id: ID!) { disconnectGitIntegration(input: {id: $id}) { __typename } }", {"id": first[0]["id"]}
        )
        assert disconnected["data"]["disconnectGitIntegration"]["__typename"] == "DisconnectedIntegration"
        assert (await connect_token(w, 3))["__typename"] == "Integration"  # a freed place is free


async def test_the_limit_holds_when_connects_race_through_two_service_instances(settings: Settings) -> None:
    async with world(settings, integrations=12, connected=0, max_integrations_per_user=5) as w:
        w.gitlab.delay = 0.01  # the checks at the host overlap, so the writes race
        async with (
            running_app(w.client.settings, upstream(w.github, w.gitlab)) as second,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=second), base_url="http://testserver"
            ) as http,
        ):
            replica = GraphQLTestClient(http, w.client.settings)
            results = await asyncio.gather(
                *(connect_token(w, n, client=replica if n % 2 else None) for n in range(12))
            )

        kinds = [r["__typename"] for r in results]
        assert kinds.count("Integration") == 5, kinds
        assert kinds.count("LimitReachedError") == 7, kinds
        listed = await w.execute("{ integrations { id } }")
        assert len(listed["data"]["integrations"]) == 5


async def test_integrations_stored_before_the_limit_existed_count_too(settings: Settings) -> None:
    # Stored without a slot, as every integration was before MAX_INTEGRATIONS_PER_USER.
    async with world(settings, integrations=4, connected=3, max_integrations_per_user=3) as w:
        over = await connect_token(w, 3)

        assert over["__typename"] == "LimitReachedError", over
        again = await connect_token(w, 0)
        assert again["__typename"] == "Integration"
        assert again["id"] == to_global_id("Integration", w.integrations[0].id)
