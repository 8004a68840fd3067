"""A login's end date: GitHub App refresh tokens expire (``refresh_token_expires_in``, about six months).

The fake GitHub hands out ``refresh_token_expires_in`` with every GitHub App user token and refuses an
expired refresh token with ``bad_refresh_token``, as GitHub documents
(https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens;
recorded answer: tests/fixtures/github/oauth-access-token.github-app-expiring.codecov-2024.json).
The service stores the date as ``reconnectBy`` and, once it has passed, marks the integration
NEEDS_RECONNECT without spending a request on a refresh that cannot work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.composition import Seams
from app.settings import Settings
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
    listed = await service.graphql.execute(
        "query($id: ID!) { integration(id: $id) { repositories { totalCount } } }", {"id": integration_id}
    )
    assert listed["errors"][0]["extensions"]["code"] == "NEEDS_RECONNECT"


async def test_logins_whose_host_gives_no_end_date_have_none(service: Service) -> None:
    # GitLab's token answers carry no refresh_token_expires_in (doc/api/oauth2.md, recorded in
    # tests/fixtures/gitlab/oauth-token.authorization-code.codecov-2020.json).
    integration_id = integration_id_from(await service.login("GITLAB"))

    found = await read(service, integration_id)

    assert found["reconnectBy"] is None
    assert found["expiresAt"] is not None
