"""Logins under the limits of issue 11: a client that leaves mid-refresh, and the integration limit.

- A request is cancelled when its client goes away (``app.disconnect``). A login's refresh token works
  once: if the refresh were cancelled after the host had spent it, the new pair would be lost and the
  login would need reconnecting. The refresh under way is shielded, so its answer is stored.
- ``completeGitOAuth`` for one account more than ``MAX_INTEGRATIONS_PER_USER`` answers
  ``LimitReachedError`` and stores nothing.

The fake hosts run on loopback (``tests.oauth_support``); logins are completed with ``completeGitOAuth``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

from app.settings.model import Settings
from tests.oauth_support import (
    COMPLETE_OAUTH,
    FakeHosts,
    Service,
    fake_hosts,
    login_settings,
    open_service,
    query_of,
)


@pytest.fixture
def hosts() -> Iterator[FakeHosts]:
    with fake_hosts() as found:
        yield found


@pytest.fixture
async def service(settings: Settings, hosts: FakeHosts) -> AsyncIterator[Service]:
    async with open_service(login_settings(settings, hosts)) as opened:
        yield opened


async def log_in_with_gitlab(service: Service, *, as_user: str = "alice") -> dict[str, Any]:
    """The browser's round trip through the fake GitLab, completed by the frontend."""
    authorization = await service.start("GITLAB", user=as_user)
    code = query_of(await service.visit_host(authorization["authorizationUrl"]))["code"]
    data = await service.execute(
        COMPLETE_OAUTH, {"input": {"state": authorization["state"], "code": code}}, user=as_user
    )
    result: dict[str, Any] = data["completeGitOAuth"]
    return result


async def test_a_refresh_under_way_when_the_client_leaves_is_still_stored(
    service: Service, hosts: FakeHosts
) -> None:
    hosts.gitlab.code_token_lifetime = 30  # due for renewal at the next use
    integration = await log_in_with_gitlab(service)
    assert integration["__typename"] == "Integration", integration
    before = await service.db["integrations"].find_one({})
    hosts.gitlab.hang_next(0.4, path_prefix="/oauth/token")
    exchanges = hosts.gitlab.count("POST", "/oauth/token")  # the login's own code exchange

    verifying = asyncio.create_task(service.verify(integration["id"]))
    while hosts.gitlab.count("POST", "/oauth/token") == exchanges:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # GitLab has the request and is working on it
    verifying.cancel()  # the client went away while GitLab was renewing the login
    with pytest.raises(asyncio.CancelledError):
        await verifying
    for _ in range(300):
        stored = await service.db["integrations"].find_one({})
        if stored["version"] > before["version"]:
            break
        await asyncio.sleep(0.01)

    assert hosts.gitlab.refresh_count == 1
    assert stored["secrets"] != before["secrets"]  # the renewed pair was kept
    again = await service.verify(integration["id"])
    assert again["status"] == "ACTIVE"
    assert hosts.gitlab.refresh_count == 1  # no second renewal: the first one's answer is in use


async def test_completing_a_login_beyond_the_limit_answers_limit_reached(
    settings: Settings, hosts: FakeHosts
) -> None:
    gitlab = hosts.gitlab
    gitlab.add_user("carl")
    gitlab.add_member("carl", gitlab.group("acme"), 50)
    configured = replace(login_settings(settings, hosts), max_integrations_per_user=1)
    async with open_service(configured) as service:
        first = await log_in_with_gitlab(service)
        assert first["__typename"] == "Integration", first
        gitlab.approving_user = "carl"  # the same platform user, another GitLab account

        over = await log_in_with_gitlab(service)

        assert over["__typename"] == "LimitReachedError", over
        assert over["code"] == "LIMIT_REACHED"
        assert [i["account"]["login"] for i in await service.integrations()] == ["alice"]
        # The token issued for the login that was not kept does not stay valid at GitLab.
        [(how, revoked)] = gitlab.revocations
        assert gitlab.valid_token(revoked) is None
        assert how == "revoke"
