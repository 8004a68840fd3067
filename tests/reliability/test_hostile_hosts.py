"""Hostile hosts (issue 11, item 3): a "self-hosted GitLab" that drips, sends 300 MB, a zip bomb or JSON
nested too deeply, and hundreds of slow connects trying to take every connection from github.com.

The service runs with the HTTP client it builds in production (the SSRF guard, the deadline, the byte
cap, the two pools); the hostile host is a raw socket server on 127.0.0.1 (``tests.fakes.hostile``),
allowlisted as an on-premises host would be, and the configured hosts are the fakes on loopback. Every
connection must stay on 127.0.0.1 (``jail_connections``). While each attack runs, ``/healthz`` must
keep answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

import pytest

from app.composition import Seams
from app.net.client import RetryPolicy
from app.settings.model import Settings
from tests.fakes.hostile import HostileHost, serve_hostile
from tests.oauth_support import FakeHosts, Service, login_settings, open_service
from tests.reliability.support import CLASSIC, GITLAB_TOKEN, documents, jail_connections, loopback_hosts

T = TypeVar("T")
TIMEOUT = 1.0  # HTTP_TIMEOUT_SECONDS: every call's one deadline
CONNECT = """mutation($input: ConnectGitTokenInput!) { connectGitToken(input: $input) {
  __typename ... on Integration { id } ... on Error { code message } } }"""
LIST = """query($id: ID!) { integration(id: $id) { repositories(first: 5, refresh: true) { totalCount } } }"""


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return jail_connections(monkeypatch)


@pytest.fixture(scope="module")
def hosts() -> Iterator[FakeHosts]:
    with loopback_hosts() as found:
        yield found


@pytest.fixture
async def service(settings: Settings, hosts: FakeHosts) -> AsyncIterator[Service]:
    configured = login_settings(
        settings, hosts, http_timeout_seconds=TIMEOUT, git_host_allowlist=("127.0.0.1",)
    )
    quick = Seams(retry=RetryPolicy(base_delay=0, max_delay=0))
    async with open_service(configured, own_http_client=True, seams=quick) as opened:
        yield opened


async def while_answering_healthz(service: Service, attack: Awaitable[T]) -> T:
    """Run ``attack``; ``/healthz`` is asked every 50 ms meanwhile and must answer while it still runs."""
    running = asyncio.ensure_future(attack)
    answered_during = 0
    slowest = 0.0
    try:
        while not running.done():
            started = time.monotonic()
            response = await service.http.get("/healthz")
            assert response.status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            answered_during += not running.done()
            await asyncio.wait([running], timeout=0.05)
        assert answered_during > 0, "/healthz did not answer while the attack ran"
        assert slowest < 1.0, f"/healthz took {slowest:.2f} s during the attack"
        return await running
    finally:
        running.cancel()


async def connect_to(service: Service, url: str, *, user: str = "alice") -> dict[str, Any]:
    body = await service.graphql.execute(
        CONNECT, {"input": {"provider": "GITLAB", "token": GITLAB_TOKEN, "host": url}}, user=user
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["connectGitToken"]
    return result


def assert_unavailable(result: dict[str, Any], *words: str) -> None:
    assert result["__typename"] == "ProviderUnavailableError", result
    assert result["code"] == "PROVIDER_UNAVAILABLE"
    for word in words:
        assert word in result["message"], result["message"]


async def test_a_host_dripping_its_answer_fails_at_the_deadline_not_when_the_drip_ends(
    service: Service,
) -> None:
    hostile = HostileHost("drip", interval=0.25)  # its answer would take more than a minute
    with serve_hostile(hostile) as url:
        started = time.monotonic()
        result = await while_answering_healthz(service, asyncio.wait_for(connect_to(service, url), 30))
        took = time.monotonic() - started

    assert_unavailable(result, "did not answer in time")
    assert took < 4 * TIMEOUT  # one deadline, not a minute per attempt
    assert hostile.connections == 1  # a host that used up the deadline is not asked again
    assert await documents(service.db, "integrations") == []


@pytest.mark.parametrize("declare_length", [False, True], ids=["streamed", "announced"])
async def test_a_300_mb_answer_is_refused_after_a_few_mib(service: Service, declare_length: bool) -> None:
    hostile = HostileHost("huge", declare_length=declare_length)
    with serve_hostile(hostile) as url:
        result = await while_answering_healthz(service, asyncio.wait_for(connect_to(service, url), 30))

    assert_unavailable(result, "larger than 5 MiB")
    # What the host got to send before the service hung up: the cap plus what the sockets buffer.
    assert hostile.bytes_sent < 40 * 1024 * 1024, hostile.bytes_sent
    assert hostile.connections == 1


async def test_a_zip_bomb_is_refused_without_inflating_it(service: Service) -> None:
    hostile = HostileHost("gzip_bomb", size=64 * 1024 * 1024)  # 64 MB of zeros in about 64 KB
    with serve_hostile(hostile) as url:
        result = await while_answering_healthz(service, asyncio.wait_for(connect_to(service, url), 30))

    assert_unavailable(result, "larger than 5 MiB")


@pytest.mark.parametrize("status", ["200 OK", "403 Forbidden"], ids=["answer", "refusal"])
async def test_json_nested_too_deeply_is_an_unreadable_answer_not_an_internal_error(
    service: Service, status: str
) -> None:
    # A 403 is read for its reason too (is it a rate limit?): that reading must hold as well.
    with serve_hostile(HostileHost("nested", status=status)) as url:
        result = await while_answering_healthz(service, asyncio.wait_for(connect_to(service, url), 30))

    if status.startswith("200"):
        assert_unavailable(result, "not valid JSON")
    else:  # a refusal without a readable GitLab error is not GitLab's
        assert result["__typename"] == "HostNotAllowedError", result
        assert "does not answer like a GitLab instance" in result["message"]


async def test_slow_user_typed_hosts_cannot_take_the_connections_github_needs(
    service: Service, hosts: FakeHosts
) -> None:
    github = await service.graphql.execute(
        CONNECT, {"input": {"provider": "GITHUB", "token": CLASSIC}}, user="carol"
    )
    integration = github["data"]["connectGitToken"]
    assert integration["__typename"] == "Integration", integration
    hostile = HostileHost("drip", interval=0.5)
    with serve_hostile(hostile) as url:
        # 210 users each connect the dripping host: more than the 200 connections one pool had.
        attackers = [asyncio.ensure_future(connect_to(service, url, user=f"mallory-{i}")) for i in range(210)]
        try:
            while hostile.open_connections < 50:  # the connects are being held
                await asyncio.sleep(0.02)
            listed = await while_answering_healthz(
                service,
                service.graphql.execute(LIST, {"id": integration["id"]}, user="carol"),
            )
            held_meanwhile = hostile.open_connections
            results = await asyncio.wait_for(asyncio.gather(*attackers), 30)
        finally:
            for attacker in attackers:
                attacker.cancel()

    assert "errors" not in listed, listed
    assert listed["data"]["integration"]["repositories"]["totalCount"] == 3
    assert held_meanwhile > 0  # the listing ran while the hostile host still held connections
    for result in results:  # each attacker failed on its own deadline or on the full pool
        assert_unavailable(result)
    assert {r["message"].split(";")[0] for r in results} <= {
        f"{url.removeprefix('http://')} did not answer in time",
        f"The service has no free connection for {url.removeprefix('http://')} right now",
    }
