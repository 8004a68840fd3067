"""Issue 11, item 1: a login cannot land on someone else.

Mallory starts "Connect with …" as herself and sends the host's authorization URL to a victim whose
host session approves at once (an application the victim approved before: the fakes approve
without a page, as GitHub and GitLab do then). Before the fix, ``/oauth/callback`` finished the
sign-in with the state alone and connected the victim's Git account — private repositories
included — to Mallory. Now the callback only hands ``state`` and ``code`` on to ``returnTo``, where
the victim's frontend is signed in as the victim; the state is Mallory's, so completing it fails.

A GitHub App installation with "Request user authorization (OAuth) during installation" hands out a
code that carries no PKCE challenge: leaked (browser history, a proxy's log), it could be exchanged
with any state's verifier. The service never exchanges such a code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from app.settings.model import Settings
from tests.oauth_support import (
    APP_SLUG,
    FakeHosts,
    Service,
    fake_hosts,
    handed_on,
    login_settings,
    open_service,
    query_of,
)

MALLORY, VICTIM = "mallory", "victim"


@pytest.fixture(params=["oauth-app", "github-app"])
def hosts(request: pytest.FixtureRequest) -> Iterator[FakeHosts]:
    with fake_hosts(app_slug=APP_SLUG if request.param == "github-app" else None) as found:
        # The worst setting for the GitHub App: GitHub itself hands out a code during the installation.
        found.github.request_oauth_on_install = True
        yield found


@pytest.fixture
async def service(settings: Settings, hosts: FakeHosts) -> AsyncIterator[Service]:
    async with open_service(login_settings(settings, hosts)) as opened:
        yield opened


async def connected_accounts(service: Service, user: str) -> list[str]:
    return [i["account"]["login"] for i in await service.integrations(user=user)]


@pytest.mark.parametrize("provider", ["GITHUB", "GITLAB"])
async def test_a_forwarded_authorization_url_does_not_connect_the_victims_account_to_the_attacker(
    service: Service, provider: str
) -> None:
    mallorys = await service.start(provider, user=MALLORY)

    # The victim's browser follows the link; the host approves at once and sends it back.
    visited: list[str] = []
    landing = await service.follow(mallorys["authorizationUrl"], visited)

    assert await connected_accounts(service, MALLORY) == [], "the victim's account went to Mallory"
    assert await service.db["integrations"].count_documents({}) == 0
    assert any(url.startswith(service.settings.public_url) for url in visited)
    # The victim's frontend, signed in as the victim, tries to finish what it was handed.
    result = await service.complete(handed_on(landing), user=VICTIM)
    assert result["__typename"] == "InvalidOAuthStateError"
    assert await service.db["integrations"].count_documents({}) == 0
    # Mallory's state was not used up by the victim's attempt, but Mallory never saw the code.
    [state] = await service.db["oauth_states"].find({"owner": MALLORY}).to_list()
    assert state["usedAt"] is None
    assert landing.headers["referrer-policy"] == "no-referrer"


async def test_the_victim_finishing_their_own_sign_in_is_unaffected(service: Service) -> None:
    await service.start("GITHUB", user=MALLORY)

    result = await service.login("GITHUB", user=VICTIM)

    assert result["__typename"] == "Integration"
    assert await connected_accounts(service, VICTIM) == ["octocat"]
    assert await connected_accounts(service, MALLORY) == []


@pytest.fixture
def app_hosts() -> Iterator[FakeHosts]:
    with fake_hosts(app_slug=APP_SLUG) as found:
        found.github.request_oauth_on_install = True
        yield found


@pytest.fixture
async def app_service(settings: Settings, app_hosts: FakeHosts) -> AsyncIterator[Service]:
    async with open_service(login_settings(settings, app_hosts)) as opened:
        yield opened


async def leaked_installation_code(service: Service) -> dict[str, str]:
    """The victim installs the app; the redirect GitHub sends back (with its code) leaks."""
    victims = await service.start("GITHUB", user=VICTIM)
    location = await service.visit_host(victims["authorizationUrl"])
    await service.follow(location)  # the victim's browser carries on as usual
    return query_of(location)


async def test_a_leaked_installation_code_cannot_complete_the_attackers_state(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    leaked = await leaked_installation_code(app_service)
    mallorys = await app_service.start("GITHUB", user=MALLORY)

    result = await app_service.complete(
        {"state": mallorys["state"], "code": leaked["code"], "installationId": leaked["installation_id"]},
        user=MALLORY,
    )

    assert result["__typename"] == "OAuthExchangeError", result
    assert await connected_accounts(app_service, MALLORY) == []
    assert app_hosts.github.codes[leaked["code"]].used is False, "the code was never sent to GitHub"


async def test_a_leaked_installation_code_is_refused_even_after_the_attackers_own_installation_leg(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    leaked = await leaked_installation_code(app_service)
    mallorys = await app_service.start("GITHUB", user=MALLORY)
    # Mallory brings her own state through the setup redirect, so that the service sent her on to
    # the authorization with her challenge; then she brings the victim's code instead of hers.
    setup = {"installation_id": leaked["installation_id"], "setup_action": "install"}
    await app_service.http.get("/oauth/callback?" + urlencode(setup | {"state": mallorys["state"]}))
    through_the_callback = await app_service.http.get(
        "/oauth/callback?" + urlencode({"state": mallorys["state"], "code": leaked["code"]})
    )
    values: dict[str, Any] = handed_on(through_the_callback) | {"installationId": leaked["installation_id"]}

    result = await app_service.complete(values, user=MALLORY)

    assert result["__typename"] == "OAuthExchangeError"
    assert result["reason"] == "installation_code"
    assert await connected_accounts(app_service, MALLORY) == []
    assert app_hosts.github.codes[leaked["code"]].used is False


async def test_an_installation_code_that_came_back_without_a_usable_state_is_never_exchanged(
    app_service: Service, app_hosts: FakeHosts
) -> None:
    victims = await app_service.start("GITHUB", user=VICTIM)
    location = await app_service.visit_host(victims["authorizationUrl"])
    leaked = query_of(location)
    stateless = {k: v for k, v in leaked.items() if k != "state"}
    answered = await app_service.http.get("/oauth/callback?" + urlencode(stateless))
    assert answered.status_code == 400
    mallorys = await app_service.start("GITHUB", user=MALLORY)
    await app_service.http.get(
        "/oauth/callback?"
        + urlencode(
            {
                "installation_id": leaked["installation_id"],
                "setup_action": "install",
                "state": mallorys["state"],
            }
        )
    )

    result = await app_service.complete({"state": mallorys["state"], "code": leaked["code"]}, user=MALLORY)

    assert result["__typename"] == "OAuthExchangeError"
    assert result["reason"] == "installation_code"
    assert app_hosts.github.codes[leaked["code"]].used is False
