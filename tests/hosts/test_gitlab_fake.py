"""GitLab tokens checked against the fake GitLab where it answers unlike our first picture of it.

- An instance older than 15.5 has no ``/personal_access_tokens/self``; GitLab answers a route it does
  not have with ``404 {"error": "404 Not Found"}`` (``route :any, '*path'`` → ``error!`` in
  lib/api/api.rb), not the ``{"message": ...}`` of a missing resource. It is still GitLab.
- Service accounts are bot users (``"bot": true``) without the ``group_`` / ``project_`` prefix of
  group and project token bots (``service_account_group_345_<hash>`` in GitLab's
  doc/api/group_service_accounts.md); their tokens are personal access tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.domain.errors import InsufficientRoleError
from app.domain.models import GitProvider, HostEndpoint, RepositoryAccess, TokenKind
from app.hosts.gitlab.client import GitLabHost
from app.hosts.gitlab.constants import REQUIRED_SCOPES
from app.net.client import RetryPolicy, Upstream
from tests.fakes import scenarios
from tests.fakes._gitlab_models import DEVELOPER, MAINTAINER
from tests.fakes.gitlab import FakeGitLab

BASE = "http://gitlab.test"
ENDPOINT = HostEndpoint(GitProvider.GITLAB, "gitlab.test", BASE, f"{BASE}/api/v4")
SERVICE_TOKEN = "glpat-" + "ServiceAccount".ljust(20, "0")


@pytest.fixture
def gitlab() -> FakeGitLab:
    return scenarios.default_gitlab(FakeGitLab(), repositories=4)


@pytest.fixture
async def host(gitlab: FakeGitLab) -> AsyncIterator[GitLabHost]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gitlab.app)) as client:
        yield GitLabHost(Upstream(client, retry=RetryPolicy(attempts=1)), ENDPOINT)


async def test_an_instance_older_than_15_5_is_still_recognised_as_gitlab(
    gitlab: FakeGitLab, host: GitLabHost
) -> None:
    gitlab.version_below_15_5 = True

    verified = await host.verify_token(scenarios.GITLAB_PERSONAL_TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_PERSONAL
    assert verified.account.login == scenarios.GITLAB_USER
    # Such an instance cannot describe a token: its scopes are reported as not checked.
    assert verified.unverified_permissions == REQUIRED_SCOPES
    assert gitlab.count("GET", "/api/v4/personal_access_tokens/self") == 1


async def test_a_service_account_token_is_a_personal_token(gitlab: FakeGitLab, host: GitLabHost) -> None:
    account = gitlab.add_service_account(group="acme")
    gitlab.add_member(account, "acme", MAINTAINER)
    gitlab.add_personal_token(SERVICE_TOKEN, account, list(REQUIRED_SCOPES))

    verified = await host.verify_token(SERVICE_TOKEN)

    assert verified.token_kind is TokenKind.GITLAB_PERSONAL
    assert verified.account.bot is True
    assert verified.repository_access is RepositoryAccess.ALL  # whatever the account is a member of
    assert verified.resource is None
    # Its tokens are not on the signed-in user's own token page.
    assert verified.manage_access_url is None


async def test_a_service_account_below_maintainer_is_refused_by_role(
    gitlab: FakeGitLab, host: GitLabHost
) -> None:
    account = gitlab.add_service_account("deploy-robot")
    gitlab.add_member(account, "acme", DEVELOPER)
    gitlab.add_personal_token(SERVICE_TOKEN, account, list(REQUIRED_SCOPES))

    with pytest.raises(InsufficientRoleError) as raised:
        await host.verify_token(SERVICE_TOKEN)

    assert raised.value.actual == "Developer"
    assert raised.value.message.startswith("The GitLab user of this token has the Developer role")
