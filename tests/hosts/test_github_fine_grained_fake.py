"""Fine-grained tokens checked against the fake GitHub, which answers as api.github.com does.

What makes these different from ``test_github_verify.py`` (recorded answers through respx): the fake
sends ``X-Accepted-GitHub-Permissions`` on every answer to a fine-grained token, refuses branch
protection of private repositories on GitHub Free with "Upgrade to GitHub Pro ...", refuses writes to
archived repositories and "Must have admin rights" to non-admins - each rule with its source in
``tests/fakes``. A 403 is a missing permission only when its message says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.domain.errors import MissingPermissionsError
from app.domain.models import GitProvider, HostEndpoint, TokenKind
from app.hosts.github.client import GitHubHost
from app.hosts.github.constants import REQUIRED_FINE_GRAINED_PERMISSIONS
from app.net.client import RetryPolicy, Upstream
from tests.fakes.github import FakeGitHub

BASE = "http://github.test"
ENDPOINT = HostEndpoint(GitProvider.GITHUB, "github.test", BASE, BASE)
FULL = {"administration": "write", "statuses": "write", "contents": "write", "webhooks": "write"}
TOKEN = "github_pat_" + "A1b2C3d4E5" * 8


@pytest.fixture
def github() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_user("octocat")  # GitHub Free, the default plan
    return fake


@pytest.fixture
async def host(github: FakeGitHub) -> AsyncIterator[GitHubHost]:
    transport = httpx.ASGITransport(app=github.app)
    async with httpx.AsyncClient(transport=transport) as client:
        yield GitHubHost(Upstream(client, retry=RetryPolicy(attempts=1)), ENDPOINT)


def probe_writes(github: FakeGitHub) -> list[str]:
    return [r.method for r in github.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


async def test_a_correct_token_whose_repositories_are_all_private_on_github_free_is_accepted(
    github: FakeGitHub, host: GitHubHost
) -> None:
    # Branch protection of these repositories answers "Upgrade to GitHub Pro ..." (with the
    # X-Accepted-GitHub-Permissions header every answer carries): that says nothing about the token.
    github.add_repositories("octocat", 3, private_ratio=1.0)
    github.add_fine_grained_token(TOKEN, "octocat", FULL, "all")

    verified = await host.verify_token(TOKEN)

    assert verified.token_kind is TokenKind.GITHUB_FINE_GRAINED
    assert list(verified.granted_permissions) == list(REQUIRED_FINE_GRAINED_PERMISSIONS)
    assert verified.unverified_permissions == ()
    assert github.count("GET", "/repos/octocat/repo-0001/keys") == 1  # Administration read, any plan
    assert github.side_effects == []


async def test_a_token_without_administration_is_still_refused_by_the_message(
    github: FakeGitHub, host: GitHubHost
) -> None:
    github.add_repositories("octocat", 2, private_ratio=1.0)
    without_administration = {k: v for k, v in FULL.items() if k != "administration"}
    github.add_fine_grained_token(TOKEN, "octocat", without_administration, "all")

    with pytest.raises(MissingPermissionsError) as raised:
        await host.verify_token(TOKEN)

    assert raised.value.missing == ["administration:read", "administration:write"]
    assert raised.value.unverified == []
    assert github.side_effects == []


async def test_writes_refused_because_the_repository_is_archived_are_unverified_not_missing(
    github: FakeGitHub, host: GitHubHost
) -> None:
    github.add_repositories("octocat", 2, archived_every=1)  # every repository archived
    github.add_fine_grained_token(TOKEN, "octocat", FULL, "all")

    verified = await host.verify_token(TOKEN)

    assert set(verified.unverified_permissions) == {
        "administration:write",
        "statuses:write",
        "contents:write",
    }
    assert "webhooks:write" in verified.granted_permissions
    assert github.side_effects == []


async def test_admin_refusals_of_a_user_who_is_not_admin_say_nothing_about_the_token(
    github: FakeGitHub, host: GitHubHost
) -> None:
    # "Must have admin rights to Repository." is about the user's role, not the token's grants.
    github.add_user("hubot")
    github.add_repositories("hubot", 1, private_ratio=1.0)
    github.add_collaborator("hubot/repo-0001", "octocat", "write")
    github.add_fine_grained_token(TOKEN, "octocat", FULL, ["hubot/repo-0001"], owner="hubot")

    verified = await host.verify_token(TOKEN)

    assert set(verified.unverified_permissions) == {
        "administration:read",
        "administration:write",
        "webhooks:read",
        "webhooks:write",
    }
    assert set(verified.granted_permissions) == {
        "statuses:read",
        "statuses:write",
        "contents:read",
        "contents:write",
    }


async def test_the_write_probes_are_sent_one_after_another(github: FakeGitHub, host: GitHubHost) -> None:
    github.add_repositories("octocat", 1)
    github.add_fine_grained_token(TOKEN, "octocat", FULL, "all")
    github.delay = 0.005  # each request stays in flight a moment, so concurrent writes would overlap

    await host.verify_token(TOKEN)

    assert sorted(probe_writes(github)) == ["PATCH", "POST", "POST", "PUT"]
    assert github.max_writes_in_flight == 1
    assert github.side_effects == []
