"""Reading what both hosts send back about repositories: timestamps and branch lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from app.domain.errors import NeedsReconnectError, NotFoundError, ProviderUnavailableError
from app.domain.models import Branch
from app.providers.http import HostHTTP, json_body


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
    branches = []
    for item in body:
        commit = item.get("commit") if isinstance(item, dict) else None
        sha = commit.get(sha_field) if isinstance(commit, dict) else None
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(sha, str):
            branches.append(Branch(name=item["name"], commit_sha=sha, protected=bool(item.get("protected"))))
    return branches[:first]
