"""The fake GitHub's state (plain dataclasses) and how the REST API renders it."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes._http import iso

TokenKind = Literal["classic", "fine_grained", "oauth_app", "app_user"]
Role = Literal["admin", "maintain", "write", "triage", "read"]
Level = Literal["read", "write"]
# GitHub's plans. Branch protection of *private* repositories needs a paid one: "Protected branches are
# available in public repositories with GitHub Free and GitHub Free for organizations, and in public and
# private repositories with GitHub Pro, GitHub Team, GitHub Enterprise Cloud, and GitHub Enterprise Server"
# (https://docs.github.com/repositories/configuring-branches-and-merges-in-your-repository/managing-protected-branches/about-protected-branches).
Plan = Literal["free", "pro", "team", "enterprise"]

ROLE_RANK: dict[str, int] = {"read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}
# Scopes that other scopes include; GitHub drops the included ones when a token is saved.
IMPLIED_SCOPES: dict[str, tuple[str, ...]] = {
    "repo": ("repo:status", "repo_deployment", "public_repo", "repo:invite", "security_events"),
    "admin:repo_hook": ("write:repo_hook", "read:repo_hook"),
    "write:repo_hook": ("read:repo_hook",),
    "admin:org": ("write:org", "read:org"),
    "write:org": ("read:org",),
    "user": ("read:user", "user:email", "user:follow"),
    "admin:public_key": ("write:public_key", "read:public_key"),
}
# Fine-grained permission names as the API spells them (X-Accepted-GitHub-Permissions).
PERMISSION_ALIASES = {"webhooks": "repository_hooks", "commit_statuses": "statuses"}


def normalise_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    wanted = {s.strip() for s in scopes if s.strip()}
    implied = {child for scope in wanted for child in IMPLIED_SCOPES.get(scope, ())}
    return tuple(sorted(wanted - implied))


def normalise_permissions(permissions: dict[str, str]) -> dict[str, str]:
    return {PERMISSION_ALIASES.get(name, name): level for name, level in permissions.items()}


def fake_sha(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()  # noqa: S324 - an id, not security


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


@dataclass
class GitHubAccount:
    """A user or an organisation."""

    id: int
    login: str
    name: str | None
    created_at: float
    type: Literal["User", "Organization"] = "User"
    members: dict[str, str] = field(default_factory=dict)  # organisations only: login -> "admin" | "member"
    member_role: Role = "write"  # what an organisation member may do in its repositories
    plan: Plan = "free"  # GitHub's default for a new account or organisation
    # Organisations only: SAML single sign-on enforced, so classic and OAuth App tokens see its
    # resources only once authorized for it (GitHubToken.sso_authorized).
    sso_enforced: bool = False
    deploy_keys_allowed: bool = True  # an organisation's policy may forbid deploy keys
    # How GitHub refuses a deploy key then is not documented (provider-facts marks it unverified): a
    # 403 saying so, or its usual 422 "Validation Failed" with the reason in ``errors[].message``.
    deploy_keys_refusal: Literal["forbidden", "validation"] = "forbidden"

    @property
    def avatar_url(self) -> str:
        return f"https://avatars.githubusercontent.com/u/{self.id}?v=4"

    def render(self, html: str, api: str) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            "node_id": node_id("User" if self.type == "User" else "Organization", self.id),
            "avatar_url": self.avatar_url,
            "gravatar_id": "",
            "url": f"{api}/users/{self.login}",
            "html_url": f"{html}/{self.login}",
            "type": self.type,
            "site_admin": False,
        }


@dataclass
class GitHubBranch:
    name: str
    sha: str
    protected: bool = False

    def render(self, api: str, full_name: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "commit": {"sha": self.sha, "url": f"{api}/repos/{full_name}/commits/{self.sha}"},
            "protected": self.protected,
            "protection_url": f"{api}/repos/{full_name}/branches/{self.name}/protection",
        }


@dataclass
class GitHubRepository:
    id: int
    name: str
    owner: GitHubAccount
    private: bool
    default_branch: str
    pushed_at: float
    created_at: float
    archived: bool = False
    fork: bool = False
    description: str | None = None
    visibility_override: str | None = None  # "internal" for enterprise repositories
    branches: dict[str, GitHubBranch] = field(default_factory=dict)
    commits: set[str] = field(default_factory=set)
    collaborators: dict[str, Role] = field(default_factory=dict)
    hooks: list[GitHubHook] = field(default_factory=list)
    deploy_keys: list[GitHubDeployKey] = field(default_factory=list)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # path -> blob sha

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    @property
    def visibility(self) -> str:
        return self.visibility_override or ("private" if self.private else "public")

    def role_of(self, login: str) -> Role | None:
        """The user's role here; anyone may read a public repository."""
        roles: list[Role] = []
        if self.owner.type == "User" and self.owner.login == login:
            roles.append("admin")
        if self.owner.type == "Organization" and login in self.owner.members:
            roles.append("admin" if self.owner.members[login] == "admin" else self.owner.member_role)
        if login in self.collaborators:
            roles.append(self.collaborators[login])
        if not roles and not self.private:
            roles.append("read")
        if not roles:
            return None
        best: Role = max(roles, key=ROLE_RANK.__getitem__)
        return best

    def affiliation_of(self, login: str) -> str | None:
        if self.owner.type == "User" and self.owner.login == login:
            return "owner"
        if login in self.collaborators:
            return "collaborator"
        if self.owner.type == "Organization" and login in self.owner.members:
            return "organization_member"
        return None

    def render(self, html: str, api: str, viewer: str | None) -> dict[str, Any]:
        role = self.role_of(viewer) if viewer else None
        rank = ROLE_RANK.get(role or "", 0)
        data: dict[str, Any] = {
            "id": self.id,
            "node_id": node_id("Repository", self.id),
            "name": self.name,
            "full_name": self.full_name,
            "private": self.private,
            "owner": self.owner.render(html, api),
            "html_url": f"{html}/{self.full_name}",
            "description": self.description,
            "fork": self.fork,
            "url": f"{api}/repos/{self.full_name}",
            "branches_url": f"{api}/repos/{self.full_name}/branches{{/branch}}",
            "hooks_url": f"{api}/repos/{self.full_name}/hooks",
            "created_at": iso(self.created_at),
            "updated_at": iso(self.pushed_at),
            "pushed_at": iso(self.pushed_at),
            "git_url": f"git://{html.split('://', 1)[-1]}/{self.full_name}.git",
            "ssh_url": f"git@{html.split('://', 1)[-1].split('/')[0]}:{self.full_name}.git",
            "clone_url": f"{html}/{self.full_name}.git",
            "homepage": None,
            "size": 108,
            "language": "Python",
            "archived": self.archived,
            "disabled": False,
            "visibility": self.visibility,
            "default_branch": self.default_branch,
        }
        if viewer is not None:
            data["permissions"] = {
                "admin": rank >= ROLE_RANK["admin"],
                "maintain": rank >= ROLE_RANK["maintain"],
                "push": rank >= ROLE_RANK["write"],
                "triage": rank >= ROLE_RANK["triage"],
                "pull": rank >= ROLE_RANK["read"],
            }
        return data


@dataclass
class GitHubHook:
    """A repository webhook; ``deliveries`` is its delivery log, oldest first (the API shows newest first)."""

    id: int
    url: str
    secret: str | None
    events: list[str]
    active: bool
    content_type: str
    created_at: float
    updated_at: float
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def render(self, api: str, full_name: str) -> dict[str, Any]:
        config: dict[str, Any] = {"url": self.url, "content_type": self.content_type, "insecure_ssl": "0"}
        if self.secret:
            config["secret"] = "********"  # GitHub never shows a hook's secret again
        return {
            "type": "Repository",
            "id": self.id,
            "name": "web",
            "active": self.active,
            "events": list(self.events),
            "config": config,
            "updated_at": iso(self.updated_at),
            "created_at": iso(self.created_at),
            "url": f"{api}/repos/{full_name}/hooks/{self.id}",
            "test_url": f"{api}/repos/{full_name}/hooks/{self.id}/test",
            "ping_url": f"{api}/repos/{full_name}/hooks/{self.id}/pings",
            "deliveries_url": f"{api}/repos/{full_name}/hooks/{self.id}/deliveries",
            "last_response": {"code": None, "status": "unused", "message": None},
        }


@dataclass
class GitHubDeployKey:
    id: int
    title: str
    key: str  # "ssh-ed25519 AAAA…" (GitHub keeps the type and the key, not the comment)
    read_only: bool
    created_at: float

    def render(self, api: str, full_name: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "url": f"{api}/repos/{full_name}/keys/{self.id}",
            "title": self.title,
            "verified": True,
            "created_at": iso(self.created_at),
            "read_only": self.read_only,
            "added_by": None,
            "last_used": None,
            "enabled": True,
        }


@dataclass
class GitHubToken:
    value: str
    kind: TokenKind
    user: str  # login
    created_at: float
    scopes: tuple[str, ...] = ()  # classic and OAuth App tokens
    permissions: dict[str, str] = field(default_factory=dict)  # fine-grained tokens
    repositories: list[str] | Literal["all"] = "all"  # fine-grained tokens
    resource_owner: str | None = None  # fine-grained tokens: the one owner whose repositories it reaches
    expires_at: float | None = None
    revoked: bool = False
    client_id: str | None = None  # tokens issued through OAuth
    refresh_token: str | None = None
    sso_authorized: set[str] = field(default_factory=set)  # lower-case logins of SSO organisations

    def blocked_by_sso(self, owner: GitHubAccount) -> bool:
        """A classic or OAuth App token not authorized for the SAML SSO of ``owner``.

        Source: GitHub docs, "Authenticating to the REST API", section "Personal access tokens and
        SAML SSO": classic tokens must be authorized for such an organisation after creation;
        fine-grained tokens are authorized when they are created. OAuth App tokens behave like
        classic ones (provider-facts, "Learned since"; the fake leans that way for GitHub App user
        tokens too and does not block them).
        """
        return (
            owner.sso_enforced
            and self.kind in ("classic", "oauth_app")
            and owner.login.lower() not in self.sso_authorized
        )

    def has_scope_header(self) -> bool:
        return self.kind in ("classic", "oauth_app", "app_user")


@dataclass
class RefreshToken:
    value: str
    access_token: str
    user: str
    client_id: str
    expires_at: float
    used: bool = False


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    user: str
    redirect_uri: str | None
    scopes: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    used: bool = False


@dataclass
class GitHubInstallation:
    id: int
    account: GitHubAccount
    app_slug: str
    app_id: int
    repository_selection: Literal["all", "selected"]
    repositories: list[str]  # full names, for "selected"
    permissions: dict[str, str]
    created_at: float
    suspended: bool = False

    def includes(self, repo: GitHubRepository) -> bool:
        if repo.owner.login != self.account.login:
            return False
        return self.repository_selection == "all" or repo.full_name in self.repositories

    def visible_to(self, login: str) -> bool:
        if self.account.type == "User":
            return self.account.login == login
        return login in self.account.members

    def render(self, html: str, api: str) -> dict[str, Any]:
        if self.account.type == "User":
            settings = f"{html}/settings/installations/{self.id}"
        else:
            settings = f"{html}/organizations/{self.account.login}/settings/installations/{self.id}"
        return {
            "id": self.id,
            "account": self.account.render(html, api),
            "access_tokens_url": f"{api}/app/installations/{self.id}/access_tokens",
            "repositories_url": f"{api}/installation/repositories",
            "html_url": settings,
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_id": self.account.id,
            "target_type": self.account.type,
            "permissions": {"metadata": "read", **self.permissions},
            "events": ["push", "pull_request"],
            "repository_selection": self.repository_selection,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.created_at),
            "single_file_name": None,
            "suspended_at": None,
            "suspended_by": None,
        }
