"""The window of pages a listing has in flight: it grows while the host answers cleanly, halves on a
secondary rate limit, waits out a short ``Retry-After`` and stops sending on a long one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.domain.errors import RateLimitedError
from app.domain.models import (
    AuthMethod,
    GitAccount,
    GitProvider,
    HostEndpoint,
    Integration,
    IntegrationStatus,
    RepositoryAccess,
    TokenKind,
)
from app.hosts.github.client import GitHubHost
from app.net.client import PagePolicy, RetryPolicy, Upstream
from app.net.window import PageWindow
from tests.fakes.github import FakeGitHub
from tests.recordings import load

API = "http://github.test"
ENDPOINT = HostEndpoint(GitProvider.GITHUB, "github.test", API, API)
TOKEN = "ghp_" + "w" * 36
# GitHub's documented secondary-limit answer, with the Retry-After the docs say it "usually" carries.
SECONDARY = load("github", "error-403-secondary-rate-limit.github-docs.json")["response"]["body"]


def integration() -> Integration:
    return Integration(
        id="w",
        owner="alice",
        endpoint=ENDPOINT,
        auth_method=AuthMethod.ACCESS_TOKEN,
        token_kind=TokenKind.GITHUB_CLASSIC,
        account=GitAccount(id="1", login="octocat"),
        repository_access=RepositoryAccess.ALL,
        granted_permissions=["repo"],
        status=IntegrationStatus.ACTIVE,
        created_at=datetime.now(UTC),
    )


@pytest.fixture
def github() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_user("octocat")
    fake.add_repositories("octocat", 3000, branches_per_repo=1)
    fake.add_classic_token(TOKEN, "octocat", ["repo", "admin:repo_hook"])
    fake.delay = 0.02  # each page stays in flight a moment, so what is sent at once overlaps
    return fake


@pytest.fixture
async def host(github: FakeGitHub) -> AsyncIterator[GitHubHost]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=github.app), base_url=API) as client:
        pages = PagePolicy(first_window=10, max_window=40)
        yield GitHubHost(Upstream(client, retry=RetryPolicy(attempts=1), pages=pages), ENDPOINT)


def in_flight(fake: FakeGitHub) -> list[int]:
    """How many requests were in flight as each one arrived."""
    seen: list[int] = []

    def arrival(request: Any) -> None:
        seen.append(sum(1 for r in fake.requests if r.status == 0))

    fake.on_arrival = arrival
    return seen


async def test_the_window_grows_past_its_start_while_the_host_answers_cleanly(
    github: FakeGitHub, host: GitHubHost
) -> None:
    seen = in_flight(github)
    listing = await host.list_repositories(TOKEN, integration())
    assert len(listing.repositories) == 3000 and len(github.requests) == 30
    assert 10 < max(seen) <= 40  # more than the first 10 pages at once, never past the ceiling
    assert github.concurrency_refusals == 0  # GitHub's documented 100 concurrent requests never reached


async def test_a_window_that_outgrows_the_hosts_concurrency_limit_shrinks_and_finishes(
    github: FakeGitHub, host: GitHubHost
) -> None:
    # A host whose concurrency limit is below the window's ceiling (GHES, or a user with other work
    # in flight): the fake refuses requests past 4 at once as GitHub does, 403 + Retry-After, below the
    # window's start of 10.
    github.concurrency_limit = 4
    github.secondary_retry_after = 0
    listing = await host.list_repositories(TOKEN, integration())
    assert len(listing.repositories) == 3000
    refused = [r for r in github.requests if r.status == 403]
    assert len(refused) == github.concurrency_refusals > 0
    # Each refusal halves the window, so the walk settles near the limit instead of hammering it (a
    # window that kept its size would be refused again and again until the page's retries ran out):
    # fewer refusals than pages, and every page answered once.
    assert len(refused) < 30
    assert sum(1 for r in github.requests if r.status == 200) == 30


async def test_a_short_retry_after_is_waited_out_and_the_page_asked_again(
    github: FakeGitHub, host: GitHubHost
) -> None:
    github.fail_next(
        403, count=2, path_prefix="/user/repos", query_contains="&page=7", headers={"retry-after": "0"}, body=SECONDARY
    )
    listing = await host.list_repositories(TOKEN, integration())
    assert len(listing.repositories) == 3000
    assert [r.status for r in github.requests].count(403) == 2
    assert len(github.requests) == 32  # page 7 three times, every other page once


async def test_a_long_pause_fails_the_listing_and_sends_no_more_pages(github: FakeGitHub, host: GitHubHost) -> None:
    github.delay = 0.05
    github.fail_next(
        403, path_prefix="/user/repos", query_contains="&page=2", headers={"retry-after": "60"}, body=SECONDARY
    )
    with pytest.raises(RateLimitedError) as raised:
        await host.list_repositories(TOKEN, integration())
    assert raised.value.retry_after_seconds == 60
    assert len(github.requests) < 30  # the pages still waiting for room were never sent


async def test_the_window_halves_on_a_rate_limit_and_refuses_everyone_once_closed() -> None:
    window = PageWindow(start=4, ceiling=6)
    async with window.slot() as ticket:
        ticket.clean = True
    assert window.limit == 5
    async with window.slot() as ticket:
        ticket.throttled = True
    assert window.limit == 2
    entered = asyncio.Event()

    async def hold() -> None:
        async with window.slot():
            entered.set()
            await asyncio.Event().wait()  # holds its place until cancelled

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await entered.wait()
    waiting = asyncio.create_task(_enter(window))
    await asyncio.sleep(0)
    assert not waiting.done()  # two in flight, the limit is two
    await window.close(RateLimitedError("slow down", retry_after_seconds=60))
    with pytest.raises(RateLimitedError):
        await waiting
    for holder in holders:
        holder.cancel()
    await asyncio.gather(*holders, return_exceptions=True)
    assert window.in_flight == 0 and window.peak == 2


async def test_a_burst_of_refusals_halves_the_window_once_and_then_it_grows_a_page_per_window() -> None:
    window = PageWindow(start=8, ceiling=40)
    async with contextlib.AsyncExitStack() as burst:
        for _ in range(8):
            ticket = await burst.enter_async_context(window.slot())
            ticket.throttled = True
    # Eight refusals of pages sent at the same window: halved once, not down to one page.
    assert window.limit == 4
    for _ in range(7):
        async with window.slot() as ticket:
            ticket.clean = True
    # One more page per four clean answers now, not one per answer (slow start would give 11).
    assert window.limit == 5
    async with window.slot() as ticket:
        ticket.throttled = True
    assert window.limit == 2  # a refusal of a page sent after the halving halves it again


async def _enter(window: PageWindow) -> None:
    async with window.slot():
        pass
