"""Reading what both hosts send back alike: ISO timestamps and branches (GitHub and GitLab share the
shape ``{"name", "protected", "commit": {<id>}}``; only the commit id's field differs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from app.domain.errors import NeedsReconnectError, NotFoundError, ProviderUnavailableError
from app.domain.models import Branch
from app.net.client import HostHTTP, json_body


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def branch_list(
    response: httpx.Response,
    http: HostHTTP,
    *,
    host_name: str,
    sha_field: str,
    gone: str,
    reconnect: str,
    first: int,
) -> list[Branch]:
    """Branches from a branch-list answer; ``sha_field`` names the commit's id (GitHub ``sha``, GitLab ``id``).

    401 means the token is no longer accepted (NEEDS_RECONNECT); 403/404 that the repository is
    gone or no longer covered (``gone`` and ``reconnect`` say so in the host's words).
    """
    if response.status_code == 401:
        raise NeedsReconnectError(reconnect)
    if response.status_code in (403, 404):
        raise NotFoundError(gone)
    if response.status_code != 200:
        raise ProviderUnavailableError(
            f"{http.host} answered HTTP {response.status_code} while listing branches; try again later."
        )
    body = json_body(response, http.host)
    if not isinstance(body, list):
        raise ProviderUnavailableError(
            f"{host_name} answered with an unexpected branch list; try again later."
        )
    return parse_branches(body, sha_field)[:first]


def parse_branches(body: list[Any], sha_field: str) -> list[Branch]:
    """The well-formed branches of a branch list; entries without a name or commit id are skipped."""
    return [branch for branch in (parse_branch(item, sha_field) for item in body) if branch is not None]


def parse_branch(raw: Any, sha_field: str) -> Branch | None:
    """One branch; ``sha_field`` names the commit's id (GitHub ``sha``, GitLab ``id``)."""
    commit = raw.get("commit") if isinstance(raw, dict) else None
    sha = commit.get(sha_field) if isinstance(commit, dict) else None
    if not (isinstance(raw, dict) and isinstance(raw.get("name"), str) and isinstance(sha, str)):
        return None
    return Branch(name=raw["name"], commit_sha=sha, protected=bool(raw.get("protected")))
