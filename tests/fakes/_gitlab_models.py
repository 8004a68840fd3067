"""The fake GitLab's state (plain dataclasses) and how the REST API renders it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from tests.fakes._http import iso

GUEST, PLANNER, REPORTER, DEVELOPER, MAINTAINER, OWNER = 10, 15, 20, 30, 40, 50
TokenKind = Literal["personal", "group", "project", "oauth"]


def commit_sha(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()  # noqa: S324 - an id, not security


@dataclass
class GitLabUser:
    id: int
    username: str
    name: str
    created_at: float
    bot: bool = False
    state: str = "active"

    @property
    def avatar_url(self) -> str:
        digest = hashlib.md5(self.username.encode()).hexdigest()  # noqa: S324
        return f"https://secure.gravatar.com/avatar/{digest}?s=80&d=identicon"

    def render_basic(self, web: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "name": self.name,
            "state": self.state,
            "locked": False,
            "avatar_url": self.avatar_url,
            "web_url": f"{web}/{self.username}",
        }

    def render(self, web: str) -> dict[str, Any]:
        return {
            **self.render_basic(web),
            "created_at": iso(self.created_at, millis=True),
            "bio": "",
            "location": None,
            "public_email": None,
            "bot": self.bot,
            "email": f"{self.username}@example.com"
            if not self.bot
            else f"{self.username}@noreply.example.com",
            "two_factor_enabled": False,
            "external": False,
            "private_profile": False,
            "can_create_group": not self.bot,
            "can_create_project": not self.bot,
        }


@dataclass
class GitLabGroup:
    id: int
    name: str
    path: str
    parent: GitLabGroup | None
    created_at: float
    visibility: str = "private"

    @property
    def full_path(self) -> str:
        return f"{self.parent.full_path}/{self.path}" if self.parent else self.path

    @property
    def full_name(self) -> str:
        return f"{self.parent.full_name} / {self.name}" if self.parent else self.name

    def lineage(self) -> list[GitLabGroup]:
        """This group and its ancestors, nearest first."""
        chain: list[GitLabGroup] = []
        group: GitLabGroup | None = self
        while group is not None:
            chain.append(group)
            group = group.parent
        return chain

    def render(self, web: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "web_url": f"{web}/groups/{self.full_path}",
            "name": self.name,
            "path": self.path,
            "description": "",
            "visibility": self.visibility,
            "full_name": self.full_name,
            "full_path": self.full_path,
            "created_at": iso(self.created_at, millis=True),
            "parent_id": self.parent.id if self.parent else None,
            "avatar_url": None,
        }

    def render_namespace(self, web: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "kind": "group",
            "full_path": self.full_path,
            "parent_id": self.parent.id if self.parent else None,
            "avatar_url": None,
            "web_url": f"{web}/groups/{self.full_path}",
        }


@dataclass
class GitLabBranch:
    name: str
    sha: str
    protected: bool = False


@dataclass
class GitLabProject:
    id: int
    name: str
    path: str
    namespace: GitLabGroup | GitLabUser
    namespace_id: int  # a user's personal namespace has its own id
    default_branch: str
    visibility: str
    created_at: float
    last_activity_at: float
    archived: bool = False
    description: str = ""
    branches: dict[str, GitLabBranch] = field(default_factory=dict)
    shared_with: dict[int, int] = field(default_factory=dict)  # group id -> maximum access level
    hooks: list[GitLabHook] = field(default_factory=list)
    deploy_tokens: list[GitLabDeployToken] = field(default_factory=list)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sha -> statuses, oldest first

    @property
    def namespace_path(self) -> str:
        ns = self.namespace
        return ns.full_path if isinstance(ns, GitLabGroup) else ns.username

    @property
    def path_with_namespace(self) -> str:
        return f"{self.namespace_path}/{self.path}"

    @property
    def name_with_namespace(self) -> str:
        ns = self.namespace
        return f"{ns.full_name if isinstance(ns, GitLabGroup) else ns.name} / {self.name}"

    def render_namespace(self, web: str) -> dict[str, Any]:
        ns = self.namespace
        if isinstance(ns, GitLabGroup):
            return ns.render_namespace(web)
        return {
            "id": self.namespace_id,
            "name": ns.name,
            "path": ns.username,
            "kind": "user",
            "full_path": ns.username,
            "parent_id": None,
            "avatar_url": ns.avatar_url,
            "web_url": f"{web}/{ns.username}",
        }

    def render_simple(self, web: str) -> dict[str, Any]:
        host = web.split("://", 1)[-1].split("/")[0]
        return {
            "id": self.id,
            "description": self.description,
            "name": self.name,
            "name_with_namespace": self.name_with_namespace,
            "path": self.path,
            "path_with_namespace": self.path_with_namespace,
            "created_at": iso(self.created_at, millis=True),
            "default_branch": self.default_branch,
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": f"git@{host}:{self.path_with_namespace}.git",
            "http_url_to_repo": f"{web}/{self.path_with_namespace}.git",
            "web_url": f"{web}/{self.path_with_namespace}",
            "readme_url": f"{web}/{self.path_with_namespace}/-/blob/{self.default_branch}/README.md",
            "forks_count": 0,
            "avatar_url": None,
            "star_count": 0,
            "last_activity_at": iso(self.last_activity_at, millis=True),
            "namespace": self.render_namespace(web),
        }

    def render_compact(self, web: str, permissions: dict[str, Any] | None) -> dict[str, Any]:
        """Only the fields the service reads (``FakeGitLab.compact_projects``): pages of tens of
        thousands of projects stay quick to render and parse in tests. The values are the full
        representation's."""
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "path_with_namespace": self.path_with_namespace,
            "namespace": {"full_path": self.namespace_path},
            "default_branch": self.default_branch,
            "http_url_to_repo": f"{web}/{self.path_with_namespace}.git",
            "web_url": f"{web}/{self.path_with_namespace}",
            "last_activity_at": iso(self.last_activity_at, millis=True),
            "visibility": self.visibility,
            "archived": self.archived,
            "permissions": permissions,
        }

    def render(self, web: str, api: str, permissions: dict[str, Any] | None) -> dict[str, Any]:
        data = {
            **self.render_simple(web),
            "_links": {
                "self": f"{api}/projects/{self.id}",
                "repo_branches": f"{api}/projects/{self.id}/repository/branches",
            },
            "archived": self.archived,
            "visibility": self.visibility,
            "empty_repo": not self.branches,
            "creator_id": self.namespace.id if isinstance(self.namespace, GitLabUser) else None,
            "shared_with_groups": [
                {"group_id": gid, "group_access_level": level} for gid, level in self.shared_with.items()
            ],
        }
        if isinstance(self.namespace, GitLabUser):
            data["owner"] = self.namespace.render_basic(web)
        if permissions is not None:
            data["permissions"] = permissions
        return data

    def render_branch(self, web: str, branch: GitLabBranch, can_push: bool) -> dict[str, Any]:
        return {
            "name": branch.name,
            "commit": {
                "id": branch.sha,
                "short_id": branch.sha[:8],
                "title": f"Update {branch.name}",
                "created_at": iso(self.last_activity_at, millis=True),
                "parent_ids": [],
                "message": f"Update {branch.name}",
                "author_name": "Fake Author",
                "author_email": "author@example.com",
                "authored_date": iso(self.last_activity_at, millis=True),
                "committer_name": "Fake Author",
                "committer_email": "author@example.com",
                "committed_date": iso(self.last_activity_at, millis=True),
                "web_url": f"{web}/{self.path_with_namespace}/-/commit/{branch.sha}",
            },
            "merged": False,
            "protected": branch.protected,
            "developers_can_push": False,
            "developers_can_merge": False,
            "can_push": can_push,
            "default": branch.name == self.default_branch,
            "web_url": f"{web}/{self.path_with_namespace}/-/tree/{branch.name}",
        }


@dataclass
class GitLabToken:
    id: int
    value: str
    name: str
    user_id: int
    scopes: list[str]
    kind: TokenKind
    created_at: float
    expires_at: date | None = None  # personal / group / project tokens expire at the start of that day (UTC)
    expires_at_ts: float | None = None  # OAuth tokens: 2 hours after issue
    active: bool = True
    revoked: bool = False
    last_used_at: float | None = None
    refresh_token: str | None = None
    application_uid: str | None = None

    def render_self(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "revoked": self.revoked,
            "created_at": iso(self.created_at, millis=True),
            "description": None,
            "scopes": list(self.scopes),
            "user_id": self.user_id,
            "last_used_at": iso(self.last_used_at, millis=True) if self.last_used_at else None,
            "active": self.active and not self.revoked,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass
class GitLabRefreshToken:
    value: str
    access_token: str
    user_id: int
    scopes: list[str]
    used: bool = False
    redirect_uri: str | None = None  # of the authorization the chain of refreshes started with


@dataclass
class GitLabAuthorizationCode:
    code: str
    user_id: int
    redirect_uri: str
    scopes: list[str]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    used: bool = False


@dataclass
class GitLabHook:
    """A project hook; ``events`` is its event log (what ``GET …/hooks/:id/events`` shows), oldest first."""

    id: int
    project_id: int
    url: str
    token: str | None
    push_events: bool
    tag_push_events: bool
    enable_ssl_verification: bool
    created_at: float
    alert_status: str = "executable"  # | "temporarily_disabled" | "disabled"
    disabled_until: float | None = None
    failures: int = 0  # consecutive failed deliveries
    events: list[dict[str, Any]] = field(default_factory=list)

    def render(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "name": None,
            "description": None,
            "project_id": self.project_id,
            "push_events": self.push_events,
            "push_events_branch_filter": "",
            "tag_push_events": self.tag_push_events,
            "issues_events": False,
            "merge_requests_events": False,
            "note_events": False,
            "pipeline_events": False,
            "enable_ssl_verification": self.enable_ssl_verification,
            "alert_status": self.alert_status,
            "disabled_until": iso(self.disabled_until, millis=True) if self.disabled_until else None,
            "created_at": iso(self.created_at, millis=True),
        }


@dataclass
class GitLabDeployToken:
    id: int
    project_id: int
    name: str
    token: str
    scopes: list[str]
    expires_at: float | None
    revoked: bool = False

    @property
    def username(self) -> str:
        return f"gitlab+deploy-token-{self.id}"

    def render(self, now: float, *, with_token: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "expires_at": iso(self.expires_at, millis=True) if self.expires_at else None,
            "scopes": list(self.scopes),
            "revoked": self.revoked,
            "expired": self.expires_at is not None and now >= self.expires_at,
        }
        if with_token:
            data["token"] = self.token
        return data
