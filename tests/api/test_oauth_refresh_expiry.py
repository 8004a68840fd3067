"""A login's end date: GitHub App refresh tokens expire (``refresh_token_expires_in``, about six months).

The fake GitHub hands out ``refresh_token_expires_in`` with every GitHub App user token and refuses an
expired refresh token with ``bad_refresh_token``, as GitHub documents
(https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens;
recorded answer: tests/fixtures/github/oauth-access-token.github-app-expiring.codecov-2024.json).
The service stores the date as ``reconnectBy``. From the moment it has passed the integration reads as
NEEDS_RECONNECT in every answer (``integrations``, ``integration(id)``, ``node``, the fields that need
its token), whether or not its access had to be renewed, without a request to GitHub: the status
follows from the stored date and the service's clock (``Seams.clock``, moved here), and the first read
that sees it stores it, so a replica whose clock is behind answers the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.composition import Seams
from app.settings.model import Settings
from tests.fakes.github import REFRESH_TOKEN_LIFETIME
from tests.oauth_support import (
    APP_SLUG,
    FakeHosts,
    Service,
    fake_hosts,
    integration_id_from,
    login_settings,
    open_service,
)

RECONNECT_BY = "query($id: ID!) { integration(id: $id) { status expiresAt reconnectBy } }"
STATUS_EVERYWHERE = """query($id: ID!) {
  integrations { id status }
  integration(id: $id) { status }
  node(id: $id) { ... on Integration { status } }
}"""
REPOSITORIES = "query($id: ID!) { integration(id: $id) { repositories { totalCount } } }"
TOKEN_ENDPOINT = "/login/oauth/access_token"


class Clock:
    """The service's clock, moved together with the fakes' clocks."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_hosts() -> Iterator[FakeHosts]:
    with fake_hosts(app_slug=APP_SLUG) as found:
        yield found


@pytest.fixture
async def service(settings: Settings, app_hosts: FakeHosts, clock: Clock) -> AsyncIterator[Service]:
    async with open_service(login_settings(settings, app_hosts), seams=Seams(clock=clock)) as opened:
        yield opened


def advance(clock: Clock, hosts: FakeHosts, seconds: float) -> None:
    clock.offset += timedelta(seconds=seconds)
    hosts.github.advance_time(seconds)
    hosts.gitlab.advance_time(seconds)


async def read(service: Service, integration_id: str) -> dict[str, str | None]:
    data = await service.execute(RECONNECT_BY, {"id": integration_id})
    result: dict[str, str | None] = data["integration"]
    return result


def parsed(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


async def test_a_github_app_login_says_when_it_must_be_renewed(service: Service, clock: Clock) -> None:
    integration_id = integration_id_from(await service.login("GITHUB"))

    found = await read(service, integration_id)

    expected = clock() + timedelta(seconds=REFRESH_TOKEN_LIFETIME)
    assert abs(parsed(found["reconnectBy"]) - expected) < timedelta(minutes=1)
    assert parsed(found["expiresAt"]) < parsed(found["reconnectBy"])
    stored = await service.db["integrations"].find_one({})
    assert stored["reconnectBy"] is not None  # kept with the tokens, in the clear: it is no secret


async def test_a_renewal_moves_the_date_on(service: Service, app_hosts: FakeHosts, clock: Clock) -> None:
    integration_id = integration_id_from(await service.login("GITHUB"))
    first = parsed((await read(service, integration_id))["reconnectBy"])
    advance(clock, app_hosts, 30 * 86_400)  # a month later the access token is long due

    verified = await service.verify(integration_id)

    assert verified["status"] == "ACTIVE"
    assert app_hosts.github.refresh_count == 1
    renewed = parsed((await read(service, integration_id))["reconnectBy"])
    assert timedelta(days=29) < renewed - first < timedelta(days=31)


async def test_an_expired_refresh_token_asks_for_reconnect_without_asking_github(
    service: Service, app_hosts: FakeHosts, clock: Clock
) -> None:
    integration_id = integration_id_from(await service.login("GITHUB"))
    asked = app_hosts.github.count("POST", TOKEN_ENDPOINT)
    advance(clock, app_hosts, REFRESH_TOKEN_LIFETIME + 60)

    verified = await service.verify(integration_id)

    assert verified["status"] == "NEEDS_RECONNECT"
    assert app_hosts.github.count("POST", TOKEN_ENDPOINT) == asked  # no refresh that could only fail
    assert app_hosts.github.refresh_count == 0
    listed = await service.graphql.execute(REPOSITORIES, {"id": integration_id})
    assert listed["errors"][0]["extensions"]["code"] == "NEEDS_RECONNECT"


async def statuses(service: Service, integration_id: str) -> list[str]:
    """The integration's status as ``integrations``, ``integration(id)`` and ``node`` answer it."""
    data = await service.execute(STATUS_EVERYWHERE, {"id": integration_id})
    [listed] = [i for i in data["integrations"] if i["id"] == integration_id]
    return [listed["status"], data["integration"]["status"], data["node"]["status"]]


async def test_the_login_reads_as_needs_reconnect_from_the_moment_it_ends_without_asking_github(
    service: Service, app_hosts: FakeHosts, clock: Clock
) -> None:
    integration_id = integration_id_from(await service.login("GITHUB"))
    reconnect_by = parsed((await read(service, integration_id))["reconnectBy"])
    asked = app_hosts.github.count()
    advance(clock, app_hosts, (reconnect_by - clock()).total_seconds() - 60)  # a minute before the end

    before_the_end = await statuses(service, integration_id)
    advance(clock, app_hosts, 120)  # a minute after: no request, no renewal due, no refusal needed
    after_the_end = await statuses(service, integration_id)
    needing_the_token = await service.graphql.execute(REPOSITORIES, {"id": integration_id})

    assert before_the_end == ["ACTIVE"] * 3
    assert after_the_end == ["NEEDS_RECONNECT"] * 3
    assert needing_the_token["errors"][0]["extensions"]["code"] == "NEEDS_RECONNECT"
    assert app_hosts.github.count() == asked  # reading the status never asks GitHub
    stored = await service.db["integrations"].find_one({})
    assert stored["status"] == "NEEDS_RECONNECT"  # stored by the first read that saw the end
    assert stored["secrets"]["refreshToken"] is not None  # the tokens stay as they were


async def test_a_replica_whose_clock_is_behind_answers_the_same(
    settings: Settings, service: Service, app_hosts: FakeHosts, clock: Clock
) -> None:
    integration_id = integration_id_from(await service.login("GITHUB"))
    advance(clock, app_hosts, REFRESH_TOKEN_LIFETIME + 60)
    assert await statuses(service, integration_id) == ["NEEDS_RECONNECT"] * 3
    behind = Clock()
    behind.offset = clock.offset - timedelta(minutes=5)  # its clock still before the end

    async with open_service(login_settings(settings, app_hosts), seams=Seams(clock=behind)) as other:
        seen_there = await statuses(other, integration_id)

    assert seen_there == ["NEEDS_RECONNECT"] * 3


async def test_signing_in_again_after_the_end_makes_it_active_again(
    service: Service, app_hosts: FakeHosts, clock: Clock
) -> None:
    integration_id = integration_id_from(await service.login("GITHUB"))
    advance(clock, app_hosts, REFRESH_TOKEN_LIFETIME + 60)
    assert await statuses(service, integration_id) == ["NEEDS_RECONNECT"] * 3

    again = integration_id_from(await service.login("GITHUB"))

    assert again == integration_id
    assert await statuses(service, integration_id) == ["ACTIVE"] * 3
    renewed = parsed((await read(service, integration_id))["reconnectBy"])
    assert abs(renewed - (clock() + timedelta(seconds=REFRESH_TOKEN_LIFETIME))) < timedelta(minutes=1)


async def test_logins_whose_host_gives_no_end_date_have_none(service: Service) -> None:
    # GitLab's token answers carry no refresh_token_expires_in (doc/api/oauth2.md, recorded in
    # tests/fixtures/gitlab/oauth-token.authorization-code.codecov-2020.json).
    integration_id = integration_id_from(await service.login("GITLAB"))

    found = await read(service, integration_id)

    assert found["reconnectBy"] is None
    assert found["expiresAt"] is not None
