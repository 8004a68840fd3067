"""Reading what both hosts send back alike: ISO timestamps and branches (GitHub and GitLab share the
shape ``{"name", "protected", "commit": {<id>}}``; only the commit id's field differs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.domain.models import Branch


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
