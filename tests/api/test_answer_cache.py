"""Warm picker answers kept per caller, document and variables — and never once they are no longer
true: another replica's listing, a changed integration, another caller, an expired list."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.composition import Seams
from app.domain.models import Integration, IntegrationStatus, TokenKind
from app.graphql.answer_cache import AnswerCache
from app.graphql.types.node import to_global_id
from app.settings.model import Settings
from tests.conftest import GraphQLTestClient, running_app
from tests.fakes.github import FakeGitHub
from tests.picker_support import (
    MovableClock,
    connect,
    github_endpoint,
    picker_settings,
    services_for,
    settle,
    upstream,
)

TOKEN = "ghp_" + "c" * 36
PAGE = """query Page($id: ID!, $first: Int!) { integration(id: $id) { id status
  repositories(first: $first) { totalCount fetchedAt notices { reason }
    edges { cursor node { id fullName pushedAt viewerCanAdminister } } pageInfo { hasNextPage endCursor } } } }"""


@dataclass
class Site:
    app: Any
    client: GraphQLTestClient
    github: FakeGitHub
    integration: Integration
    clock: MovableClock
    up: httpx.AsyncClient
    settings: Settings

    @property
    def answers(self) -> AnswerCache:
        cache: AnswerCache = self.app.state["answers"]
        return cache

    async def page(self, query: str = PAGE, user: str = "alice", **variables: Any) -> dict[str, Any]:
        arguments = {"id": to_global_id("Integration", self.integration.id), "first": 5, **variables}
        return await self.client.execute(query, arguments, user=user)


@contextlib.asynccontextmanager
async def site_for(settings: Settings) -> AsyncIterator[Site]:
    github, clock = FakeGitHub(), MovableClock()
    github.add_user("octocat")
    github.add_repositories("octocat", 40)
    github.add_classic_token(TOKEN, "octocat", ["repo", "admin:repo_hook"])
    settings = picker_settings(settings)
    async with upstream(github) as up, services_for(settings, up) as services:
        integration = await connect(services, token=TOKEN, kind=TokenKind.GITHUB_CLASSIC, endpoint=github_endpoint())
        async with (
            running_app(settings, seams=Seams(http=up, clock=clock)) as app,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
        ):
            yield Site(app, GraphQLTestClient(http, settings), github, integration, clock, up, settings)


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    async with site_for(settings) as ready:
        yield ready


async def warm(site: Site) -> dict[str, Any]:
    """The page once from the whole list, so that its answer can be kept, and once kept."""
    await site.page(query=PAGE.replace("totalCount ", "totalCount __typename "))  # lists (any way)
    await settle(site.app)
    first = await site.page()  # resolved from the stored list: kept
    assert "errors" not in first, first
    return first


async def test_a_warm_page_asked_again_is_the_kept_answer(site: Site) -> None:
    first = await warm(site)
    hits = site.answers.hits
    site.github.clear_requests()
    again = await site.page()
    assert again == first
    assert site.answers.hits == hits + 1
    assert site.github.requests == []


async def test_another_replicas_new_listing_is_seen_at_once(site: Site) -> None:
    first = await warm(site)
    site.github.add_repository("octocat", "brand-new")
    # Another replica (its own app over the same database) lists again: a new generation.
    async with running_app(site.settings, seams=Seams(http=site.up)) as other:
        await other.services.catalog.repositories(site.integration, refresh=True)
        await settle(other)
    again = await site.page()
    assert again["data"]["integration"]["repositories"]["totalCount"] == 41
    assert again != first


async def test_a_changed_integration_is_not_answered_from_before(site: Site) -> None:
    await warm(site)
    services = site.app.services
    await services.integrations.set_status("alice", site.integration.id, IntegrationStatus.NEEDS_RECONNECT)
    again = await site.page()
    assert again["errors"][0]["extensions"]["code"] == "NEEDS_RECONNECT"


async def test_another_caller_never_gets_it(site: Site) -> None:
    await warm(site)
    other = await site.page(user="mallory")
    assert other == {"data": {"integration": None}}  # as if it did not exist


async def test_a_disconnected_integration_is_gone_from_kept_answers_too(site: Site) -> None:
    await warm(site)
    body = await site.client.execute(
        "mutation($id: ID!) { disconnectGitIntegration(input: {id: $id}) { __typename } }",
        {"id": to_global_id("Integration", site.integration.id)},
    )
    assert body["data"]["disconnectGitIntegration"]["__typename"] == "DisconnectedIntegration"
    again = await site.page()
    assert again == {"data": {"integration": None}}


async def test_an_expired_list_is_revalidated_not_answered_from_before(site: Site) -> None:
    first = await warm(site)
    site.clock.advance(120)  # past REPOSITORY_CACHE_SECONDS (60)
    site.github.clear_requests()
    again = await site.page()
    assert {r.status for r in site.github.requests} == {304}
    assert again["data"]["integration"]["repositories"]["fetchedAt"] != first["data"]["integration"][
        "repositories"
    ]["fetchedAt"]


@pytest.mark.parametrize(
    "query",
    [
        PAGE.replace("viewerCanAdminister", "viewerCanAdminister branches(first: 1) { totalCount }"),
        PAGE.replace("repositories(first: $first)", "repositories(first: $first, refresh: true)"),
        "query Page($id: ID!, $first: Int!) { node(id: $id) { id } integration(id: $id) { "
        "repositories(first: $first) { totalCount } } }",
    ],
)
async def test_documents_that_read_more_than_a_listing_are_never_kept(site: Site, query: str) -> None:
    await warm(site)
    hits = site.answers.hits
    await site.page(query=query)
    await site.page(query=query)
    assert site.answers.hits == hits
