"""What the hosts answer about deploying from a repository: plain values the ``GitHost`` methods return.

The hosts differ (a GitHub deploy key or app token, a GitLab deploy token; GitHub's delivery log and
GitLab's hook events); the services only ever see these shapes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from app.domain.links import ReadAccess
from app.domain.models import Repository


@dataclass(frozen=True)
class LinkTarget:
    """A repository as it is about to be linked, and whether the connected account may add hooks and keys."""

    repository: Repository
    can_administer: bool
    # What the account lacks, in the host's words, when it cannot ("admin", "Maintainer").
    required_role: str


@dataclass(frozen=True)
class GrantedReadAccess:
    """Read access just created at the host, with its secret (shown once by the host)."""

    access: ReadAccess
    ssh_private_key: str | None = None
    deploy_token: str | None = None


class HookHealth(enum.Enum):
    WORKING = "WORKING"
    GONE = "GONE"  # deleted at the host
    DISABLED = "DISABLED"  # the host stopped delivering (GitLab, after repeated failures)


class DeliveryKind(enum.Enum):
    PING = "PING"
    PUSH = "PUSH"
    TAG_PUSH = "TAG_PUSH"
    OTHER = "OTHER"  # an event this service did not subscribe to: acknowledged and dropped


@dataclass(frozen=True)
class IncomingDelivery:
    """A delivery whose signature was checked, read into what the service keeps of it."""

    kind: DeliveryKind
    delivery_id: str
    ref: str | None = None
    before: str | None = None
    after: str | None = None
    head_commit_message: str | None = None
    pusher: str | None = None

    @property
    def branch(self) -> str | None:
        """The branch of a branch push (``refs/heads/NAME``); None for anything else."""
        prefix = "refs/heads/"
        return self.ref[len(prefix) :] if self.ref and self.ref.startswith(prefix) else None


@dataclass(frozen=True)
class DeliveryAttempt:
    """One attempt in a hook's delivery log at the host.

    ``log_id`` is what redelivering names (GitHub's delivery id, GitLab's hook event id);
    ``delivery_id`` stays the same across redeliveries (GitHub's GUID, GitLab's idempotency key), so it
    is what a stored event is matched with. ``status_code`` None: no answer (timeout, refused).
    """

    log_id: str
    delivery_id: str
    delivered_at: datetime | None
    status_code: int | None
    is_push: bool

    @property
    def failed_on_our_side(self) -> bool:
        """Not stored because this service could not (5xx, no answer); 2xx and 4xx are final."""
        return self.status_code is None or self.status_code >= 500 or self.status_code == 429
