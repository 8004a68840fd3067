"""GitHub App installations as ``GET /user/installations`` lists them: the one parser of that answer.

Used when a GitHub App login is checked (which installations the user can access, with which
permissions) and by the repository listing (which installations to list the repositories of).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.errors import ProviderUnavailableError
from app.hosts.github.constants import INSTALLATION_PERMISSION_NAMES, REQUIRED_FINE_GRAINED_PERMISSIONS

PATH = "/user/installations"


@dataclass(frozen=True)
class Installation:
    id: str
    account: str | None  # the login of the user or organisation it is installed on
    repository_selection: str  # "all" | "selected"
    permissions: tuple[str, ...]  # "contents:read", "contents:write", ...
    html_url: str | None  # its settings page, as GitHub names it
    suspended: bool  # a suspended installation grants nothing


def parse_installations(body: Any) -> tuple[Installation, ...]:
    """The installations of one page of ``/user/installations``; entries without an id are skipped."""
    items = body.get("installations") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ProviderUnavailableError(
            "GitHub answered with an unexpected list of installations; try again later."
        )
    return tuple(i for i in map(_installation, items) if i is not None)


def _installation(item: Any) -> Installation | None:
    if not isinstance(item, dict) or not _is_int(item.get("id")):
        return None
    account = item.get("account")
    login = account.get("login") if isinstance(account, dict) else None
    html_url = item.get("html_url")
    return Installation(
        id=str(item["id"]),
        account=login if isinstance(login, str) else None,
        repository_selection="all" if item.get("repository_selection") == "all" else "selected",
        permissions=installation_permissions(item.get("permissions")),
        html_url=html_url if isinstance(html_url, str) else None,
        suspended=bool(item.get("suspended_at")),
    )


def installation_permissions(value: Any) -> tuple[str, ...]:
    """``{"contents": "write", "repository_hooks": "write"}`` → ``("contents:read", "contents:write", ...)``.

    Write includes read, as on GitHub's settings pages; the required ones come first.
    """
    if not isinstance(value, Mapping):
        return ()
    names: set[str] = set()
    for raw_name, level in value.items():
        if not isinstance(raw_name, str) or level not in ("read", "write", "admin"):
            continue
        name = INSTALLATION_PERMISSION_NAMES.get(raw_name, raw_name)
        names.add(f"{name}:read")
        if level in ("write", "admin"):
            names.add(f"{name}:write")
    required = [name for name in REQUIRED_FINE_GRAINED_PERMISSIONS if name in names]
    return (*required, *sorted(names - set(required)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
