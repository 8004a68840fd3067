"""Deploying from a repository: links, the events received for them, and what the builder is handed.

A ``RepositoryLink`` is one repository of one integration that the platform deploys from: at the host
it owns a webhook (pushes and tag pushes come in) and a way for the builder to read the code
(``ReadAccess``). Its secrets — the webhook secret, a deploy key's private half, a deploy token —
are never part of these models (``LinkSecrets``), so they cannot leak into a response.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from app.domain.models import GitProvider, Repository


class LinkStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    BROKEN = "BROKEN"


class RepositoryEventKind(enum.Enum):
    PUSH = "PUSH"
    TAG_PUSH = "TAG_PUSH"


class CommitState(enum.Enum):
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    ERROR = "ERROR"


class ReadAccessKind(enum.Enum):
    """How the builder reads the repository: the narrowest thing the host offers."""

    APP_INSTALLATION = "APP_INSTALLATION"  # GitHub App installation token, minted per request
    DEPLOY_KEY = "DEPLOY_KEY"  # GitHub: a read-only Ed25519 deploy key made at link time
    DEPLOY_TOKEN = "DEPLOY_TOKEN"  # GitLab: a deploy token with read_repository


@dataclass(frozen=True)
class ReadAccess:
    """What the link holds at the host for the builder (no secret here).

    ``host_id``: the deploy key's or deploy token's id at the host (None for an app installation).
    ``username``: a deploy token's user name. ``installation_id``: the GitHub App installation.
    ``known_hosts``: the host's SSH keys as ``known_hosts`` lines, for a deploy key.
    """

    kind: ReadAccessKind
    host_id: str | None = None
    username: str | None = None
    installation_id: str | None = None
    known_hosts: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class RepositoryLink:
    id: str  # random and URL-safe: it is part of the webhook URL, which must not be guessable
    owner: str
    integration_id: str
    provider: GitProvider
    host: str
    repository: Repository  # as the host described it when it was linked (or linked again)
    branch: str
    status: LinkStatus
    created_at: datetime
    status_message: str | None = None
    hook_id: str | None = None  # None while the link is being set up
    read_access: ReadAccess | None = None
    last_event_at: datetime | None = None
    event_sequence: int = 0  # the highest sequence number given to one of its events so far


@dataclass(frozen=True)
class LinkSecrets:
    """The decrypted secrets of a link: never part of ``RepositoryLink``."""

    webhook_secret: str
    ssh_private_key: str | None = None  # a deploy key's private half (OpenSSH format)
    deploy_token: str | None = None  # a GitLab deploy token


@dataclass(frozen=True)
class RepositoryEvent:
    """One push or tag push received for a link; ``sequence`` orders a link's events and is their cursor."""

    link_id: str
    sequence: int
    kind: RepositoryEventKind
    ref: str
    after: str
    delivery_id: str
    received_at: datetime
    before: str | None = None
    head_commit_message: str | None = None
    pusher: str | None = None


@dataclass(frozen=True)
class CommitStatusRequest:
    sha: str
    state: CommitState
    context: str
    description: str | None = None
    target_url: str | None = None


@dataclass(frozen=True)
class CloneCredentials:
    """What the builder clones with: HTTPS (username + password) or SSH (a private key and known hosts)."""

    url: str
    username: str | None = None
    password: str | None = None
    ssh_private_key: str | None = None
    ssh_known_hosts: str | None = None
    expires_at: datetime | None = None
    kind: ReadAccessKind = ReadAccessKind.DEPLOY_KEY
