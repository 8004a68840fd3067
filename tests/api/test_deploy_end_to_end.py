"""End to end, as the platform uses it: the user links a repository; the host delivers a signed push; the
deployer reads it as an event and reports the build on the commit; the builder gets clone credentials
that the host's Git server accepts for that repository only; the user unlinks, and hook and key are gone.

The Git servers are the fakes' models (``tests/fakes/_github_app.py``, ``_gitlab_deploy.py``): HTTPS with
Basic credentials checked against the repository, and SSH public-key authentication (a signature of a
challenge by the deploy key, the host's own signature checked against ``sshKnownHosts``).
"""

from __future__ import annotations

import base64
import logging
import os
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from app.settings.model import Settings
from app.settings.values import GitHubAppCredentials, Secret
from tests.deploy_support import (
    CLONE,
    GITHUB_REPOSITORY,
    GITHUB_TOKEN,
    GITLAB_PROJECT,
    GITLAB_TOKEN,
    SET_STATUS,
    UNLINK,
    World,
    deploy_world,
    gitlab_project_id,
)
from tests.fakes.github import FakeGitHub


async def push_and_read(world: World, fake: Any, link: dict[str, Any], target: Any) -> dict[str, Any]:
    fake.push(target)
    await world.deliver(fake)
    events = (await world.events(link["id"]))["events"]["edges"]
    return dict(events[-1]["node"])


async def status(world: World, link: dict[str, Any], sha: str, state: str, **extra: Any) -> dict[str, Any]:
    data = await world.deployer.data(
        SET_STATUS,
        {"input": {"linkId": link["id"], "sha": sha, "state": state, "context": "deploy/production"} | extra},
    )
    return dict(data["setCommitStatus"])


async def clone_credentials(world: World, link: dict[str, Any]) -> dict[str, Any]:
    data = await world.builder.data(CLONE, {"id": link["id"]})
    issued = dict(data["cloneCredentials"])
    assert issued["__typename"] == "CloneCredentials", issued
    return issued


async def git_https(world: World, fake_app: Any, base: str, path: str, username: str, password: str) -> int:
    """What ``git clone https://…`` gets from the fake host's Git server for ``path``."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_app), base_url=base) as git:
        response = await git.get(
            f"/{path}.git/info/refs", params={"service": "git-upload-pack"}, auth=(username, password)
        )
    return response.status_code


async def git_ssh(fake: FakeGitHub, full_name: str, private_key: str, known_hosts: str) -> int:
    """What ``ssh git@github… git-upload-pack owner/name.git`` gets, modelled: the key signs a challenge,
    and the host's answer is checked against ``known_hosts``."""
    key = serialization.load_ssh_private_key(private_key.encode(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    challenge = os.urandom(32)
    body = {
        "public_key": public.decode(),
        "challenge": base64.b64encode(challenge).decode(),
        "signature": base64.b64encode(key.sign(challenge)).decode(),
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app), base_url="http://github.test"
    ) as ssh:
        response = await ssh.post(f"/_ssh/{full_name}.git", json=body)
    if response.status_code == 200:
        host_key = response.json()["host_key"]
        assert any(line.split(" ", 1)[1] == host_key for line in known_hosts.strip().splitlines()), (
            "host unknown"
        )
        verifier = serialization.load_ssh_public_key(host_key.encode())
        assert isinstance(verifier, ed25519.Ed25519PublicKey)
        verifier.verify(base64.b64decode(response.json()["host_signature"]), challenge)
    return response.status_code


async def test_github_with_a_deploy_key(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    async with deploy_world(settings) as world:
        github = world.github
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)
        await world.deliver(github)  # the ping

        event = await push_and_read(world, github, link, GITHUB_REPOSITORY)
        reported = await status(
            world,
            link,
            event["after"].upper(),
            "PENDING",
            description="b" * 300,
            targetUrl="https://app.example.com/builds/1",
        )
        caplog.set_level(logging.INFO, logger="app.audit")
        issued = await clone_credentials(world, link)

        assert event["kind"] == "PUSH" and event["ref"] == "refs/heads/main"
        assert reported == {
            "__typename": "CommitStatus",
            "sha": event["after"],
            "state": "PENDING",
            "context": "deploy/production",
        }
        [sent] = github.repository(GITHUB_REPOSITORY).statuses[event["after"]]
        assert sent["state"] == "pending" and len(sent["description"]) == 140  # GitHub keeps 140 characters
        assert sent["target_url"] == "https://app.example.com/builds/1"
        assert issued["url"] == f"git@github.test:{GITHUB_REPOSITORY}.git"
        assert issued["username"] is None and issued["password"] is None and issued["expiresAt"] is None
        assert issued["sshPrivateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert issued["sshKnownHosts"] == f"github.test {github.ssh_host_public_key()}\n"
        assert (
            await git_ssh(github, GITHUB_REPOSITORY, issued["sshPrivateKey"], issued["sshKnownHosts"]) == 200
        )
        assert (
            await git_ssh(github, "octocat/repo-0004", issued["sshPrivateKey"], issued["sshKnownHosts"])
            == 403
        )
        assert GITHUB_TOKEN not in str(issued), "never the user's own token"
        [line] = [r for r in caplog.records if r.name == "app.audit"]
        assert line.link_id and line.caller == "builder" and line.owner == "alice"  # type: ignore[attr-defined]
        assert line.repository == GITHUB_REPOSITORY and line.credential == "DEPLOY_KEY"  # type: ignore[attr-defined]
        assert issued["sshPrivateKey"] not in str(vars(line)) and "PRIVATE KEY" not in str(vars(line))

        unlinked = (await world.alice.data(UNLINK, {"id": link["id"]}))["unlinkRepository"]
        assert unlinked["hostCleanedUp"] is True
        assert github.repository(GITHUB_REPOSITORY).hooks == []
        assert (
            await git_ssh(github, GITHUB_REPOSITORY, issued["sshPrivateKey"], issued["sshKnownHosts"]) == 403
        )


def app_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def github_app_key() -> tuple[str, str]:
    return app_key()


async def test_github_with_the_app_installed_mints_a_token_for_that_repository_only(
    settings: Settings, github_app_key: tuple[str, str]
) -> None:
    private, public = github_app_key
    app = GitHubAppCredentials(app_id="4242", private_key=Secret(private))
    async with deploy_world(settings, github_app=app) as world:
        github = world.github
        github.app_public_pem = public
        github.add_installation("octocat", "all")
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)

        issued = await clone_credentials(world, link)

        assert github.repository(GITHUB_REPOSITORY).deploy_keys == [], (
            "no deploy key where the app is installed"
        )
        assert issued["url"] == f"http://github.test/{GITHUB_REPOSITORY}.git"
        assert issued["username"] == "x-access-token" and issued["password"].startswith("ghs_")
        assert issued["expiresAt"] is not None and issued["sshPrivateKey"] is None
        assert github.app_jwt_count >= 2, "the app JWT (RS256) was checked for the installation and the token"
        [minted] = github.installation_tokens.values()
        assert minted["repositories"] == [GITHUB_REPOSITORY] and minted["permissions"] == {"contents": "read"}
        accepted = await git_https(
            world, github.app, "http://github.test", GITHUB_REPOSITORY, "x-access-token", issued["password"]
        )
        other = await git_https(
            world, github.app, "http://github.test", "octocat/repo-0004", "x-access-token", issued["password"]
        )
        assert (accepted, other) == (200, 401)


async def test_when_the_app_is_uninstalled_the_builder_falls_back_to_a_deploy_key(
    settings: Settings, github_app_key: tuple[str, str]
) -> None:
    private, public = github_app_key
    app = GitHubAppCredentials(app_id="4242", private_key=Secret(private))
    async with deploy_world(settings, github_app=app) as world:
        github = world.github
        github.app_public_pem = public
        installation = github.add_installation("octocat", "all")
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)
        del github.installations[installation.id]

        issued = await clone_credentials(world, link)

        assert issued["sshPrivateKey"] is not None and issued["url"].startswith("git@")
        assert len(github.repository(GITHUB_REPOSITORY).deploy_keys) == 1


async def test_gitlab_with_a_deploy_token(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        gitlab = world.gitlab
        project = gitlab.project(GITLAB_PROJECT)
        integration = await world.connect("GITLAB", GITLAB_TOKEN)
        link = await world.link(integration, gitlab_project_id(world, GITLAB_PROJECT))

        event = await push_and_read(world, gitlab, link, project)
        failed = await status(world, link, event["after"], "FAILURE")
        again = await status(world, link, event["after"], "ERROR")  # the same GitLab state: already there
        issued = await clone_credentials(world, link)

        assert failed["state"] == "FAILURE" and again["__typename"] == "CommitStatus"
        assert [s["status"] for s in project.statuses[event["after"]]] == ["failed"]
        [token] = project.deploy_tokens
        assert issued["url"] == f"http://gitlab.test/{GITLAB_PROJECT}.git"
        assert issued["username"] == token.username and issued["password"] == token.token
        assert GITLAB_TOKEN not in str(issued)
        other = gitlab.project("acme/project-0001")
        other.visibility = "private"
        assert (
            await git_https(
                world,
                gitlab.app,
                "http://gitlab.test",
                GITLAB_PROJECT,
                issued["username"],
                issued["password"],
            )
            == 200
        )
        assert (
            await git_https(
                world,
                gitlab.app,
                "http://gitlab.test",
                "acme/project-0001",
                issued["username"],
                issued["password"],
            )
            == 401
        )

        await world.alice.data(UNLINK, {"id": link["id"]})
        assert project.deploy_tokens == [] and project.hooks == []
        assert (
            await git_https(
                world,
                gitlab.app,
                "http://gitlab.test",
                GITLAB_PROJECT,
                issued["username"],
                issued["password"],
            )
            == 401
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sha": "abc"}, "sha"),
        ({"sha": "g" * 40}, "sha"),
        ({"context": "  "}, "context"),
        ({"context": "x" * 256}, "context"),
        ({"targetUrl": "javascript:alert(1)"}, "targetUrl"),
        ({"targetUrl": "file:///etc/passwd"}, "targetUrl"),
    ],
)
async def test_a_status_no_host_would_take_is_bad_user_input_before_anything_is_sent(
    settings: Settings, change: dict[str, str], field: str
) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)
        world.github.clear_requests()
        variables = {"linkId": link["id"], "sha": "a" * 40, "state": "SUCCESS", "context": "deploy"} | change

        body = await world.deployer.raw(SET_STATUS, {"input": variables})

        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT" and f"`{field}`" in error["message"]
        assert world.github.count() == 0


async def test_a_commit_the_repository_does_not_have_is_not_found(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)

        result = await status(world, link, "c" * 40, "SUCCESS")

        assert result["__typename"] == "NotFoundError" and "c" * 40 in result["message"]


async def test_a_commit_at_githubs_limit_of_statuses_is_not_reported_as_unknown(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)
        repo = world.github.repository(GITHUB_REPOSITORY)
        sha = repo.branches["main"].sha
        repo.statuses[sha] = [{"context": "deploy/production", "state": "pending"}] * 1000

        result = await status(world, link, sha, "SUCCESS")

        assert result["__typename"] == "ProviderUnavailableError", result
        assert "maximum number of statuses" in result["message"] and "no commit" not in result["message"]


async def test_a_connection_that_lost_commit_statuses_is_told_what_is_missing(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        token = "github_pat_" + "NoStatuses".ljust(82, "0")
        permissions = {
            "administration": "write",
            "statuses": "write",
            "contents": "write",
            "webhooks": "write",
        }
        world.github.add_fine_grained_token(token, "octocat", permissions, "all")
        integration = await world.connect("GITHUB", token)
        link = await world.link(integration, GITHUB_REPOSITORY)
        world.github.tokens[token].permissions["statuses"] = "read"
        sha = world.github.repository(GITHUB_REPOSITORY).branches["main"].sha

        result = await status(world, link, sha, "SUCCESS")

        assert result["__typename"] == "MissingPermissionsError" and result["missing"] == ["statuses:write"]


async def test_clone_credentials_for_another_users_link_are_not_found(settings: Settings) -> None:
    async with deploy_world(settings) as world:
        integration = await world.connect("GITHUB", GITHUB_TOKEN)
        link = await world.link(integration, GITHUB_REPOSITORY)
        for_bob = world.caller("builder", scope="git:clone", act_for="bob")

        result = (await for_bob.data(CLONE, {"id": link["id"]}))["cloneCredentials"]

        assert result["__typename"] == "NotFoundError"


def test_settings_refuse_a_github_app_key_that_is_not_an_rsa_pem(github_app_key: tuple[str, str]) -> None:
    from app.domain.errors import ConfigurationError

    private, _ = github_app_key
    one_line = private.replace("\n", "\\n")
    parsed = Settings.from_env({"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY": one_line})
    assert parsed.github_app is not None and parsed.github_app.private_key.reveal() == private
    for bad in (
        {"GITHUB_APP_ID": "4242"},
        {"GITHUB_APP_ID": "x", "GITHUB_APP_PRIVATE_KEY": private},
        {"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY": "not a key"},
    ):
        with pytest.raises(ConfigurationError) as caught:
            Settings.from_env(bad)
        assert "PRIVATE KEY" not in str(caught.value)


def test_the_github_app_key_may_come_from_a_file(github_app_key: tuple[str, str], tmp_path: Any) -> None:
    private, _ = github_app_key
    path = tmp_path / "app.pem"
    path.write_text(private)

    parsed = Settings.from_env({"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY_FILE": str(path)})

    assert parsed.github_app is not None and parsed.github_app.private_key.reveal() == private.rstrip("\n")
