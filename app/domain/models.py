"""Plain models of the domain: no I/O, no framework, no secrets in anything a response could show."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime


class GitProvider(enum.Enum):
    GITHUB = "GITHUB"
    GITLAB = "GITLAB"


class AuthMethod(enum.Enum):
    OAUTH = "OAUTH"
    ACCESS_TOKEN = "ACCESS_TOKEN"


class TokenKind(enum.Enum):
    GITHUB_CLASSIC = "GITHUB_CLASSIC"
    GITHUB_FINE_GRAINED = "GITHUB_FINE_GRAINED"
    GITHUB_OAUTH_APP = "GITHUB_OAUTH_APP"
    GITHUB_APP = "GITHUB_APP"
    GITLAB_PERSONAL = "GITLAB_PERSONAL"
    GITLAB_GROUP = "GITLAB_GROUP"
    GITLAB_PROJECT = "GITLAB_PROJECT"
    GITLAB_OAUTH = "GITLAB_OAUTH"


class RepositoryAccess(enum.Enum):
    ALL = "ALL"
    SELECTED = "SELECTED"


class IntegrationStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    NEEDS_RECONNECT = "NEEDS_RECONNECT"


@dataclass(frozen=True)
class HostEndpoint:
    """Where one Git host lives: ``host`` is what users see and what integrations are keyed by."""

    provider: GitProvider
    host: str  # "github.com", "gitlab.example.com:8443/gitlab"
    web_url: str  # "https://gitlab.example.com:8443/gitlab"
    api_url: str  # "https://gitlab.example.com:8443/gitlab/api/v4"


@dataclass(frozen=True)
class GitAccount:
    id: str  # the host's numeric user id, as text: logins can be renamed, ids cannot
    login: str
    name: str | None = None
    avatar_url: str | None = None
    url: str | None = None
    bot: bool = False


@dataclass(frozen=True)
class TokenResource:
    """What a token is bound to beyond its user: a GitLab group or project, GitHub App installations."""

    kind: str  # "group" | "project" | "installations"
    ids: tuple[str, ...]
    path: str | None = None


@dataclass(frozen=True)
class VerifiedToken:
    """What checking a token against its host found out; everything needed to store an integration."""

    token_kind: TokenKind
    account: GitAccount
    repository_access: RepositoryAccess
    granted_permissions: tuple[str, ...]
    unverified_permissions: tuple[str, ...] = ()
    expires_at: datetime | None = None
    manage_access_url: str | None = None
    resource: TokenResource | None = None


@dataclass(frozen=True)
class Credentials:
    """The secrets of an integration; never part of ``Integration`` so they cannot leak into a response.

    ``expires_at``: when the access token expires; ``refresh_expires_at``: when the refresh token does
    (GitHub App logins: ``refresh_token_expires_in``), after which the user must sign in again.
    """

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None


@dataclass
class Integration:
    id: str
    owner: str
    endpoint: HostEndpoint
    auth_method: AuthMethod
    token_kind: TokenKind
    account: GitAccount
    repository_access: RepositoryAccess
    granted_permissions: list[str]
    status: IntegrationStatus
    created_at: datetime
    unverified_permissions: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    last_verified_at: datetime | None = None
    manage_access_url: str | None = None
    resource: TokenResource | None = None
    # When the login must be renewed: its refresh token expires then (None: the host did not say).
    reconnect_by: datetime | None = None
    version: int = 0

    @property
    def provider(self) -> GitProvider:
        return self.endpoint.provider

    @property
    def host(self) -> str:
        return self.endpoint.host

    def login_ended(self, now: datetime) -> bool:
        """Whether the login can no longer be renewed at ``now``: its refresh token has expired.

        Only a new sign-in helps then; the integration reads as NEEDS_RECONNECT from that moment.
        """
        return self.reconnect_by is not None and self.reconnect_by <= now


@dataclass(frozen=True)
class Repository:
    id: str
    name: str
    full_name: str
    owner: str
    private: bool
    web_url: str
    clone_url: str
    default_branch: str | None = None
    pushed_at: datetime | None = None
    archived: bool = False
    fork: bool = False
    # The connected account may add webhooks and deploy keys here (GitHub ``permissions.admin``,
    # GitLab Maintainer or higher): what linking the repository needs.
    viewer_can_administer: bool = False


@dataclass(frozen=True)
class Branch:
    name: str
    commit_sha: str
    protected: bool


class AccessNoticeReason(enum.Enum):
    """Why repositories may be missing from a listing."""

    SSO_AUTHORIZATION_REQUIRED = "SSO_AUTHORIZATION_REQUIRED"  # GitHub hid organizations' repositories
    LIST_INCOMPLETE = "LIST_INCOMPLETE"  # the walk of the host's list was cut short


@dataclass(frozen=True)
class AccessNotice:
    """Something the user should know about a listing: what is missing and where to fix it."""

    reason: AccessNoticeReason
    message: str
    url: str | None = None
    organizations: tuple[str, ...] = ()  # logins where the host named them, else the ids it gave


def sort_key(repo: Repository) -> tuple[float, str]:
    """The picker's order: most recently pushed first, never pushed (empty repositories) last, ties by id."""
    pushed = repo.pushed_at.timestamp() if repo.pushed_at is not None else float("-inf")
    return (-pushed, repo.id)


def ordered(repositories: Iterable[Repository]) -> list[Repository]:
    """Each repository once (by id, the first seen wins), in the picker's order."""
    unique: dict[str, Repository] = {}
    for repo in repositories:
        unique.setdefault(repo.id, repo)
    return sorted(unique.values(), key=sort_key)
