"""Ready-made worlds for the fakes, and seed documents (JSON) that describe others.

The default scenarios use the well-known tokens below, so a test or benchmark that starts
``python -m tests.fakes github`` in another process knows what to send.

GitHub seed document (every key optional)::

    {"config": {"client_id": "...", "client_secret": "...", "callback_urls": ["..."], "approving_user": "octocat"},
     "users": ["octocat", {"login": "hubot", "name": "Hubot"}],
     "orgs": [{"login": "acme", "members": {"octocat": "admin"}}],
     "repositories": [{"owner": "octocat", "count": 50, "private_ratio": 0.5, "archived_every": 10},
                      {"owner": "acme", "name": "api", "private": true}],
     "branches": [{"repository": "acme/api", "names": ["release/1.0"], "protected": ["release/1.0"]}],
     "classic_tokens": [{"token": "ghp_...", "user": "octocat", "scopes": ["repo"], "expires": "2030-01-01T00:00:00Z"}],
     "fine_grained_tokens": [{"token": "github_pat_...", "user": "octocat", "permissions": {"contents": "write"},
                              "repositories": "all"}],
     "installations": [{"user": "octocat", "repository_selection": "selected", "repositories": ["octocat/repo-0001"]}]}

GitLab seed document::

    {"config": {"client_id": "...", "redirect_uris": ["..."], "approving_user": "alice"},
     "users": ["alice"],
     "groups": [{"path": "acme"}, {"path": "platform", "parent": "acme"}],
     "projects": [{"namespace": "acme", "count": 30}, {"namespace": "alice", "name": "dotfiles"}],
     "branches": [{"project": "acme/project-0001", "names": ["release/1.0"], "protected": []}],
     "members": [{"user": "alice", "target": "acme", "access_level": 50}],
     "personal_tokens": [{"token": "glpat-...", "user": "alice", "scopes": ["api"]}],
     "group_tokens": [{"token": "glpat-...", "group": "acme", "scopes": ["api"], "access_level": 40}],
     "project_tokens": [{"token": "glpat-...", "project": "acme/project-0001", "scopes": ["api"], "access_level": 40}]}
"""

from __future__ import annotations

from typing import Any

from tests.fakes._gitlab_models import MAINTAINER, OWNER
from tests.fakes.github import FakeGitHub
from tests.fakes.gitlab import FakeGitLab

GITHUB_USER = "octocat"
GITHUB_CLASSIC_TOKEN = "ghp_" + "FakeClassicToken".ljust(36, "0")
GITHUB_FINE_GRAINED_TOKEN = "github_pat_" + "FakeFineGrained".ljust(82, "0")
GITHUB_FULL_PERMISSIONS = {
    "administration": "write",
    "statuses": "write",
    "contents": "write",
    "webhooks": "write",
}

GITLAB_USER = "alice"
GITLAB_GROUP = "acme"
GITLAB_PERSONAL_TOKEN = "glpat-" + "FakePersonalToken".ljust(20, "0")
GITLAB_GROUP_TOKEN = "glpat-" + "FakeGroupToken".ljust(20, "0")
GITLAB_REQUIRED_SCOPES = ["api", "read_repository", "write_repository"]


def default_github(fake: FakeGitHub, *, repositories: int = 100) -> FakeGitHub:
    """``octocat`` with ``repositories`` repositories (half private, every tenth archived), a classic token
    with ``repo, admin:repo_hook`` and a fine-grained token with every permission the product needs."""
    fake.add_user(GITHUB_USER, "The Octocat")
    fake.add_user("hubot", "Hubot")
    fake.add_repositories(GITHUB_USER, repositories, private_ratio=0.5, archived_every=10)
    fake.add_classic_token(GITHUB_CLASSIC_TOKEN, GITHUB_USER, ["repo", "admin:repo_hook"])
    fake.add_fine_grained_token(GITHUB_FINE_GRAINED_TOKEN, GITHUB_USER, GITHUB_FULL_PERMISSIONS, "all")
    return fake


def default_gitlab(fake: FakeGitLab, *, repositories: int = 100) -> FakeGitLab:
    """``alice`` owning group ``acme`` (with subgroup ``acme/platform``); the projects are split between
    her namespace, the group and the subgroup; a personal token and a Maintainer group token."""
    fake.add_user(GITLAB_USER, "Alice Liddell")
    fake.add_user("bob", "Bob")
    group = fake.add_group(GITLAB_GROUP)
    subgroup = fake.add_group("platform", parent=group)
    fake.add_member(GITLAB_USER, group, OWNER)
    third = repositories // 3
    fake.add_projects(GITLAB_USER, third, name_prefix="personal")
    fake.add_projects(group, third, archived_every=10)
    fake.add_projects(subgroup, repositories - 2 * third, name_prefix="service")
    fake.add_personal_token(GITLAB_PERSONAL_TOKEN, GITLAB_USER, GITLAB_REQUIRED_SCOPES)
    fake.add_group_token(GITLAB_GROUP_TOKEN, group, GITLAB_REQUIRED_SCOPES, MAINTAINER)
    return fake


def _configure(fake: Any, config: dict[str, Any], allowed: set[str]) -> None:
    for name, value in config.items():
        if name not in allowed:
            raise ValueError(f"unknown config key {name!r}")
        setattr(fake, name, value)


def seed_github(fake: FakeGitHub, data: dict[str, Any]) -> None:
    with fake.lock:
        config = dict(data.get("config", {}))
        if "app_slug" in config and "expiring" not in config:
            config["expiring"] = config["app_slug"] is not None
        extra = {"client_id", "client_secret", "app_slug", "expiring", "app_permissions", "html_url"}
        _configure(fake, config, set(fake.CONFIGURABLE) | extra)
        for user in data.get("users", []):
            spec = {"login": user} if isinstance(user, str) else user
            fake.add_user(spec["login"], spec.get("name"))
        for org in data.get("orgs", []):
            fake.add_org(org["login"], org.get("members"))
        for spec in data.get("repositories", []):
            spec = dict(spec)
            owner = spec.pop("owner")
            if "count" in spec:
                fake.add_repositories(owner, spec.pop("count"), **spec)
            else:
                fake.add_repository(owner, spec.pop("name"), **spec)
        for spec in data.get("branches", []):
            fake.add_branches(spec["repository"], spec["names"], protected=spec.get("protected"))
        for spec in data.get("classic_tokens", []):
            fake.add_classic_token(spec["token"], spec["user"], spec.get("scopes", []), spec.get("expires"))
        for spec in data.get("fine_grained_tokens", []):
            fake.add_fine_grained_token(
                spec["token"],
                spec["user"],
                spec.get("permissions", {}),
                spec.get("repositories", "all"),
                owner=spec.get("owner"),
                expires=spec.get("expires"),
            )
        for spec in data.get("installations", []):
            fake.add_installation(
                spec["user"],
                spec.get("repository_selection", "all"),
                spec.get("repositories"),
                account=spec.get("account"),
            )


def seed_gitlab(fake: FakeGitLab, data: dict[str, Any]) -> None:
    with fake.lock:
        _configure(
            fake,
            data.get("config", {}),
            set(fake.CONFIGURABLE) | {"client_id", "client_secret", "oauth_scopes", "version"},
        )
        for user in data.get("users", []):
            spec = {"username": user} if isinstance(user, str) else user
            fake.add_user(spec["username"], spec.get("name"), bot=bool(spec.get("bot", False)))
        for spec in data.get("groups", []):
            fake.add_group(
                spec["path"],
                spec.get("name"),
                parent=spec.get("parent"),
                visibility=spec.get("visibility", "private"),
            )
        for spec in data.get("projects", []):
            spec = dict(spec)
            namespace = spec.pop("namespace")
            if "count" in spec:
                fake.add_projects(namespace, spec.pop("count"), **spec)
            else:
                fake.add_project(namespace, spec.pop("name"), **spec)
        for spec in data.get("branches", []):
            fake.add_branches(spec["project"], spec["names"], protected=spec.get("protected"))
        for spec in data.get("members", []):
            fake.add_member(spec["user"], spec["target"], spec["access_level"])
        for spec in data.get("personal_tokens", []):
            fake.add_personal_token(
                spec["token"],
                spec["user"],
                spec.get("scopes", []),
                spec.get("expires_at"),
                spec.get("active", True),
                spec.get("revoked", False),
            )
        for spec in data.get("group_tokens", []):
            fake.add_group_token(
                spec["token"],
                spec["group"],
                spec.get("scopes", []),
                spec.get("access_level", MAINTAINER),
                spec.get("expires_at"),
            )
        for spec in data.get("project_tokens", []):
            fake.add_project_token(
                spec["token"],
                spec["project"],
                spec.get("scopes", []),
                spec.get("access_level", MAINTAINER),
                spec.get("expires_at"),
            )
