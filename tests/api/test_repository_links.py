"""Linking a repository: the webhook and the builder's read access at the host, idempotent, repaired.

Against the fake GitHub and GitLab in process (``tests.deploy_support``); every rule the fakes follow has
its source next to it in ``tests/fakes``.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest

from app.settings.model import Settings
from tests.deploy_support import (
    GITHUB_REPOSITORY,
    GITHUB_TOKEN,
    GITLAB_PROJECT,
    GITLAB_TOKEN,
    PUBLIC_URL,
    SET_STATUS,
    UNLINK,
    deploy_world,
    gitlab_project_id,
)

LINKS = "{ repositoryLinks { id branch status webhookUrl repository { fullName } } }"


async def test_linking_a_github_repository_adds_a_push_hook_and_a_read_only_deploy_key(
    settings: Settings,
) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)

        link = await world.link(integration, GITHUB_REPOSITORY)

        assert link["__typename"] == "RepositoryLink", link
        assert link["status"] == "ACTIVE" and link["statusMessage"] is None
        assert link["branch"] == "main"  # the default branch
        assert link["repository"]["fullName"] == GITHUB_REPOSITORY
        repo = world.github.repository(GITHUB_REPOSITORY)
        [hook] = repo.hooks
        assert hook.url == link["webhookUrl"] and hook.url.startswith(f"{PUBLIC_URL}/webhooks/github/")
        assert hook.events == ["push"] and hook.active and hook.content_type == "json"
        assert hook.secret and len(hook.secret) >= 32
        [key] = repo.deploy_keys
        assert key.read_only and key.key.startswith("ssh-ed25519 ")
        stored = await world.app.services.database.db["repository_links"].find_one({})
        assert stored is not None
        assert hook.secret not in str(stored), "the webhook secret is stored encrypted"
        assert str(stored["secrets"]["webhookSecret"]).startswith("enc:v2:")
        assert str(stored["secrets"]["sshPrivateKey"]).startswith("enc:v2:")
        listed = await world.alice.data(LINKS)
        assert [entry["id"] for entry in listed["repositoryLinks"]] == [link["id"]]


async def test_the_webhook_url_is_unguessable_from_another_link(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        first = await world.link(integration, "octocat/repo-0002")
        second = await world.link(integration, "octocat/repo-0004")

        ids = [link["webhookUrl"].rsplit("/", 1)[1] for link in (first, second)]
        assert all(len(i) >= 22 for i in ids)
        assert ids[0][:8] != ids[1][:8], "random, not a counter or a timestamp"


async def test_linking_a_gitlab_project_adds_a_hook_for_pushes_and_tags_and_a_read_only_deploy_token(
    settings: Settings,
) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITLAB", GITLAB_TOKEN)

        link = await world.link(integration, gitlab_project_id(world, GITLAB_PROJECT), branch="develop")

        assert link["__typename"] == "RepositoryLink", link
        assert link["branch"] == "develop" and link["repository"]["fullName"] == GITLAB_PROJECT
        project = world.gitlab.project(GITLAB_PROJECT)
        [hook] = project.hooks
        assert hook.url == link["webhookUrl"] and "/webhooks/gitlab/" in hook.url
        assert hook.push_events and hook.tag_push_events and hook.enable_ssl_verification
        [token] = project.deploy_tokens
        assert token.scopes == ["read_repository"]


async def test_linking_again_returns_the_same_link_and_adds_nothing(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        first = await world.link(integration, GITHUB_REPOSITORY)

        again = await world.link(integration, GITHUB_REPOSITORY)

        assert again["id"] == first["id"] and again["webhookUrl"] == first["webhookUrl"]
        repo = world.github.repository(GITHUB_REPOSITORY)
        assert len(repo.hooks) == 1 and len(repo.deploy_keys) == 1


async def test_linking_again_repairs_a_hook_and_a_key_deleted_at_the_host(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        first = await world.link(integration, GITHUB_REPOSITORY)
        repo = world.github.repository(GITHUB_REPOSITORY)
        secret = repo.hooks[0].secret
        repo.hooks.clear()
        repo.deploy_keys.clear()

        again = await world.link(integration, GITHUB_REPOSITORY)

        assert again["id"] == first["id"] and again["status"] == "ACTIVE"
        [hook] = repo.hooks
        assert hook.url == first["webhookUrl"] and hook.secret == secret
        assert len(repo.deploy_keys) == 1


async def test_linking_again_repairs_a_gitlab_deploy_token_revoked_at_the_host(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITLAB", GITLAB_TOKEN)
        project_id = gitlab_project_id(world, GITLAB_PROJECT)
        await world.link(integration, project_id)
        project = world.gitlab.project(GITLAB_PROJECT)
        project.deploy_tokens[0].revoked = True

        await world.link(integration, project_id)

        assert [t.revoked for t in project.deploy_tokens] == [True, False]


async def test_concurrent_links_of_one_repository_make_one_link_and_one_hook(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)

        results = await asyncio.gather(*(world.link(integration, GITHUB_REPOSITORY) for _ in range(5)))

        assert {r["__typename"] for r in results} == {"RepositoryLink"}
        assert len({r["id"] for r in results}) == 1
        repo = world.github.repository(GITHUB_REPOSITORY)
        assert len(repo.hooks) == 1 and len(repo.deploy_keys) == 1


async def test_a_user_without_admin_rights_is_told_what_is_missing_where(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        world.github.add_collaborator(GITHUB_REPOSITORY, "hubot", "write")
        token = "ghp_" + "HubotWrites".ljust(36, "0")
        world.github.add_classic_token(token, "hubot", ["repo", "admin:repo_hook"])
        integration = await world.connect("GITHUB", token, user=world.bob)

        link = await world.link(integration, GITHUB_REPOSITORY, user=world.bob)

        assert link["__typename"] == "MissingPermissionsError", link
        assert link["missing"] == [f"admin on {GITHUB_REPOSITORY}"]
        assert GITHUB_REPOSITORY in link["message"] and "admin" in link["message"]
        assert world.github.repository(GITHUB_REPOSITORY).hooks == []
        assert (await world.bob.data(LINKS))["repositoryLinks"] == []


async def test_a_gitlab_developer_is_told_the_maintainer_role_is_needed(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        from tests.fakes._gitlab_models import DEVELOPER, MAINTAINER

        world.gitlab.add_member("bob", world.gitlab.add_group("bobs"), MAINTAINER)  # Maintainer elsewhere
        world.gitlab.add_member("bob", GITLAB_PROJECT, DEVELOPER)
        token = "glpat-" + "BobDeveloper".ljust(20, "0")
        world.gitlab.add_personal_token(token, "bob", ["api", "read_repository", "write_repository"])
        integration = await world.connect("GITLAB", token, user=world.bob)

        link = await world.link(integration, gitlab_project_id(world, GITLAB_PROJECT), user=world.bob)

        assert link["__typename"] == "MissingPermissionsError", link
        assert link["missing"] == [f"Maintainer on {GITLAB_PROJECT}"]


async def test_a_fine_grained_token_without_webhooks_write_is_told_so_and_nothing_stays(
    settings: Settings,
) -> None:
    async with deploy_world(settings) as world:
        token = "github_pat_" + "NoHooks".ljust(82, "0")
        permissions = {
            "administration": "write",
            "statuses": "write",
            "contents": "write",
            "webhooks": "write",
        }
        world.github.add_fine_grained_token(token, "octocat", permissions, "all")
        integration = await world.connect("GITHUB", token)
        world.github.tokens[token].permissions["repository_hooks"] = "read"  # narrowed after connecting

        link = await world.link(integration, GITHUB_REPOSITORY)

        assert link["__typename"] == "MissingPermissionsError", link
        assert link["missing"] == ["webhooks:write"] and "Webhooks: write" in link["message"]
        assert world.github.repository(GITHUB_REPOSITORY).deploy_keys == []
        assert (await world.alice.data(LINKS))["repositoryLinks"] == [], "a failed link leaves no link behind"


@pytest.mark.parametrize("refusal", ["forbidden", "validation"])
async def test_an_organization_that_forbids_deploy_keys_is_named_and_the_hook_is_taken_back(
    settings: Settings, refusal: Literal["forbidden", "validation"]
) -> None:
    async with deploy_world(settings) as world:
        world.github.add_org("acme", {"octocat": "admin"})
        world.github.account("acme").deploy_keys_allowed = False
        world.github.account("acme").deploy_keys_refusal = refusal
        world.github.add_repository("acme", "api", private=True)
        integration = await world.connect("GITHUB", GITHUB_TOKEN)

        link = await world.link(integration, "acme/api")

        assert link["__typename"] == "MissingPermissionsError", link
        assert "organization can forbid deploy keys" in link["message"] and "acme/api" in link["message"]
        repo = world.github.repository("acme/api")
        assert repo.hooks == [] and repo.deploy_keys == []


async def test_gitlab_refusing_a_local_webhook_url_says_public_url_must_be_reachable(
    settings: Settings,
) -> None:
    async with deploy_world(settings, public_url="http://127.0.0.1:8000") as world:
        integration = await world.connect("GITLAB", GITLAB_TOKEN)

        link = await world.link(integration, gitlab_project_id(world, GITLAB_PROJECT))

        assert link["__typename"] == "ProviderUnavailableError", link
        assert "PUBLIC_URL" in link["message"] and "Invalid url given" in link["message"]
        assert world.gitlab.project(GITLAB_PROJECT).deploy_tokens == []


async def test_an_unknown_or_foreign_repository_or_integration_is_not_found(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)

        missing = await world.link(integration, "octocat/nope")
        foreign = await world.link(integration, GITHUB_REPOSITORY, user=world.bob)

        assert missing["__typename"] == foreign["__typename"] == "NotFoundError"


async def test_a_branch_name_git_refuses_is_bad_user_input(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        from app.graphql.types.node import from_global_id
        from app.graphql.types.repository import repository_global_id
        from tests.deploy_support import LINK

        local = from_global_id(integration)
        assert local is not None
        body = await world.alice.raw(
            LINK,
            {"input": {"repositoryId": repository_global_id(local[1], GITHUB_REPOSITORY), "branch": "a..b"}},
        )

        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert world.github.repository(GITHUB_REPOSITORY).hooks == []


async def test_unlinking_removes_hook_and_key_at_the_host_then_the_link(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)

        unlinked = (await world.alice.data(UNLINK, {"id": link["id"]}))["unlinkRepository"]

        assert unlinked == {
            "__typename": "UnlinkedRepository",
            "id": link["id"],
            "hostCleanedUp": True,
            "stayed": None,
        }
        repo = world.github.repository(GITHUB_REPOSITORY)
        assert repo.hooks == [] and repo.deploy_keys == []
        assert (await world.alice.data(LINKS))["repositoryLinks"] == []
        again = (await world.alice.data(UNLINK, {"id": link["id"]}))["unlinkRepository"]
        assert again["__typename"] == "NotFoundError"


async def test_unlinking_while_the_host_is_down_still_unlinks_and_says_what_stayed(
    settings: Settings,
) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITLAB", GITLAB_TOKEN)
        link = await world.link(integration, gitlab_project_id(world, GITLAB_PROJECT))
        world.gitlab.fail_next(503, count=10, path_prefix="/api/v4/projects")

        unlinked = (await world.alice.data(UNLINK, {"id": link["id"]}))["unlinkRepository"]

        assert unlinked["hostCleanedUp"] is False
        assert "the webhook and the deploy token" in unlinked["stayed"]
        assert GITLAB_PROJECT in unlinked["stayed"]
        assert (await world.alice.data(LINKS))["repositoryLinks"] == []


async def test_disconnecting_an_integration_unlinks_its_repositories_first(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        await world.link(integration, GITHUB_REPOSITORY)

        await world.alice.data(
            "mutation($id: ID!) { disconnectGitIntegration(input: {id: $id}) { __typename } }", {"id": integration}
        )

        assert (await world.alice.data(LINKS))["repositoryLinks"] == []
        assert world.github.repository(GITHUB_REPOSITORY).hooks == []


async def test_a_link_whose_connection_needs_reconnecting_shows_broken(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        await world.link(integration, GITHUB_REPOSITORY)
        world.github.revoke_token(GITHUB_TOKEN)
        await world.alice.data(
            "mutation($id: ID!) { verifyGitIntegration(input: {id: $id}) { __typename } }", {"id": integration}
        )

        [link] = (await world.alice.data("{ repositoryLinks { status statusMessage } }"))["repositoryLinks"]

        assert link["status"] == "BROKEN" and "connect it again" in link["statusMessage"]
        again = await world.link(integration, GITHUB_REPOSITORY)
        assert again["__typename"] == "NeedsReconnectError"


async def test_a_fine_grained_connection_linking_a_repository_gone_at_github_is_told_not_found(
    settings: Settings,
) -> None:
    # GitHub names the scopes an endpoint accepts (X-Accepted-OAuth-Scopes) on every answer, to tokens
    # without scopes too (recording user.github-app-token-empty-scopes): on a 404 it says nothing about
    # a fine-grained token, whose grants are permissions, not scopes.
    async with deploy_world(settings) as world:
        token = "github_pat_" + "Vanished".ljust(82, "0")
        permissions = {
            "administration": "write",
            "statuses": "write",
            "contents": "write",
            "webhooks": "write",
        }
        world.github.add_fine_grained_token(token, "octocat", permissions, "all")
        integration = await world.connect("GITHUB", token)

        link = await world.link(integration, "octocat/gone-meanwhile")

        assert link["__typename"] == "NotFoundError", link
        assert "scope" not in link["message"]


async def test_a_repository_renamed_at_github_after_linking_keeps_working_through_githubs_redirect(
    settings: Settings,
) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)
        repo = world.github.repository(GITHUB_REPOSITORY)
        world.github.rename_repository(repo, "renamed")  # the old name now answers 301 / 307
        sha = repo.branches["main"].sha

        status = await world.deployer.data(
            SET_STATUS,
            {"input": {"linkId": link["id"], "sha": sha, "state": "SUCCESS", "context": "deploy"}},
        )
        unlinked = await world.alice.data(UNLINK, {"id": link["id"]})

        assert status["setCommitStatus"]["__typename"] == "CommitStatus", status
        assert [s["state"] for s in repo.statuses[sha]] == ["success"]
        assert unlinked["unlinkRepository"]["hostCleanedUp"] is True, unlinked
        assert repo.hooks == [] and repo.deploy_keys == []
