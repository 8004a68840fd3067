"""GitLab roles: the groups and projects a token's user belongs to, and the access level held there.

The service needs Maintainer or higher (webhooks and deploy tokens need it); ``insufficient_role``
names the highest role found when there is none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.domain.errors import InsufficientRoleError
from app.domain.models import TokenKind
from app.hosts.gitlab import messages
from app.hosts.gitlab.constants import REQUIRED_ROLE, ROLE_NAMES


@dataclass(frozen=True)
class Membership:
    """A group or project the token's user belongs to; ``level`` None means "at least what was asked for"."""

    kind: str  # "group" | "project"
    id: str
    level: int | None = None
    path: str | None = None
    web_url: str | None = None
    parent_id: str | None = None


def pick_resource(scope: str, bot_id: str | None, memberships: Sequence[Membership]) -> Membership | None:
    """The group (or project) a group (or project) token is bound to, among ``memberships``."""
    candidates = [m for m in memberships if m.kind == scope]
    if bot_id is not None:
        return next((m for m in candidates if m.id == bot_id), None)
    if scope == "group":
        # A group token also reaches the group's subgroups: the bound group is the one without a
        # parent among those listed.
        ids = {m.id for m in candidates}
        roots = [m for m in candidates if m.parent_id not in ids]
        candidates = roots or candidates
    return candidates[0] if candidates else None


def insufficient_role(kind: TokenKind, level: int | None) -> InsufficientRoleError:
    """The refusal of a token whose user is below Maintainer everywhere (``level``: the highest seen)."""
    actual = role_name(level)
    return InsufficientRoleError(messages.role_too_low(kind, actual), required=REQUIRED_ROLE, actual=actual)


def role_name(level: int | None) -> str | None:
    """The name of a level; an unknown level is named after the highest known role below it."""
    if level is None:
        return None
    known = [value for value in ROLE_NAMES if value <= level]
    return ROLE_NAMES[max(known)] if known else None


def highest_level(memberships: Iterable[Membership]) -> int | None:
    """The highest access level among ``memberships``; None when none says."""
    return max((m.level for m in memberships if m.level is not None), default=None)


def access_level(value: Any) -> int | None:
    """An access level as GitLab sends it: an int, or ``{"project_access_level": …, "group_access_level": …}``
    (either may be null) for projects in the associations. The maximum counts."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, dict):
        levels = [access_level(v) for v in value.values()]
        return max((level for level in levels if level is not None), default=None)
    return None


def group_membership(group: Mapping[str, Any], web_root: str) -> Membership:
    """A group as ``/groups`` and the token associations list it."""
    web_url = optional_str(group.get("web_url"))
    path = optional_str(group.get("full_path")) or group_path_from_url(web_url, web_root)
    parent = group.get("parent_id")
    return Membership(
        kind="group",
        id=str(group.get("id")),
        level=access_level(group.get("access_levels")),
        path=path,
        web_url=web_url,
        parent_id=str(parent) if parent is not None else None,
    )


def project_membership(project: Mapping[str, Any]) -> Membership:
    """A project as ``/projects`` and the token associations list it."""
    return Membership(
        kind="project",
        id=str(project.get("id")),
        level=access_level(project.get("access_levels")),
        path=optional_str(project.get("path_with_namespace")),
        web_url=optional_str(project.get("web_url")),
    )


def group_path_from_url(web_url: str | None, web_root: str) -> str | None:
    """Associations list groups without ``full_path``; their ``web_url`` is ``{root}/groups/{full_path}``."""
    if not web_url:
        return None
    path = urlsplit(web_url).path
    prefix = urlsplit(web_root).path.rstrip("/") + "/groups/"
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].strip("/") or None


def optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
